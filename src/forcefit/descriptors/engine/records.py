"""The named records the engine's compiled code takes (kernels.py): the tables built once
per descriptor (`Cutoff`, `Radial`, `Angular`, and a BPNN's `Network`), what one call
evaluates and returns (`Block`, `Outputs`), and the per-centre working sets (`Pairs`,
`Centre`, `Triplets`). Types only: numba compiles against them, so a change here is a change
of the kernels' signatures, which their on-disk cache tells apart.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Cutoff(NamedTuple):
    """Every term's cutoff function (n2p2's type number and inner fraction α), the distinct
    radii r_c (Å) that terms index, and the angular cutoff: legs of triplets lie within it."""

    kind: int
    alpha: float
    radii: np.ndarray
    angular: float


class Radial(NamedTuple):
    """Radial functions by group, a group being one (centre element, neighbour element)."""

    group: np.ndarray  # (E, E): the group of (centre, neighbour) elements, −1 for none
    start: np.ndarray  # group g's functions are start[g] ≤ f < start[g + 1]
    eta: np.ndarray
    rs: np.ndarray
    radius: np.ndarray  # index into Cutoff.radii
    column: np.ndarray  # the function's feature column


class Angular(NamedTuple):
    """Angular functions by group (centre element, neighbour elements a ≤ b); a group's
    functions by factor Π_d P(r_d) (one slot (η, r_s, r_c), narrow or wide); per function its
    (λ, ζ), normalisation 2^(1−ζ) and column."""

    group: np.ndarray  # (E, E, E), −1 for none
    factor_start: np.ndarray  # group g's factors are factor_start[g] ≤ t < factor_start[g + 1]
    factor_slot: np.ndarray
    factor_narrow: np.ndarray  # the factor includes P(r_jk)
    lz_start: np.ndarray  # group g's distinct (λ, ζ) are group_lz[lz_start[g]:lz_start[g + 1]]
    group_lz: np.ndarray
    narrow_radius: np.ndarray  # per group the largest r_c of its narrow functions, 0 for none
    only_narrow: np.ndarray  # per group: every function narrow, so triplets with r_jk ≥ that r_c add nothing
    function_start: np.ndarray  # factor t's functions are function_start[t] ≤ f < function_start[t + 1]
    function_lz: np.ndarray
    function_norm: np.ndarray
    function_column: np.ndarray
    slot_eta: np.ndarray
    slot_rs: np.ndarray
    slot_radius: np.ndarray  # index into Cutoff.radii
    lz_lambda: np.ndarray
    lz_zeta: np.ndarray


class Block(NamedTuple):
    """What one call evaluates: centres i = first + c, c < len(offsets) − 1, each with its pairs
    offsets[c] ≤ p < offsets[c + 1] (vectors r_ij, neighbour j, inner-switch radii (off, on) Å),
    the species of every atom, and in GRADIENT mode the weights w = ∂E/∂G per centre."""

    first: int
    species: np.ndarray
    vectors: np.ndarray
    neighbour: np.ndarray
    offsets: np.ndarray
    fade: np.ndarray
    weights: np.ndarray


class Outputs(NamedTuple):
    features: np.ndarray  # (n_block, F) except in GRADIENT mode
    gradients: np.ndarray  # (n_pairs, 3) in GRADIENT and ENERGY modes
    jacobian: np.ndarray  # (n_pairs, F, 3) in JACOBIAN mode
    energies: np.ndarray  # (n_block,) in ENERGY mode


class Pairs(NamedTuple):
    """One centre's pairs, ordered by neighbour element, and the scratch of its evaluation."""

    p0: int  # the centre's first pair
    n: int
    start: np.ndarray  # (E + 1,) positions start[e] ≤ b < start[e + 1] are pairs with element e
    order: np.ndarray  # position b is pair p0 + order[b]
    r: np.ndarray  # (n,) Å
    u: np.ndarray  # (3, n) unit vectors
    fc: np.ndarray  # (n_radii, n) f_c per distinct cutoff radius (with the inner switch)
    dfc: np.ndarray  # and f_c'
    work: np.ndarray  # scratch of max(n, TRIPLET_BLOCK)
    bits: np.ndarray  # the exponentials' scratch, as long
    argument: np.ndarray  # (n,) scratch
    slope: np.ndarray  # (n,) scratch
    slopes: np.ndarray  # (n,) Σ_f w_f P_f'(r) per pair in GRADIENT and ENERGY modes
    kept: np.ndarray  # (most radial functions of a group, n): ENERGY mode's P_f' per pair


