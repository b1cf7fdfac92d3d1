"""Training: datasets, token cache, solvers, schedules, EMA, recipes."""
