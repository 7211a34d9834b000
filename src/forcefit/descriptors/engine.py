"""Compiled symmetry-function engine (numba): features, their contraction with ∂E/∂G, and
the Jacobian, from one set of analytic formulas, per centre atom, in O(N) time and memory.

The definitions are those of `symmetry_functions` (n2p2's). Every term factorises over its
legs d (r_ij, r_ik, and r_jk for narrow functions) into one "slot" per distinct
(η, r_s, r_c):

    term = norm · A(cos θ) · Π_d P(r_d),   P(r) = exp(−η (r − r_s)²) f_c(r),
    P'(r) = exp(−η (r − r_s)²) (f_c'(r) − 2η (r − r_s) f_c(r)),
    A = max(0, 1 + λ cos θ)^ζ,             A' = λ ζ max(0, 1 + λ cos θ)^(ζ−1),

so P and P' are computed once per pair and slot, and per triplet only cos θ, the r_jk
slots of narrow functions and A, A' per distinct (λ, ζ) remain; transcendental functions
are evaluated once, never again for the derivatives. With the chain rule

    ∂r_ij/∂v_p = u_p,  ∂cos/∂v_p = (u_q − cos u_p)/r_ij,  ∂r_jk/∂v_p = −(v_q − v_p)/r_jk
    (and p ↔ q, with +(v_q − v_p)/r_jk),

one pass over a centre's pairs and triplets gives, by mode,

    FEATURES   G_i (n_atoms, n_features);
    GRADIENT   g_p = Σ_f w_{i_p f} ∂G_{i_p f}/∂v_p (n_pairs, 3) for weights w, at prediction
               w = ∂E/∂G from the networks: forces and stress (`models/forces.py`) without
               storing any derivative per function;
    JACOBIAN   G and J_p = ∂G_{i_p}/∂v_p (n_pairs, n_features, 3): the training cache, and
               committees (one J for every member).

Triplets are never stored: they are enumerated per centre from the pairs (sorted by
centre), two legs both within the angular cutoff, by element pair, and handled
TRIPLET_BLOCK at a time as arrays, so that the compiler vectorises the arithmetic (with a
branch-free exp). Centres are independent, so the loop over them runs on numba's threads
(as many as torch uses), and a caller may pass any contiguous block of centres with
exactly their pairs (`centres`): memory is linear in the block. Arithmetic is float64
whatever the model's dtype.
"""

from __future__ import annotations

import math
import types

import numba
import numpy as np
import torch
from torch import Tensor

from forcefit.descriptors.cutoff import CUTOFF_TYPES, INNER_END, INNER_START

TANH1_CUBED = math.tanh(1.0) ** 3
FEATURES, GRADIENT, JACOBIAN = 0, 1, 2  # what `_evaluate` computes
TRIPLET_BLOCK = 512  # triplets processed together: long vector loops, scratch that stays in cache
LOG2E, LN2_HI, LN2_LO = 1.4426950408889634, 0.6931471803691238, 1.9082149292705877e-10
INVERSE_FACTORIALS = tuple(1.0 / math.factorial(n) for n in range(14))


@numba.njit(cache=True, error_model="numpy")
def _exp_block(x, out, bits, lo, hi):
    """out[b] = exp(min(x[b], 0)) for lo ≤ b < hi, branch-free so that the compiler vectorises
    it (math.exp is a library call it will not; `out` must not be `x`, or the compiler's
    overlap check falls back to scalar code): x = k ln 2 + r (Cody–Waite), e^r by its Taylor
    polynomial to degree 13 (|r| ≤ ln 2 / 2), 2^k from its bit pattern. Within 1 ulp of
    math.exp (a test holds it so); arguments below −700 give e^−700."""
    for b in range(lo, hi):
        y = min(max(x[b], -700.0), 0.0)
        k = math.floor(y * LOG2E + 0.5)
        r = (y - k * LN2_HI) - k * LN2_LO
        p = INVERSE_FACTORIALS[13]
        for n in range(12, -1, -1):
            p = p * r + INVERSE_FACTORIALS[n]
        out[b] = p
        bits[b] = (int(k) + 1023) << 52
    scale = bits.view(np.float64)
    for b in range(lo, hi):
        out[b] *= scale[b]