class Centre(NamedTuple):
    """One centre atom of the block and its legs (pairs within the angular cutoff), ordered by neighbour element."""

    c: int  # the atom's row in the block
    p0: int  # its first pair
    weights: np.ndarray  # (F,) its w = ∂E/∂G in GRADIENT and ENERGY modes (filled after the network in ENERGY)
    pair: np.ndarray  # each leg's pair, p0 + pair[leg]
    inverse_r: np.ndarray
    u: np.ndarray  # (3, n_legs) unit vectors
    v: np.ndarray  # (3, n_legs) vectors, Å
    leg_start: np.ndarray  # (E + 1,) legs leg_start[e] ≤ leg < leg_start[e + 1] have element e
    P: np.ndarray  # (n_slots, n_legs) P(r) per slot
    dP: np.ndarray  # and P'(r)
    gradients: np.ndarray  # (3, n_legs) in GRADIENT and ENERGY modes: Σ over triplets of ∂/∂v


class Network(NamedTuple):
    """A BPNN's per-element networks for ENERGY mode: E_i = s · NN_e(offset + factor (G_i − ref)) + e_ref(e).
    Layer l of element e (layer_start[e] ≤ l < layer_start[e + 1]) maps width inputs[l] to
    outputs[l] with weights[weight_start[l]:] (row-major, outputs × inputs), biases[bias_start[l]:]
    and activation code activation[l] (ACTIVATION_CODES)."""

    n_inputs: np.ndarray  # (E,) features the element's network reads (the first n of G)
    factor: np.ndarray  # (E, F) the feature scaling
    reference: np.ndarray
    offset: np.ndarray
    layer_start: np.ndarray
    inputs: np.ndarray
    outputs: np.ndarray
    weight_start: np.ndarray
    bias_start: np.ndarray
    activation: np.ndarray
    weights: np.ndarray
    biases: np.ndarray
    energy_scale: float
    atom_reference: np.ndarray  # (E,)
    width: int  # the longest element's inputs plus all its layers' outputs: `_network`'s work rows


NO_NETWORK = Network(
    *(np.zeros(0, dtype=np.int64),),
    *(np.zeros((0, 0)),) * 3,
    *(np.zeros(0, dtype=np.int64),) * 6,
    np.zeros(0),
    np.zeros(0),
    1.0,
    np.zeros(0),
    0,
)  # what modes other than ENERGY are handed


ACTIVATION_CODES = {
    name: code
    for code, name in enumerate(
        ("linear", "tanh", "logistic", "softplus", "silu", "relu", "gelu", "gaussian", "cos", "revlogistic", "negexp", "harmonic")
    )
}


class Triplets(NamedTuple):
    """Blocks of up to TRIPLET_BLOCK (kernels.py) triplets of one centre, each block of one angular group:
    legs first[j, k], second[j, k], and per triplet the rows[j] ROW_* (cos θ, v_k − v_j, r_jk, …
    filled by the enumeration and `_triplet_terms`), then f_c(r_jk), f_c'(r_jk) per radius, A
    and A' per (λ, ζ), and Q, ∂Q/∂r_ij, ∂Q/∂r_ik, (∂Q/∂r_jk)/r_jk per factor of the group."""

    first: np.ndarray  # (n_blocks, TRIPLET_BLOCK)
    second: np.ndarray
    rows: np.ndarray  # (n_blocks, n_rows, TRIPLET_BLOCK)
    bits: np.ndarray
    group: np.ndarray  # (n_blocks,) ENERGY mode: each kept block's angular group
    size: np.ndarray  # and its number of triplets
