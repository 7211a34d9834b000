"""Compiled symmetry-function engine: features, their contraction with ∂E/∂G, and the
Jacobian, from one set of analytic formulas, per centre atom, in O(N) time and memory.

The definitions are those of `symmetry_functions` (n2p2's). Every term factorises over its
legs d (r_ij, r_ik, and r_jk for narrow functions) into one "slot" per distinct
(η, r_s, r_c):

    term = norm · A(cos θ) · Π_d P(r_d),   P(r) = exp(−η (r − r_s)²) f_c(r),
    P'(r) = exp(−η (r − r_s)²) (f_c'(r) − 2η (r − r_s) f_c(r)),
    A = max(0, 1 + λ cos θ)^ζ,             A' = λ ζ max(0, 1 + λ cos θ)^(ζ−1),

so P and P' are computed once per pair and slot, and per triplet only cos θ, the r_jk
slots of narrow functions and A, A' per distinct (λ, ζ) remain. With the chain rule

    ∂r_ij/∂v_p = u_p,  ∂cos/∂v_p = (u_q − cos u_p)/r_ij,  ∂r_jk/∂v_p = −(v_q − v_p)/r_jk
    (and p ↔ q, with +(v_q − v_p)/r_jk),

one pass over a centre's pairs and triplets gives the features G_i and, if asked, the
Jacobian J_p = ∂G_{i_p}/∂v_p (n_pairs, n_features, 3): the training cache, and at
prediction, with w = ∂E/∂G from the networks, the pair gradients g_p = w_{i_p} · J_p
(forces and stress, `models/forces.py`). Transcendental functions are evaluated once per
pair or triplet and slot, never again for the derivatives.

Triplets are never stored: they are enumerated per centre from the pairs (sorted by
centre), two legs both within the angular cutoff. Centres are independent, so the loop
over them runs on numba's threads (`numba.set_num_threads`), and a caller may pass any
contiguous block of centres with exactly their pairs (`centres`): memory is linear in the
block. Arithmetic is float64 whatever the model's dtype.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch
from torch import Tensor

from forcefit.descriptors.cutoff import CUTOFF_TYPES

TANH1_CUBED = math.tanh(1.0) ** 3


@numba.njit(cache=True, inline="always")
def _cutoff(r, rc, kind, alpha):
    """(f_c(r), f_c'(r)) for r < rc, n2p2's type numbers (cutoff.py)."""
    if kind == 0:
        return 1.0, 0.0
    if kind == 2 or kind == 3:
        t = math.tanh(1.0 - r / rc)
        f, df = t * t * t, -3.0 * t * t * (1.0 - t * t) / rc
        if kind == 3:
            return f / TANH1_CUBED, df / TANH1_CUBED
        return f, df
    rci = alpha * rc
    if r <= rci:
        return 1.0, 0.0
    width = rc - rci
    x = (r - rci) / width
    if kind == 1:
        return 0.5 * (math.cos(math.pi * x) + 1.0), -0.5 * math.pi * math.sin(math.pi * x) / width
    if kind == 4:
        s = 1.0 - x * x
        f = math.exp(1.0 - 1.0 / s)
        return f, -2.0 * x * f / (s * s) / width
    if kind == 5:
        return (2.0 * x - 3.0) * x * x + 1.0, (6.0 * x - 6.0) * x / width
    if kind == 6:
        return ((15.0 - 6.0 * x) * x - 10.0) * x**3 + 1.0, ((-30.0 * x + 60.0) * x - 30.0) * x * x / width
    if kind == 7:
        return (x * (x * (20.0 * x - 70.0) + 84.0) - 35.0) * x**4 + 1.0, (x * (x * (140.0 * x - 420.0) + 420.0) - 140.0) * x**3 / width
    return (
        (x * (x * ((315.0 - 70.0 * x) * x - 540.0) + 420.0) - 126.0) * x**5 + 1.0,
        (x * (x * ((2520.0 - 630.0 * x) * x - 3780.0) + 2520.0) - 630.0) * x**4 / width,
    )


@numba.njit(cache=True, parallel=True)
def _evaluate(
    with_jacobian, first, species, vectors, pair_j, offsets,
    rc_values, radial_group, radial_start, radial_eta, radial_rs, radial_rc, radial_column,
    angular_group, group_start, group_slot_start, group_slots, group_lz_start, group_lz, group_narrow, group_only_narrow,
    angular_narrow, angular_slot, angular_lz, angular_norm, angular_column,
    slot_eta, slot_rs, slot_rc, lz_lambda, lz_zeta,
    cutoff_kind, cutoff_alpha, angular_cutoff,
    features, jacobian,
):  # fmt: skip
    """One pass per centre atom i = first + c, c < len(offsets) − 1, over its pairs
    offsets[c] ≤ p < offsets[c + 1]: features[c] and, `with_jacobian`, jacobian[p]."""
    n_rc, n_slots, n_lz = rc_values.shape[0], slot_eta.shape[0], lz_lambda.shape[0]
    for c in numba.prange(offsets.shape[0] - 1):
        p0, p1 = offsets[c], offsets[c + 1]
        n = p1 - p0
        si = species[first + c]
        r = np.empty(n)
        u = np.empty((n, 3))
        fc = np.zeros((n, n_rc))  # f_c and f_c' per pair and distinct cutoff radius
        dfc = np.zeros((n, n_rc))
        legs = np.empty(n, dtype=np.int64)
        n_legs = 0
        for a in range(n):
            v = vectors[p0 + a]
            r[a] = math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])
            for x in range(3):
                u[a, x] = v[x] / r[a]
            for k in range(n_rc):
                if r[a] < rc_values[k]:
                    fc[a, k], dfc[a, k] = _cutoff(r[a], rc_values[k], cutoff_kind, cutoff_alpha)
            if r[a] < angular_cutoff:
                legs[n_legs] = a
                n_legs += 1
        for a in range(n):  # radial terms
            g = radial_group[si, species[pair_j[p0 + a]]]
            if g < 0:
                continue
            for f in range(radial_start[g], radial_start[g + 1]):
                k = radial_rc[f]
                if r[a] >= rc_values[k]:
                    continue
                offset = r[a] - radial_rs[f]
                e = math.exp(-radial_eta[f] * offset * offset)
                col = radial_column[f]
                features[c, col] += e * fc[a, k]
                if with_jacobian:
                    d = e * (dfc[a, k] - 2.0 * radial_eta[f] * offset * fc[a, k])
                    for x in range(3):
                        jacobian[p0 + a, col, x] += d * u[a, x]
        if n_legs < 2:
            continue
        P = np.zeros((n_legs, n_slots))  # per leg and slot: P and P'
        dP = np.zeros((n_legs, n_slots))
        for b in range(n_legs):
            a = legs[b]
            for s in range(n_slots):
                k = slot_rc[s]
                if r[a] < rc_values[k]:
                    offset = r[a] - slot_rs[s]
                    e = math.exp(-slot_eta[s] * offset * offset)
                    P[b, s] = e * fc[a, k]
                    dP[b, s] = e * (dfc[a, k] - 2.0 * slot_eta[s] * offset * fc[a, k])
        fc_jk = np.zeros(n_rc)
        dfc_jk = np.zeros(n_rc)
        Pjk = np.zeros(n_slots)
        dPjk = np.zeros(n_slots)
        A = np.empty(n_lz)
        dA = np.empty(n_lz)
        for b1 in range(n_legs):
            a1 = legs[b1]
            p = p0 + a1
            s1 = species[pair_j[p]]
            for b2 in range(b1 + 1, n_legs):
                a2 = legs[b2]
                q = p0 + a2
                s2 = species[pair_j[q]]
                g = angular_group[si, min(s1, s2), max(s1, s2)]
                if g < 0:
                    continue
                rjk = 1.0
                d0 = d1 = d2 = 0.0
                if group_narrow[g] > 0.0:
                    d0 = vectors[q, 0] - vectors[p, 0]
                    d1 = vectors[q, 1] - vectors[p, 1]
                    d2 = vectors[q, 2] - vectors[p, 2]
                    rjk = math.sqrt(d0 * d0 + d1 * d1 + d2 * d2)
                    if group_only_narrow[g] and rjk >= group_narrow[g]:
                        continue  # every term has f_c(r_jk) = 0
                    for k in range(n_rc):
                        fc_jk[k] = dfc_jk[k] = 0.0
                        if rjk < rc_values[k]:
                            fc_jk[k], dfc_jk[k] = _cutoff(rjk, rc_values[k], cutoff_kind, cutoff_alpha)
                    for t in range(group_slot_start[g], group_slot_start[g + 1]):
                        s = group_slots[t]
                        k = slot_rc[s]
                        offset = rjk - slot_rs[s]
                        e = math.exp(-slot_eta[s] * offset * offset)
                        Pjk[s] = e * fc_jk[k]
                        dPjk[s] = e * (dfc_jk[k] - 2.0 * slot_eta[s] * offset * fc_jk[k])
                cos = u[a1, 0] * u[a2, 0] + u[a1, 1] * u[a2, 1] + u[a1, 2] * u[a2, 2]
                for t in range(group_lz_start[g], group_lz_start[g + 1]):
                    z = group_lz[t]
                    base = max(0.0, 1.0 + lz_lambda[z] * cos)
                    zeta = lz_zeta[z]
                    if zeta == 1.0:
                        A[z], dA[z] = base, lz_lambda[z]
                    else:
                        power = base ** (zeta - 1.0)
                        A[z], dA[z] = power * base, lz_lambda[z] * zeta * power
                for f in range(group_start[g], group_start[g + 1]):
                    s = angular_slot[f]
                    pij, pik = P[b1, s], P[b2, s]
                    pjk, dpjk = 1.0, 0.0
                    if angular_narrow[f]:
                        pjk, dpjk = Pjk[s], dPjk[s]
                    col = angular_column[f]
                    norm_a = angular_norm[f] * A[angular_lz[f]]
                    features[c, col] += norm_a * pij * pik * pjk
                    if with_jacobian:
                        d_cos = angular_norm[f] * dA[angular_lz[f]] * pij * pik * pjk
                        d_ij = norm_a * dP[b1, s] * pik * pjk
                        d_ik = norm_a * pij * dP[b2, s] * pjk
                        jk = norm_a * pij * pik * dpjk / rjk
                        cp, cq = d_cos / r[a1], d_cos / r[a2]
                        Jp, Jq = jacobian[p, col], jacobian[q, col]
                        Jp[0] += (d_ij - cp * cos) * u[a1, 0] + cp * u[a2, 0] - jk * d0
                        Jp[1] += (d_ij - cp * cos) * u[a1, 1] + cp * u[a2, 1] - jk * d1
                        Jp[2] += (d_ij - cp * cos) * u[a1, 2] + cp * u[a2, 2] - jk * d2
                        Jq[0] += (d_ik - cq * cos) * u[a2, 0] + cq * u[a1, 0] + jk * d0
                        Jq[1] += (d_ik - cq * cos) * u[a2, 1] + cq * u[a1, 1] + jk * d1
                        Jq[2] += (d_ik - cq * cos) * u[a2, 2] + cq * u[a1, 2] + jk * d2


class Engine:
    """The tables `_evaluate` reads, built once from a `SymmetryFunctions`' list."""

    def __init__(self, descriptor) -> None:
        elements = descriptor.elements
        index = {e: n for n, e in enumerate(elements)}
        E = len(elements)
        self.n_features = descriptor.n_features
        self.cutoff_kind = CUTOFF_TYPES[descriptor.cutoff_type]
        self.cutoff_alpha = float(descriptor.cutoff_alpha)
        self.angular_cutoff = float(descriptor.angular_cutoff)
        rcs = sorted({f.rc for f in descriptor.functions})
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
        self.radial = (_f(rcs), radial_group, _i(start), _f(eta), _f(rs), _i(rc), _i(cols))

        slots = sorted({(f.eta, f.rs, f.rc) for members in angular.values() for f, _ in members})
        lzs = sorted({(f.lam, f.zeta) for members in angular.values() for f, _ in members})
        angular_group = np.full((E, E, E), -1, dtype=np.int64)
        start, slot_start, group_slots, lz_start, group_lz, narrow_rc, only_narrow = [0], [0], [], [0], [], [], []
        narrow, slot, lz, norm, cols = [], [], [], [], []
        for g, (key, members) in enumerate(angular.items()):
            angular_group[key] = g
            for f, col in members:
                narrow.append(f.kind == "narrow")
                slot.append(slots.index((f.eta, f.rs, f.rc)))
                lz.append(lzs.index((f.lam, f.zeta)))
                norm.append(2.0 ** (1.0 - f.zeta))
                cols.append(col)
            group_slots += sorted({slots.index((f.eta, f.rs, f.rc)) for f, _ in members if f.kind == "narrow"})
            group_lz += sorted({lzs.index((f.lam, f.zeta)) for f, _ in members})
            start.append(len(narrow)), slot_start.append(len(group_slots)), lz_start.append(len(group_lz))
            narrow_rc.append(max((f.rc for f, _ in members if f.kind == "narrow"), default=0.0))
            only_narrow.append(all(f.kind == "narrow" for f, _ in members))
        self.angular = (
            angular_group, _i(start), _i(slot_start), _i(group_slots), _i(lz_start), _i(group_lz), _f(narrow_rc),
            np.array(only_narrow, dtype=np.bool_), np.array(narrow, dtype=np.bool_), _i(slot), _i(lz), _f(norm), _i(cols),
            _f([s[0] for s in slots]), _f([s[1] for s in slots]), _i([rcs.index(s[2]) for s in slots]),
            _f([z[0] for z in lzs]), _f([z[1] for z in lzs]),
        )  # fmt: skip

    def run(self, species: Tensor, vectors: Tensor, pair_i: Tensor, pair_j: Tensor, centres: tuple[int, int], with_jacobian: bool):
        """Features (n_block, n_features) and, `with_jacobian`, ∂G_{i_p}/∂v_p (n_pairs, n_features, 3)
        as float64 NumPy arrays, for the atoms a ≤ i < b of `centres` = (a, b); the pairs
        (CPU tensors) are exactly those centred on them, sorted by centre. Runs on as many
        threads as torch is set to use."""
        first, last = centres
        n_pairs = vectors.shape[0]
        local = pair_i.numpy() - first
        if n_pairs and (local[0] < 0 or local[-1] >= last - first or (np.diff(local) < 0).any()):
            raise ValueError("symmetry-function engine: pairs must be sorted by centre and centred on the atoms evaluated")
        offsets = np.searchsorted(local, np.arange(last - first + 1))
        features = np.zeros((last - first, self.n_features))
        jacobian = np.zeros((n_pairs, self.n_features, 3) if with_jacobian else (0, self.n_features, 3))
        numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))
        _evaluate(
            with_jacobian, first, species.numpy(), np.ascontiguousarray(vectors.detach().numpy(), dtype=np.float64),
            pair_j.numpy(), offsets, *self.radial, *self.angular,
            self.cutoff_kind, self.cutoff_alpha, self.angular_cutoff, features, jacobian,
        )  # fmt: skip
        return features, jacobian


def _f(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


def _i(values) -> np.ndarray:
    return np.asarray(values, dtype=np.int64)