@numba.njit(cache=True, error_model="numpy")
def _cutoff_block(kind, alpha, rc, r, f, df, work, bits, lo, hi):
    """f[b], df[b] = f_c(r[b]), f_c'(r[b]) for lo ≤ b < hi (n2p2's type numbers, cutoff.py;
    zero from r_c on), in loops without branches per element."""
    if kind == 0:
        for b in range(lo, hi):
            f[b] = 1.0 if r[b] < rc else 0.0
            df[b] = 0.0
        return
    if kind == 2 or kind == 3:  # tanh y = (1 − e^−2y)/(1 + e^−2y), y = 1 − r/r_c
        norm = 1.0 if kind == 2 else 1.0 / TANH1_CUBED
        for b in range(lo, hi):
            f[b] = -2.0 * (1.0 - r[b] / rc)
        _exp_block(f, work, bits, lo, hi)
        for b in range(lo, hi):
            t = (1.0 - work[b]) / (1.0 + work[b])
            inside = r[b] < rc
            f[b] = norm * t * t * t if inside else 0.0
            df[b] = -3.0 * norm * t * t * (1.0 - t * t) / rc if inside else 0.0
        return
    rci = alpha * rc  # f_c = 1 up to the inner cutoff: x clamped at 0 gives f = 1, f' = 0
    width = rc - rci
    if kind == 4:
        for b in range(lo, hi):
            x = max((r[b] - rci) / width, 0.0)
            s = max(1.0 - x * x, 1e-300)  # past r_c the exponent is clamped, and the value unused
            f[b] = 1.0 - 1.0 / s
        _exp_block(f, work, bits, lo, hi)
        for b in range(lo, hi):
            x = max((r[b] - rci) / width, 0.0)
            s = max(1.0 - x * x, 1e-300)
            inside = r[b] < rc
            f[b] = work[b] if inside else 0.0
            df[b] = -2.0 * x * work[b] / (s * s) / width if inside else 0.0
        return
    for b in range(lo, hi):
        x = max((r[b] - rci) / width, 0.0)
        if kind == 1:
            value, slope = 0.5 * (math.cos(math.pi * x) + 1.0), -0.5 * math.pi * math.sin(math.pi * x)
        elif kind == 5:
            value, slope = (2.0 * x - 3.0) * x * x + 1.0, (6.0 * x - 6.0) * x
        elif kind == 6:
            value, slope = ((15.0 - 6.0 * x) * x - 10.0) * x**3 + 1.0, ((-30.0 * x + 60.0) * x - 30.0) * x * x
        elif kind == 7:
            value = (x * (x * (20.0 * x - 70.0) + 84.0) - 35.0) * x**4 + 1.0
            slope = (x * (x * (140.0 * x - 420.0) + 420.0) - 140.0) * x**3
        else:
            value = (x * (x * ((315.0 - 70.0 * x) * x - 540.0) + 420.0) - 126.0) * x**5 + 1.0
            slope = (x * (x * ((2520.0 - 630.0 * x) * x - 3780.0) + 2520.0) - 630.0) * x**4
        inside = r[b] < rc
        f[b] = value if inside else 0.0
        df[b] = slope / width if inside else 0.0


@numba.njit(cache=True, fastmath={"reassoc", "contract"}, error_model="numpy")
def _sum_of_products(x, y, m):
    """Σ_k x[k] y[k], k < m: the one kind of loop whose sum may be reordered (so that it vectorises)."""
    total = 0.0
    for k in range(m):
        total += x[k] * y[k]
    return total


