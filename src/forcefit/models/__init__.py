"""Models: each maps a batch to per-atom energies; `predict` turns them into forces."""
from forcefit.models.base import Potential
from forcefit.models.bpnn import BPNN
from forcefit.models.forces import Prediction, predict

MODELS = {BPNN.kind: BPNN}

__all__ = ["Potential", "BPNN", "Prediction", "predict", "MODELS"]
