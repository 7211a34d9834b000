"""Invariant descriptors: cutoff functions, symmetry functions (with their analytic
Jacobian) and their scaling. Functions of pair vectors only; imports nothing of forcefit
beyond data (models use descriptors, never the reverse)."""

from forcefit.descriptors.ace import AtomicClusterExpansion
from forcefit.descriptors.ace_basis import AceBasis
from forcefit.descriptors.cutoff import CUTOFF_TYPES, cutoff_function
from forcefit.descriptors.registry import DESCRIPTORS, Descriptor, descriptor_from_config
from forcefit.descriptors.scaling import FeatureScaling
from forcefit.descriptors.symmetry_functions import SymmetryFunction, SymmetryFunctions, generate_symmetry_functions

__all__ = [
    "AceBasis",
    "AtomicClusterExpansion",
    "DESCRIPTORS",
    "Descriptor",
    "descriptor_from_config",
    "CUTOFF_TYPES",
    "cutoff_function",
    "FeatureScaling",
    "SymmetryFunction",
    "SymmetryFunctions",
    "generate_symmetry_functions",
]