@numba.njit(cache=True, error_model="numpy")
def _triplet_block(mode, g, m, t1, t2, p0, c, legs, inverse_r, lu, P, dP, weights, leg_gradients, tables, outputs, scratch, bits):
    """The angular terms of group g for m triplets (legs t1[k], t2[k]) of centre c: every
    per-triplet quantity is an array over k, in loops the compiler vectorises. `scratch`
    rows (the first five filled by the enumeration): 0 cos, 1–3 v_k − v_j, 4 r_jk², 5 work, 6–9 the gradient sums, 10 exp arguments, then per distinct r_c
    f_c(r_jk) and f_c'(r_jk), per factor Q, Q_ij, Q_ik, Q_jk, and per (λ, ζ) A and A'."""
    (group_start, group_factor_start, factor_slot, factor_narrow, group_lz_start, group_lz, group_narrow, angular_factor,
     angular_lz, angular_norm, angular_column, slot_eta, slot_rs, slot_rc, lz_lambda, lz_zeta, rc_values, cutoff_kind,
     cutoff_alpha) = tables  # fmt: skip
    features, gradients, jacobian = outputs
    n_rc, n_factors = rc_values.shape[0], factor_slot.shape[0]
    cos, d, rjk, work = scratch[0], scratch[1:4], scratch[4], scratch[5]
    s_ij, s_ik, s_jk, s_cos, argument = scratch[6], scratch[7], scratch[8], scratch[9], scratch[10]
    fc_jk, dfc_jk = scratch[11 : 11 + n_rc], scratch[11 + n_rc : 11 + 2 * n_rc]
    q0 = 11 + 2 * n_rc
    Q, Qij = scratch[q0 : q0 + n_factors], scratch[q0 + n_factors : q0 + 2 * n_factors]
    Qik, Qjk = scratch[q0 + 2 * n_factors : q0 + 3 * n_factors], scratch[q0 + 3 * n_factors : q0 + 4 * n_factors]
    a0 = q0 + 4 * n_factors
    n_lz = lz_lambda.shape[0]
    A, dA = scratch[a0 : a0 + n_lz], scratch[a0 + n_lz : a0 + 2 * n_lz]
    if group_narrow[g] > 0.0:
        for k in range(m):
            rjk[k] = math.sqrt(rjk[k])  # the enumeration left r_jk² there
        for i in range(n_rc):
            _cutoff_block(cutoff_kind, cutoff_alpha, rc_values[i], rjk, fc_jk[i], dfc_jk[i], work, bits, 0, m)
    for t in range(group_factor_start[g], group_factor_start[g + 1]):
        s = factor_slot[t]
        if factor_narrow[t]:
            i = slot_rc[s]
            for k in range(m):
                offset = rjk[k] - slot_rs[s]
                argument[k] = -slot_eta[s] * offset * offset
            _exp_block(argument, work, bits, 0, m)
            if mode == FEATURES:
                for k in range(m):
                    Q[t, k] = P[s, t1[k]] * P[s, t2[k]] * work[k] * fc_jk[i, k]
                continue
            for k in range(m):
                b1, b2 = t1[k], t2[k]
                offset = rjk[k] - slot_rs[s]
                pjk = work[k] * fc_jk[i, k]
                dpjk = work[k] * (dfc_jk[i, k] - 2.0 * slot_eta[s] * offset * fc_jk[i, k])
                Q[t, k] = P[s, b1] * P[s, b2] * pjk
                Qij[t, k] = dP[s, b1] * P[s, b2] * pjk
                Qik[t, k] = P[s, b1] * dP[s, b2] * pjk
                Qjk[t, k] = P[s, b1] * P[s, b2] * dpjk / rjk[k]
        elif mode == FEATURES:
            for k in range(m):
                Q[t, k] = P[s, t1[k]] * P[s, t2[k]]
        else:
            for k in range(m):
                b1, b2 = t1[k], t2[k]
                Q[t, k] = P[s, b1] * P[s, b2]
                Qij[t, k] = dP[s, b1] * P[s, b2]
                Qik[t, k] = P[s, b1] * dP[s, b2]
                Qjk[t, k] = 0.0
    for t in range(group_lz_start[g], group_lz_start[g + 1]):
        z = group_lz[t]
        lam, zeta = lz_lambda[z], lz_zeta[z]
        for k in range(m):  # A holds the base 1 + λ cos θ (floored at 0), dA the power base^(ζ−1), for now
            A[z, k] = max(0.0, 1.0 + lam * cos[k])
            dA[z, k] = 1.0
        if zeta == int(zeta):  # by multiplication
            for _ in range(int(zeta) - 1):
                for k in range(m):
                    dA[z, k] *= A[z, k]
        else:
            for k in range(m):
                dA[z, k] = A[z, k] ** (zeta - 1.0)
        for k in range(m):
            A[z, k] *= dA[z, k]
            dA[z, k] *= lam * zeta
    if mode == GRADIENT:
        for k in range(m):
            s_ij[k] = s_ik[k] = s_jk[k] = s_cos[k] = 0.0
    for f in range(group_start[g], group_start[g + 1]):
        t, z, col, norm = angular_factor[f], angular_lz[f], angular_column[f], angular_norm[f]
        if mode != GRADIENT:
            features[c, col] += norm * _sum_of_products(A[z], Q[t], m)
        if mode == GRADIENT:  # Σ_f w_f ∂term_f/∂(r_ij, r_ik, r_jk, cos), per triplet
            w = norm * weights[c, col]
            if w == 0.0:
                continue
            for k in range(m):
                wa = w * A[z, k]
                s_ij[k] += wa * Qij[t, k]
                s_ik[k] += wa * Qik[t, k]
                s_jk[k] += wa * Qjk[t, k]
                s_cos[k] += w * dA[z, k] * Q[t, k]
        elif mode == JACOBIAN:
            for k in range(m):
                b1, b2 = t1[k], t2[k]
                na = norm * A[z, k]
                _add_leg_gradients(
                    jacobian[p0 + legs[b1], col], jacobian[p0 + legs[b2], col], lu, d, b1, b2, k, inverse_r[b1], inverse_r[b2], cos[k],
                    na * Qij[t, k], na * Qik[t, k], na * Qjk[t, k], norm * dA[z, k] * Q[t, k],
                )  # fmt: skip
    if mode == GRADIENT:
        for k in range(m):
            b1, b2 = t1[k], t2[k]
            _add_leg_gradients(
                leg_gradients[:, b1], leg_gradients[:, b2], lu, d, b1, b2, k, inverse_r[b1], inverse_r[b2], cos[k],
                s_ij[k], s_ik[k], s_jk[k], s_cos[k],
            )  # fmt: skip


