"""Dataset plug-ins for the harness."""
