"""Generator adapters for other systems and control generators."""