@numba.njit(cache=True, inline="always", error_model="numpy")
def _add_leg_gradients(out_p, out_q, lu, d, b1, b2, k, inverse_r1, inverse_r2, cos, d_ij, d_ik, d_jk, d_cos):
    """Add ∂/∂v_p and ∂/∂v_q of a triplet's term(s) from the partials ∂/∂r_ij, ∂/∂r_ik,
    (∂/∂r_jk)/r_jk and ∂/∂cos θ (the module docstring's chain rule)."""
    cp, cq = d_cos * inverse_r1, d_cos * inverse_r2
    own_p, own_q = d_ij - cp * cos, d_ik - cq * cos
    for x in range(3):
        out_p[x] += own_p * lu[x, b1] + cp * lu[x, b2] - d_jk * d[x, k]
        out_q[x] += own_q * lu[x, b2] + cq * lu[x, b1] + d_jk * d[x, k]


def _evaluate(
    mode, first, species, vectors, pair_j, offsets, weights, fade,
    rc_values, radial_group, radial_start, radial_eta, radial_rs, radial_rc, radial_column,
    angular_group, group_start, group_factor_start, factor_slot, factor_narrow, group_lz_start, group_lz, group_narrow,
    group_only_narrow, angular_factor, angular_lz, angular_norm, angular_column,
    slot_eta, slot_rs, slot_rc, lz_lambda, lz_zeta,
    cutoff_kind, cutoff_alpha, angular_cutoff,
    features, gradients, jacobian,
):  # fmt: skip
    """One pass per centre atom i = first + c, c < len(offsets) − 1, over its pairs
    offsets[c] ≤ p < offsets[c + 1], by `mode` (module docstring).

    A centre's legs (pairs within the angular cutoff) are ordered by neighbour element, so
    that each element pair's triplets are enumerated together; narrow-only groups keep the
    triplets with r_jk < r_c. They are processed TRIPLET_BLOCK at a time (`_triplet_block`)."""
    n_rc, n_slots, n_lz = rc_values.shape[0], slot_eta.shape[0], lz_lambda.shape[0]
    n_elements, n_factors = radial_group.shape[0], factor_slot.shape[0]
    n_scratch = 11 + 2 * n_rc + 4 * n_factors + 2 * n_lz
    tables = (
        group_start, group_factor_start, factor_slot, factor_narrow, group_lz_start, group_lz, group_narrow, angular_factor,
        angular_lz, angular_norm, angular_column, slot_eta, slot_rs, slot_rc, lz_lambda, lz_zeta, rc_values, cutoff_kind,
        cutoff_alpha,
    )  # fmt: skip
    outputs = (features, gradients, jacobian)
    for c in numba.prange(offsets.shape[0] - 1):
        p0, p1 = offsets[c], offsets[c + 1]
        n = p1 - p0
        si = species[first + c]
        # the centre's pairs ordered by neighbour element: pair_start[e] ≤ b < pair_start[e + 1]
        # go to element e (pair p0 + order[b]); legs (within the angular cutoff) keep that order
        pair_start = np.zeros(n_elements + 1, dtype=np.int64)
        for a in range(n):
            pair_start[species[pair_j[p0 + a]] + 1] += 1
        for e in range(n_elements):
            pair_start[e + 1] += pair_start[e]
        fill = pair_start[:n_elements].copy()
        order = np.empty(n, dtype=np.int64)
        for a in range(n):
            e = species[pair_j[p0 + a]]
            order[fill[e]] = a
            fill[e] += 1
        r = np.empty(n)
        u = np.empty((3, n))
        work = np.empty(max(n, TRIPLET_BLOCK))
        argument = np.empty(n)
        slope = np.empty(n)
        bits = np.empty(max(n, TRIPLET_BLOCK), dtype=np.int64)
        fc = np.empty((n_rc, n))  # f_c and f_c' per distinct cutoff radius and pair
        dfc = np.empty((n_rc, n))
        for b in range(n):
            v = vectors[p0 + order[b]]
            r[b] = math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])
            for x in range(3):
                u[x, b] = v[x] / r[b]
        for k in range(n_rc):
            _cutoff_block(cutoff_kind, cutoff_alpha, rc_values[k], r, fc[k], dfc[k], work, bits, 0, n)
        for b in range(n):  # the inner switch of cutoff.py: the centre's pairs fade between fade[p] = (off, on) Å
            off, on = fade[p0 + order[b], 0], fade[p0 + order[b], 1]
            if on > 0.0 and r[b] < on:
                x = max((r[b] - off) / (on - off), 0.0)
                switch = x * x * x * (10.0 - 15.0 * x + 6.0 * x * x)
                slope_of_switch = 30.0 * x * x * (1.0 - x) * (1.0 - x) / (on - off)
                for k in range(n_rc):
                    dfc[k, b] = dfc[k, b] * switch + fc[k, b] * slope_of_switch
                    fc[k, b] *= switch
        pair_slopes = np.zeros(n if mode == GRADIENT else 0)
        for e in range(n_elements):  # radial terms, one vector loop per function and element
            g = radial_group[si, e]
            if g < 0:
                continue
            lo, hi = pair_start[e], pair_start[e + 1]
            for f in range(radial_start[g], radial_start[g + 1]):
                k, col, eta, rs = radial_rc[f], radial_column[f], radial_eta[f], radial_rs[f]
                for b in range(lo, hi):
                    argument[b] = -eta * (r[b] - rs) ** 2
                _exp_block(argument, work, bits, lo, hi)
                if mode != GRADIENT:
                    features[c, col] += _sum_of_products(work[lo:hi], fc[k, lo:hi], hi - lo)
                if mode == FEATURES:
                    continue
                for b in range(lo, hi):
                    slope[b] = work[b] * (dfc[k, b] - 2.0 * eta * (r[b] - rs) * fc[k, b])
                if mode == GRADIENT:
                    w = weights[c, col]
                    for b in range(lo, hi):
                        pair_slopes[b] += w * slope[b]
                else:
                    for b in range(lo, hi):
                        for x in range(3):
                            jacobian[p0 + order[b], col, x] += slope[b] * u[x, b]
        if mode == GRADIENT:
            for b in range(n):
                for x in range(3):
                    gradients[p0 + order[b], x] += pair_slopes[b] * u[x, b]
        leg_start = np.zeros(n_elements + 1, dtype=np.int64)
        legs = np.empty(n, dtype=np.int64)  # position b of each leg in the ordered pairs
        n_legs = 0
        for e in range(n_elements):
            leg_start[e] = n_legs
            for b in range(pair_start[e], pair_start[e + 1]):
                if r[b] < angular_cutoff:
                    legs[n_legs] = b
                    n_legs += 1
        leg_start[n_elements] = n_legs
        if n_legs < 2:
            continue
        lr = np.empty(n_legs)  # the legs' r, f_c, f_c', unit vectors, vectors, and P, P' per slot
        lfc = np.empty((n_rc, n_legs))
        ldfc = np.empty((n_rc, n_legs))
        lu = np.empty((3, n_legs))
        lv = np.empty((3, n_legs))
        P = np.empty((n_slots, n_legs))
        dP = np.empty((n_slots, n_legs))
        for leg in range(n_legs):
            b = legs[leg]
            lr[leg] = r[b]
            for k in range(n_rc):
                lfc[k, leg], ldfc[k, leg] = fc[k, b], dfc[k, b]
            for x in range(3):
                lu[x, leg] = u[x, b]
                lv[x, leg] = vectors[p0 + order[b], x]
            legs[leg] = order[b]  # from here on the leg's pair, p0 + legs[leg]
        for s in range(n_slots):
            k, eta, rs = slot_rc[s], slot_eta[s], slot_rs[s]
            for leg in range(n_legs):
                argument[leg] = -eta * (lr[leg] - rs) ** 2
            _exp_block(argument, work, bits, 0, n_legs)
            for leg in range(n_legs):
                P[s, leg] = work[leg] * lfc[k, leg]
                dP[s, leg] = work[leg] * (ldfc[k, leg] - 2.0 * eta * (lr[leg] - rs) * lfc[k, leg])
        inverse_r = 1.0 / lr
        scratch = np.empty((n_scratch, TRIPLET_BLOCK))
        cos, d, rjk = scratch[0], scratch[1:4], scratch[4]
        leg_gradients = np.zeros((3, n_legs if mode == GRADIENT else 0))
        t1 = np.empty(TRIPLET_BLOCK, dtype=np.int64)
        t2 = np.empty(TRIPLET_BLOCK, dtype=np.int64)
        for e1 in range(n_elements):
            for e2 in range(e1, n_elements):
                g = angular_group[si, e1, e2]
                if g < 0:
                    continue
                keep2 = group_narrow[g] * group_narrow[g] if group_only_narrow[g] else np.inf
                m = 0
                for b1 in range(leg_start[e1], leg_start[e1 + 1]):
                    for b2 in range(b1 + 1 if e1 == e2 else leg_start[e2], leg_start[e2 + 1]):
                        d0, d1, d2 = lv[0, b2] - lv[0, b1], lv[1, b2] - lv[1, b1], lv[2, b2] - lv[2, b1]
                        rjk2 = d0 * d0 + d1 * d1 + d2 * d2
                        t1[m], t2[m] = b1, b2
                        cos[m] = lu[0, b1] * lu[0, b2] + lu[1, b1] * lu[1, b2] + lu[2, b1] * lu[2, b2]
                        d[0, m], d[1, m], d[2, m], rjk[m] = d0, d1, d2, rjk2
                        m += rjk2 < keep2  # kept unless every term has f_c(r_jk) = 0 (no branch)
                        if m == TRIPLET_BLOCK:
                            _triplet_block(
                                mode,
                                g,
                                m,
                                t1,
                                t2,
                                p0,
                                c,
                                legs,
                                inverse_r,
                                lu,
                                P,
                                dP,
                                weights,
                                leg_gradients,
                                tables,
                                outputs,
                                scratch,
                                bits,
                            )
                            m = 0
                if m:
                    _triplet_block(
                        mode, g, m, t1, t2, p0, c, legs, inverse_r, lu, P, dP, weights, leg_gradients, tables, outputs, scratch, bits
                    )
        if mode == GRADIENT:
            for b in range(n_legs):
                for x in range(3):
                    gradients[p0 + legs[b], x] += leg_gradients[x, b]


