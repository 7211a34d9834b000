"""What a person reads: evaluation tables and files (evaluation.py) and every figure
(figures.py, the only module that sets up matplotlib). Reports sit above training:
they use models and training metrics and are used by the run and the CLI."""
