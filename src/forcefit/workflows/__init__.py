"""What users do with a potential: molecular dynamics (md.py), properties (properties.py),
reference calculators (reference.py) and active learning (active_learning.py). Built on
the calculator, the training run and the reports; only the CLI sits above."""
