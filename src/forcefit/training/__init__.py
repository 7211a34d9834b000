"""Fitting: the force-matching loss (loss.py), the trainer with checkpoints and resume
(trainer.py), the label screen (screen.py), error sums and statistics (metrics.py) and
learning curves of closed-form models (learning_curve.py). May import models and
everything below them; reports, the run and the CLI build on it."""
