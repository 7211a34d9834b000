"""Models: each maps a batch to per-atom energies; `predict` turns them into forces."""
from forcefit.models.base import Potential
from forcefit.models.bpnn import BPNN
from forcefit.models.committee import Committee
from forcefit.models.forces import Prediction, predict
from forcefit.models.linear import LinearModel
from forcefit.models.pair import CustomPair, LennardJones, Morse, PairPotential

MODELS = {model.kind: model for model in (BPNN, LinearModel, LennardJones, Morse, CustomPair, Committee)}

__all__ = ["Potential", "BPNN", "Committee", "LinearModel", "PairPotential", "LennardJones", "Morse", "CustomPair", "Prediction", "predict", "MODELS"]
