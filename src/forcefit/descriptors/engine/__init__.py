"""The compiled symmetry-function engine (numba): per centre atom, in O(N) time and memory,
one pass over its pairs and triplets gives, by mode,

    FEATURES   G_i (n_atoms, n_features);
    GRADIENT   g_p = Σ_f w_{i_p f} ∂G_{i_p f}/∂v_p (n_pairs, 3) for given weights w (a
               committee's members' w = ∂E/∂G): forces and stress (`models/forces.py`)
               without storing any derivative per function;
    JACOBIAN   G and J_p = ∂G_{i_p}/∂v_p (n_pairs, n_features, 3): the training cache;
    ENERGY     a whole BPNN (`Network`: its networks per element, feature scaling, output
               scale, e_ref) per atom: G_i, then E_i and w_i = ∂E_i/∂G_i through the
               atom's network, then g_p from the atom's terms kept since its features:
               prediction's one pass, each term evaluated once.

    kernels.py   the compiled code and every constant it reads (the formulas: its docstring)
    records.py   the named tables and arrays the kernels take
    build.py     `Engine`: the tables built once from a descriptor, and one call
"""

from forcefit.descriptors.engine.build import Engine
from forcefit.descriptors.engine.kernels import ENERGY, FEATURES, GRADIENT, JACOBIAN
from forcefit.descriptors.engine.records import ACTIVATION_CODES, Network

__all__ = ["ACTIVATION_CODES", "ENERGY", "FEATURES", "GRADIENT", "JACOBIAN", "Engine", "Network"]
