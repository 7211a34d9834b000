"""`Engine`: the tables of kernels.py built once from a `SymmetryFunctions`' list, and one
call of the compiled pass over a block of centre atoms, serial or on numba's threads.
"""

from __future__ import annotations

import types

import numba
import numpy as np
import torch
from torch import Tensor

from forcefit.descriptors.cutoff import CUTOFF_TYPES, INNER_END, INNER_START
from forcefit.descriptors.engine import kernels
from forcefit.descriptors.engine.kernels import ENERGY, FEATURES, GRADIENT, JACOBIAN
from forcefit.descriptors.engine.records import NO_NETWORK, Angular, Block, Cutoff, Outputs, Radial


def _compiled(function, name: str, parallel: bool):
    """`function` compiled under its own name: numba's on-disk cache tells compiled variants
    apart by name, not by the parallel flag (the variant keeps the kernels' file, so their
    cache). NumPy's error model everywhere: a division by
    zero (coincident atoms) gives inf/NaN, which the callers' finiteness checks report."""
    variant = types.FunctionType(function.__code__, function.__globals__, name, function.__defaults__, function.__closure__)
    variant.__qualname__ = name
    return numba.njit(cache=True, parallel=parallel, error_model="numpy")(variant)


# the loop over centres on numba's threads, and the same code compiled serial: one thread
# then starts no thread pool (whose idle workers would spin beside torch's own)
_evaluate_parallel = _compiled(kernels._evaluate, "_evaluate_parallel", parallel=True)
_evaluate_serial = _compiled(kernels._evaluate, "_evaluate_serial", parallel=False)


