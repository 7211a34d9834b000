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
        e = math.exp(-2.0 * (1.0 - r / rc))  # tanh y = (1 − e^−2y)/(1 + e^−2y): one exp, faster than tanh
        t = (1.0 - e) / (1.0 + e)
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
    angular_group, group_start, group_factor_start, factor_slot, factor_narrow, group_lz_start, group_lz, group_narrow,
    group_only_narrow, angular_factor, angular_lz, angular_norm, angular_column,
    slot_eta, slot_rs, slot_rc, lz_lambda, lz_zeta,
    cutoff_kind, cutoff_alpha, angular_cutoff,
    features, jacobian,
):  # fmt: skip
    """One pass per centre atom i = first + c, c < len(offsets) − 1, over its pairs
    offsets[c] ≤ p < offsets[c + 1]: features[c] and, `with_jacobian`, jacobian[p]."""
    n_rc, n_slots, n_lz = rc_values.shape[0], slot_eta.shape[0], lz_lambda.shape[0]
    n_elements = radial_group.shape[0]
    for c in numba.prange(offsets.shape[0] - 1):
        p0, p1 = offsets[c], offsets[c + 1]
        n = p1 - p0
        si = species[first + c]
        r = np.empty(n)
        u = np.empty((n, 3))
        fc = np.zeros((n, n_rc))  # f_c and f_c' per pair and distinct cutoff radius
        dfc = np.zeros((n, n_rc))
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
                n_legs += 1
        # legs (pairs within the angular cutoff) ordered by neighbour element: leg_start[e] ≤ b <
        # leg_start[e + 1] are the legs to element e, so each element pair's triplets are one block
        leg_start = np.zeros(n_elements + 1, dtype=np.int64)
        for a in range(n):
            if r[a] < angular_cutoff:
                leg_start[species[pair_j[p0 + a]] + 1] += 1
        for e in range(n_elements):
            leg_start[e + 1] += leg_start[e]
        fill = leg_start[:n_elements].copy()
        legs = np.empty(n_legs, dtype=np.int64)
        for a in range(n):
            if r[a] < angular_cutoff:
                e = species[pair_j[p0 + a]]
                legs[fill[e]] = a
                fill[e] += 1
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
        n_factors = factor_slot.shape[0]
        Q = np.empty(n_factors)  # per triplet and factor t (slot, narrow or not): the product of its
        Qij = np.empty(n_factors)  # legs' P, and that product with one leg's P → P' (Qjk: / r_jk)
        Qik = np.empty(n_factors)
        Qjk = np.empty(n_factors)
        A = np.empty(n_lz)
        dA = np.empty(n_lz)
        for e1 in range(n_elements):
            for e2 in range(e1, n_elements):
                g = angular_group[si, e1, e2]
                if g < 0:
                    continue
                narrow_rc2 = group_narrow[g] * group_narrow[g]
                for b1 in range(leg_start[e1], leg_start[e1 + 1]):
                    a1 = legs[b1]
                    p = p0 + a1
                    for b2 in range(b1 + 1 if e1 == e2 else leg_start[e2], leg_start[e2 + 1]):
                        a2 = legs[b2]
                        q = p0 + a2
                        rjk = 1.0
                        d0 = d1 = d2 = 0.0
                        if narrow_rc2 > 0.0:
                            d0 = vectors[q, 0] - vectors[p, 0]
                            d1 = vectors[q, 1] - vectors[p, 1]
                            d2 = vectors[q, 2] - vectors[p, 2]
                            rjk2 = d0 * d0 + d1 * d1 + d2 * d2
                            if group_only_narrow[g] and rjk2 >= narrow_rc2:
                                continue  # every term has f_c(r_jk) = 0
                            rjk = math.sqrt(rjk2)
                            for k in range(n_rc):
                                fc_jk[k] = dfc_jk[k] = 0.0
                                if rjk < rc_values[k]:
                                    fc_jk[k], dfc_jk[k] = _cutoff(rjk, rc_values[k], cutoff_kind, cutoff_alpha)
                        for t in range(group_factor_start[g], group_factor_start[g + 1]):
                            s = factor_slot[t]
                            pij, pik = P[b1, s], P[b2, s]
                            if factor_narrow[t]:
                                k = slot_rc[s]
                                offset = rjk - slot_rs[s]
                                e = math.exp(-slot_eta[s] * offset * offset)
                                pjk = e * fc_jk[k]
                                Q[t] = pij * pik * pjk
                                Qij[t] = dP[b1, s] * pik * pjk
                                Qik[t] = pij * dP[b2, s] * pjk
                                Qjk[t] = pij * pik * e * (dfc_jk[k] - 2.0 * slot_eta[s] * offset * fc_jk[k]) / rjk
                            else:
                                Q[t] = pij * pik
                                Qij[t] = dP[b1, s] * pik
                                Qik[t] = pij * dP[b2, s]
                                Qjk[t] = 0.0
                        ux1, uy1, uz1, ux2, uy2, uz2 = u[a1, 0], u[a1, 1], u[a1, 2], u[a2, 0], u[a2, 1], u[a2, 2]
                        cos = ux1 * ux2 + uy1 * uy2 + uz1 * uz2
                        for t in range(group_lz_start[g], group_lz_start[g + 1]):
                            z = group_lz[t]
                            base = max(0.0, 1.0 + lz_lambda[z] * cos)
                            zeta = lz_zeta[z]
                            power = 1.0  # base^(ζ − 1), by multiplication for integer ζ
                            if zeta == int(zeta):
                                for _ in range(int(zeta) - 1):
                                    power *= base
                            else:
                                power = base ** (zeta - 1.0)
                            A[z], dA[z] = power * base, lz_lambda[z] * zeta * power
                        inv_rij, ratio = 1.0 / r[a1], r[a1] / r[a2]
                        for f in range(group_start[g], group_start[g + 1]):
                            t = angular_factor[f]
                            col = angular_column[f]
                            norm_a = angular_norm[f] * A[angular_lz[f]]
                            features[c, col] += norm_a * Q[t]
                            if with_jacobian:
                                cp = angular_norm[f] * dA[angular_lz[f]] * Q[t] * inv_rij  # ∂/∂cos, over r_ij
                                cq = cp * ratio
                                own_p, own_q = norm_a * Qij[t] - cp * cos, norm_a * Qik[t] - cq * cos
                                jk = norm_a * Qjk[t]
                                Jp, Jq = jacobian[p, col], jacobian[q, col]
                                Jp[0] += own_p * ux1 + cp * ux2 - jk * d0
                                Jp[1] += own_p * uy1 + cp * uy2 - jk * d1
                                Jp[2] += own_p * uz1 + cp * uz2 - jk * d2
                                Jq[0] += own_q * ux2 + cq * ux1 + jk * d0
                                Jq[1] += own_q * uy2 + cq * uy1 + jk * d1
                                Jq[2] += own_q * uz2 + cq * uz1 + jk * d2


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
        start, factor_start, factor_slot, factor_narrow, lz_start, group_lz, narrow_rc, only_narrow = [0], [0], [], [], [0], [], [], []
        factor, lz, norm, cols = [], [], [], []
        for g, (key, members) in enumerate(angular.items()):
            angular_group[key] = g
            factors = sorted({(slots.index((f.eta, f.rs, f.rc)), f.kind == "narrow") for f, _ in members})
            lz_used = sorted({lzs.index((f.lam, f.zeta)) for f, _ in members})
            for f, col in members:
                factor.append(factor_start[-1] + factors.index((slots.index((f.eta, f.rs, f.rc)), f.kind == "narrow")))
                lz.append(lzs.index((f.lam, f.zeta)))
                norm.append(2.0 ** (1.0 - f.zeta))
                cols.append(col)
            factor_slot += [slot for slot, _ in factors]
            factor_narrow += [is_narrow for _, is_narrow in factors]
            group_lz += lz_used
            start.append(len(factor)), factor_start.append(len(factor_slot)), lz_start.append(len(group_lz))
            narrow_rc.append(max((f.rc for f, _ in members if f.kind == "narrow"), default=0.0))
            only_narrow.append(all(f.kind == "narrow" for f, _ in members))
        self.angular = (
            angular_group, _i(start), _i(factor_start), _i(factor_slot), np.array(factor_narrow, dtype=np.bool_), _i(lz_start),
            _i(group_lz), _f(narrow_rc), np.array(only_narrow, dtype=np.bool_), _i(factor), _i(lz), _f(norm), _i(cols),
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
