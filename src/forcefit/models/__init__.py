"""Models: each maps a batch to per-atom energies; `predict` (forces.py) turns them into
forces and stress, and saving.py reads and writes model files. A model builds its own
neighbour graph (`model.graph`), builds itself from its config section and states what
it can do (`uses_descriptors`, `closed_form`, `has_members`). May import descriptors,
data, neighbours and structures; training and everything after build on it."""

from forcefit.models.base import Potential
from forcefit.models.bpnn import BPNN
from forcefit.models.committee import Committee
from forcefit.models.forces import Prediction, predict
from forcefit.models.linear import LinearModel
from forcefit.models.pair import CustomPair, LennardJones, Morse, PairPotential
from forcefit.models.registry import MODELS

__all__ = [
    "Potential",
    "BPNN",
    "Committee",
    "LinearModel",
    "PairPotential",
    "LennardJones",
    "Morse",
    "CustomPair",
    "Prediction",
    "predict",
    "MODELS",
]