def _compiled(function, name: str, parallel: bool):
    """`function` compiled under its own name: numba's on-disk cache tells compiled variants
    apart by name, not by the parallel flag. NumPy's error model everywhere: a division by
    zero (coincident atoms) gives inf/NaN, which the callers' finiteness checks report."""
    variant = types.FunctionType(function.__code__, function.__globals__, name, function.__defaults__, function.__closure__)
    variant.__qualname__ = name
    return numba.njit(cache=True, parallel=parallel, error_model="numpy")(variant)


# the loop over centres on numba's threads, and the same code compiled serial: one thread
# then starts no thread pool (whose idle workers would spin beside torch's own)
_evaluate_parallel = _compiled(_evaluate, "_evaluate_parallel", parallel=True)
_evaluate_serial = _compiled(_evaluate, "_evaluate_serial", parallel=False)


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

    def run(self, mode: int, species, vectors, pair_i, pair_j, centres: tuple[int, int], inner: Tensor, weights=None):
        """`_evaluate` for the atoms a ≤ i < b of `centres` = (a, b) from exactly the pairs
        centred on them (CPU tensors, sorted by centre), on as many threads as torch uses.
        `inner` (n_pairs,) is each pair's inner radius (0: no switch), handed to the compiled code as
        the radii where its fade ends and starts (never as module constants, which numba's cache
        would keep from an older version). Returns float64 NumPy arrays: FEATURES (n_block, n_features); GRADIENT, for weights
        w = ∂E/∂G (n_block, n_features), g_p = w_{i_p} · ∂G_{i_p}/∂v_p (n_pairs, 3); JACOBIAN
        the features and ∂G_{i_p}/∂v_p (n_pairs, n_features, 3)."""
        first, last = centres
        n_pairs = vectors.shape[0]
        local = pair_i.numpy() - first
        if n_pairs and (local[0] < 0 or local[-1] >= last - first or (np.diff(local) < 0).any()):
            raise ValueError("symmetry-function engine: pairs must be sorted by centre and centred on the atoms evaluated")
        offsets = np.searchsorted(local, np.arange(last - first + 1))
        F = self.n_features
        features = np.zeros((last - first, F) if mode != GRADIENT else (0, F))
        gradients = np.zeros((n_pairs, 3) if mode == GRADIENT else (0, 3))
        jacobian = np.zeros((n_pairs, F, 3) if mode == JACOBIAN else (0, F, 3))
        w = np.zeros((0, F)) if weights is None else np.ascontiguousarray(weights.detach().numpy(), dtype=np.float64)
        threads = max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS))
        if threads > 1:
            numba.set_num_threads(threads)
        (_evaluate_parallel if threads > 1 else _evaluate_serial)(
            mode, first, species.numpy(), np.ascontiguousarray(vectors.detach().numpy(), dtype=np.float64),
            pair_j.numpy(), offsets, w, _fade(inner), *self.radial, *self.angular,
            self.cutoff_kind, self.cutoff_alpha, self.angular_cutoff, features, gradients, jacobian,
        )  # fmt: skip
        return {FEATURES: features, GRADIENT: gradients, JACOBIAN: (features, jacobian)}[mode]


def _fade(inner: Tensor) -> np.ndarray:
    """(n_pairs, 2): where each pair's inner switch reaches 0 and where it reaches 1, Å."""
    radius = inner.detach().double().numpy()
    return np.ascontiguousarray(np.stack([INNER_END * radius, INNER_START * radius], axis=1))


def _f(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


def _i(values) -> np.ndarray:
    return np.asarray(values, dtype=np.int64)