class Engine:
    """The tables `_evaluate` reads, built once from a `SymmetryFunctions`' list."""

    def __init__(self, descriptor) -> None:
        elements = descriptor.elements
        index = {e: n for n, e in enumerate(elements)}
        E = len(elements)
        self.n_features = descriptor.n_features
        rcs = sorted({f.rc for f in descriptor.functions})
        cutoff = Cutoff(CUTOFF_TYPES[descriptor.cutoff_type], float(descriptor.cutoff_alpha), _f(rcs), float(descriptor.angular_cutoff))
        column = {e: 0 for e in elements}
        radial, angular = {}, {}
        for f in descriptor.functions:
            col = column[f.center]
            column[f.center] += 1
            if f.kind == "radial":
                radial.setdefault((index[f.center], index[f.neighbors[0]]), []).append((f, col))
            else:
                a, b = sorted(index[e] for e in f.neighbors)
                angular.setdefault((index[f.center], a, b), []).append((f, col))

        radial_group = np.full((E, E), -1, dtype=np.int64)
        start, eta, rs, rc, cols = [0], [], [], [], []
        for g, (key, members) in enumerate(radial.items()):
            radial_group[key] = g
            for f, col in members:
                eta.append(f.eta), rs.append(f.rs), rc.append(rcs.index(f.rc)), cols.append(col)
            start.append(len(eta))
        radial_tables = Radial(radial_group, _i(start), _f(eta), _f(rs), _i(rc), _i(cols))

        slots = sorted({(f.eta, f.rs, f.rc) for members in angular.values() for f, _ in members})
        lzs = sorted({(f.lam, f.zeta) for members in angular.values() for f, _ in members})
        angular_group = np.full((E, E, E), -1, dtype=np.int64)
        factor_start, factor_slot, factor_narrow, lz_start, group_lz, narrow_rc, only_narrow = [0], [], [], [0], [], [], []
        function_start, function_lz, function_norm, function_column = [0], [], [], []
        for g, (key, members) in enumerate(angular.items()):
            angular_group[key] = g
            factors = sorted({(slots.index((f.eta, f.rs, f.rc)), f.kind == "narrow") for f, _ in members})
            for factor in factors:
                for f, col in members:
                    if (slots.index((f.eta, f.rs, f.rc)), f.kind == "narrow") == factor:
                        function_lz.append(lzs.index((f.lam, f.zeta)))
                        function_norm.append(2.0 ** (1.0 - f.zeta))
                        function_column.append(col)
                function_start.append(len(function_lz))
            factor_slot += [slot for slot, _ in factors]
            factor_narrow += [is_narrow for _, is_narrow in factors]
            group_lz += sorted({lzs.index((f.lam, f.zeta)) for f, _ in members})
            factor_start.append(len(factor_slot)), lz_start.append(len(group_lz))
            narrow_rc.append(max((f.rc for f, _ in members if f.kind == "narrow"), default=0.0))
            only_narrow.append(all(f.kind == "narrow" for f, _ in members))
        self.tables = (cutoff, radial_tables, Angular(
            angular_group, _i(factor_start), _i(factor_slot), np.array(factor_narrow, dtype=np.bool_), _i(lz_start), _i(group_lz),
            _f(narrow_rc), np.array(only_narrow, dtype=np.bool_), _i(function_start), _i(function_lz), _f(function_norm),
            _i(function_column), _f([s[0] for s in slots]), _f([s[1] for s in slots]), _i([rcs.index(s[2]) for s in slots]),
            _f([z[0] for z in lzs]), _f([z[1] for z in lzs]),
        ))  # fmt: skip

    def run(self, mode: int, species, vectors, pair_i, pair_j, centres: tuple[int, int], inner: Tensor, weights=None, network=None):
        """`_evaluate` for the atoms a ≤ i < b of `centres` = (a, b) from exactly the pairs
        centred on them (CPU tensors, sorted by centre), on as many threads as torch uses.
        `inner` (n_pairs,) is each pair's inner radius (0: no switch), handed to the compiled code as
        the radii where its fade ends and starts (never as module constants, which numba's cache
        would keep from an older version). Returns float64 NumPy arrays: FEATURES (n_block, n_features); GRADIENT, for weights
        w = ∂E/∂G (n_block, n_features), g_p = w_{i_p} · ∂G_{i_p}/∂v_p (n_pairs, 3); JACOBIAN
        the features and ∂G_{i_p}/∂v_p (n_pairs, n_features, 3); ENERGY, for a `Network`, the
        features, the atom energies (n_block,) and g_p = ∂E/∂v_p (n_pairs, 3)."""
        first, last = centres
        n_pairs = vectors.shape[0]
        local = pair_i.numpy() - first
        if n_pairs and (local[0] < 0 or local[-1] >= last - first or (np.diff(local) < 0).any()):
            raise ValueError("symmetry-function engine: pairs must be sorted by centre and centred on the atoms evaluated")
        F = self.n_features
        w = np.zeros((0, F)) if weights is None else np.ascontiguousarray(weights.detach().numpy(), dtype=np.float64)
        block = Block(
            first, species.numpy(), np.ascontiguousarray(vectors.detach().numpy(), dtype=np.float64), pair_j.numpy(),
            np.searchsorted(local, np.arange(last - first + 1)), _fade(inner), w,
        )  # fmt: skip
        out = Outputs(
            np.zeros((last - first, F) if mode != GRADIENT else (0, F)),
            np.zeros((n_pairs, 3) if mode in (GRADIENT, ENERGY) else (0, 3)),
            np.zeros((n_pairs, F, 3) if mode == JACOBIAN else (0, F, 3)),
            np.zeros(last - first if mode == ENERGY else 0),
        )
        threads = max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS))
        if threads > 1:
            numba.set_num_threads(threads)
        (_evaluate_parallel if threads > 1 else _evaluate_serial)(mode, block, *self.tables, network or NO_NETWORK, out)
        return {
            FEATURES: out.features, GRADIENT: out.gradients, JACOBIAN: (out.features, out.jacobian),
            ENERGY: (out.features, out.energies, out.gradients),
        }[mode]  # fmt: skip


def _fade(inner: Tensor) -> np.ndarray:
    """(n_pairs, 2): where each pair's inner switch reaches 0 and where it reaches 1, Å."""
    radius = inner.detach().double().numpy()
    return np.ascontiguousarray(np.stack([INNER_END * radius, INNER_START * radius], axis=1))


def _f(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


def _i(values) -> np.ndarray:
    return np.asarray(values, dtype=np.int64)
