"""The engine's compiled code (numba): features, their contraction with ∂E/∂G, and the
Jacobian, from one set of analytic formulas, per centre atom, in O(N) time and memory.

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

one pass over a centre's pairs and triplets gives what its mode asks for (the modes: the
package's docstring, forcefit/descriptors/engine/__init__.py).

A centre's triplets are enumerated from its pairs (sorted by centre), two legs both within
the angular cutoff, by element pair, and handled TRIPLET_BLOCK at a time as arrays, so that
the compiler vectorises the arithmetic (with a branch-free exp); only ENERGY keeps a
centre's blocks, until its network has run. Centres are independent, so the loop over them runs on numba's threads
(as many as torch uses), and a caller may pass any contiguous block of centres with
exactly their pairs (`centres`): memory is linear in the block. Arithmetic is float64
whatever the model's dtype.

Every compiled function and every constant they read is in this one file: numba's on-disk
cache is keyed by the file of the function it compiles, so an edit to a callee or a constant
in another file would leave a cached caller with the old code. The tables and arrays come in
as the named records of records.py (types, which the cache keys on).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from forcefit.descriptors.engine.records import Centre, Pairs, Triplets

TANH1_CUBED = math.tanh(1.0) ** 3
FEATURES, GRADIENT, JACOBIAN, ENERGY = 0, 1, 2, 3  # what `_evaluate` computes
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
def _activate(code, z):
    """(y, dy/dz) of activation `code` at z, as torch computes y (models/bpnn.py's ACTIVATIONS)."""
    if code == 0:
        return z, 1.0
    if code == 1:
        y = math.tanh(z)
        return y, 1.0 - y * y
    if code == 2 or code == 9:
        s = 1.0 / (1.0 + math.exp(-z)) if z >= 0.0 else math.exp(z) / (1.0 + math.exp(z))
        return (s, s * (1.0 - s)) if code == 2 else (1.0 - s, -s * (1.0 - s))
    if code == 3:  # torch's Softplus: z itself above its threshold 20
        s = 1.0 / (1.0 + math.exp(-z)) if z >= 0.0 else math.exp(z) / (1.0 + math.exp(z))
        return (z, 1.0) if z > 20.0 else (math.log1p(math.exp(z)), s)
    if code == 4:
        s = 1.0 / (1.0 + math.exp(-z)) if z >= 0.0 else math.exp(z) / (1.0 + math.exp(z))
        return z * s, s * (1.0 + z * (1.0 - s))
    if code == 5:
        return (z, 1.0) if z > 0.0 else (0.0, 0.0)
    if code == 6:  # exact (erf) GELU, torch's default
        cdf = 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))
        return z * cdf, cdf + z * math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    if code == 7:
        y = math.exp(-0.5 * z * z)
        return y, -z * y
    if code == 8:
        return math.cos(z), -math.sin(z)
    if code == 10:
        y = math.exp(-z)
        return y, -y
    return z * z, 2.0 * z


@numba.njit(cache=True, error_model="numpy")
def _network(net, e, c, weights, out):
    """E_i of atom c (element e) of the block from its features out.features[c] into
    out.energies[c], and w = ∂E_i/∂G into `weights` (F,): forward through the element's
    layers keeping every layer's output and slope in `work`, then back. (Written here, not
    in the parallel loop, which loses some writes into arrays it unpacked from a record.)"""
    features = out.features[c]
    work = np.empty((3, net.width))
    n = net.n_inputs[e]
    first, last = net.layer_start[e], net.layer_start[e + 1]
    x = work[0]  # layer inputs are work[0, :width], outputs written after them
    for f in range(n):
        x[f] = net.offset[e, f] + net.factor[e, f] * (features[f] - net.reference[e, f])
    position = n
    for layer in range(first, last):
        n_in, n_out = net.inputs[layer], net.outputs[layer]
        w0, b0, code = net.weight_start[layer], net.bias_start[layer], net.activation[layer]
        for o in range(n_out):
            z = net.biases[b0 + o] + _sum_of_products(net.weights[w0 + o * n_in : w0 + (o + 1) * n_in], x[position - n_in : position], n_in)
            x[position + o], work[1, position + o] = _activate(code, z)
        position += n_out
    out.energies[c] = net.energy_scale * x[position - 1] + net.atom_reference[e]
    gradient = work[2]  # ∂E/∂(each layer's output), filled from the top
    gradient[position - 1] = net.energy_scale
    for layer in range(last - 1, first - 1, -1):
        n_in, n_out = net.inputs[layer], net.outputs[layer]
        w0 = net.weight_start[layer]
        start = position - n_out
        for i in range(start - n_in, start):
            gradient[i] = 0.0
        for o in range(n_out):
            gz = gradient[start + o] * work[1, start + o]
            for i in range(n_in):
                gradient[start - n_in + i] += gz * net.weights[w0 + o * n_in + i]
        position = start
    for f in range(weights.shape[0]):
        weights[f] = gradient[f] * net.factor[e, f] if f < n else 0.0


@numba.njit(cache=True, error_model="numpy")
def _new_triplets(n_blocks, n_rows, bits):
    """Room for n_blocks triplet blocks (allocated here, outside the parallel loop's array analysis)."""
    return Triplets(
        np.empty((n_blocks, TRIPLET_BLOCK), dtype=np.int64), np.empty((n_blocks, TRIPLET_BLOCK), dtype=np.int64),
        np.empty((n_blocks, n_rows, TRIPLET_BLOCK)), bits, np.empty(n_blocks, dtype=np.int64), np.empty(n_blocks, dtype=np.int64),
    )  # fmt: skip


ROW_COS, ROW_D, ROW_RJK, ROW_INVERSE_RJK, ROW_WORK, ROW_ARGUMENT = 0, 1, 4, 5, 6, 7
ROW_S_IJ, ROW_S_IK, ROW_S_JK, ROW_S_COS, ROW_W, ROW_DW, FIXED_ROWS = 8, 9, 10, 11, 12, 13, 14


@numba.njit(cache=True, error_model="numpy")
def _triplet_terms(partials, j, g, m, centre, triplets, cutoff, angular, features):
    """Block j's m triplets (of group g, centre c): A, A' per (λ, ζ) and each factor's Q (with
    `partials` also ∂Q/∂r_ij, ∂Q/∂r_ik, (∂Q/∂r_jk)/r_jk) in their rows, every per-triplet
    quantity an array over k in loops the compiler vectorises; adds the features of group g
    (when `features` has rows)."""
    n_rc, n_lz = cutoff.radii.shape[0], angular.lz_lambda.shape[0]
    rows, bits, t1, t2 = triplets.rows[j], triplets.bits, triplets.first[j], triplets.second[j]
    cos, rjk, inverse_rjk, work, argument = rows[ROW_COS], rows[ROW_RJK], rows[ROW_INVERSE_RJK], rows[ROW_WORK], rows[ROW_ARGUMENT]
    fc_jk, dfc_jk = rows[FIXED_ROWS : FIXED_ROWS + n_rc], rows[FIXED_ROWS + n_rc : FIXED_ROWS + 2 * n_rc]
    a0 = FIXED_ROWS + 2 * n_rc
    A, dA = rows[a0 : a0 + n_lz], rows[a0 + n_lz : a0 + 2 * n_lz]
    q0 = a0 + 2 * n_lz
    P, dP = centre.P, centre.dP
    if angular.narrow_radius[g] > 0.0:
        for k in range(m):
            rjk[k] = math.sqrt(rjk[k])  # the enumeration left r_jk² there
            inverse_rjk[k] = 1.0 / rjk[k]
        for i in range(n_rc):
            _cutoff_block(cutoff.kind, cutoff.alpha, cutoff.radii[i], rjk, fc_jk[i], dfc_jk[i], work, bits, 0, m)
    for t in range(angular.lz_start[g], angular.lz_start[g + 1]):
        z = angular.group_lz[t]
        lam, zeta = angular.lz_lambda[z], angular.lz_zeta[z]
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
    for t in range(angular.factor_start[g], angular.factor_start[g + 1]):
        s, i = angular.factor_slot[t], angular.slot_radius[angular.factor_slot[t]]
        eta, rs = angular.slot_eta[s], angular.slot_rs[s]
        row = q0 + 4 * (t - angular.factor_start[g])
        Q, Qij, Qik, Qjk = rows[row], rows[row + 1], rows[row + 2], rows[row + 3]
        if angular.factor_narrow[t]:  # gathered from the legs' P and P'
            for k in range(m):
                offset = rjk[k] - rs
                argument[k] = -eta * offset * offset
            _exp_block(argument, work, bits, 0, m)
            for k in range(m):
                Q[k] = P[s, t1[k]] * P[s, t2[k]] * work[k] * fc_jk[i, k]
            if partials:
                for k in range(m):
                    b1, b2 = t1[k], t2[k]
                    pjk = work[k] * fc_jk[i, k]
                    dpjk = work[k] * (dfc_jk[i, k] - 2.0 * eta * (rjk[k] - rs) * fc_jk[i, k])
                    Qij[k] = dP[s, b1] * P[s, b2] * pjk
                    Qik[k] = P[s, b1] * dP[s, b2] * pjk
                    Qjk[k] = P[s, b1] * P[s, b2] * dpjk * inverse_rjk[k]
        else:
            for k in range(m):
                Q[k] = P[s, t1[k]] * P[s, t2[k]]
            if partials:
                for k in range(m):
                    b1, b2 = t1[k], t2[k]
                    Qij[k] = dP[s, b1] * P[s, b2]
                    Qik[k] = P[s, b1] * dP[s, b2]
                    Qjk[k] = 0.0
        if features.shape[0]:
            for f in range(angular.function_start[t], angular.function_start[t + 1]):
                z = angular.function_lz[f]
                features[centre.c, angular.function_column[f]] += angular.function_norm[f] * _sum_of_products(A[z], Q, m)


@numba.njit(cache=True, error_model="numpy")
def _triplet_gradients(j, g, m, centre, triplets, cutoff, angular):
    """Add Σ_f w_f ∂term_f/∂v of block j's triplets to their legs' gradients, from the rows
    `_triplet_terms` left: per factor W = Σ_f w_f A_f and D = Σ_f w_f A'_f, then the partials
    ∂/∂(r_ij, r_ik, r_jk, cos θ) of the whole sum per triplet, then the chain rule once."""
    n_rc, n_lz = cutoff.radii.shape[0], angular.lz_lambda.shape[0]
    rows, t1, t2 = triplets.rows[j], triplets.first[j], triplets.second[j]
    s_ij, s_ik, s_jk, s_cos, W, DW = rows[ROW_S_IJ], rows[ROW_S_IK], rows[ROW_S_JK], rows[ROW_S_COS], rows[ROW_W], rows[ROW_DW]
    a0 = FIXED_ROWS + 2 * n_rc
    A, dA = rows[a0 : a0 + n_lz], rows[a0 + n_lz : a0 + 2 * n_lz]
    q0 = a0 + 2 * n_lz
    for k in range(m):
        s_ij[k] = s_ik[k] = s_jk[k] = s_cos[k] = 0.0
    for t in range(angular.factor_start[g], angular.factor_start[g + 1]):
        for k in range(m):
            W[k] = DW[k] = 0.0
        used = False
        for f in range(angular.function_start[t], angular.function_start[t + 1]):
            w = angular.function_norm[f] * centre.weights[angular.function_column[f]]
            if w == 0.0:
                continue
            used = True
            z = angular.function_lz[f]
            for k in range(m):
                W[k] += w * A[z, k]
                DW[k] += w * dA[z, k]
        if not used:
            continue
        row = q0 + 4 * (t - angular.factor_start[g])
        Q, Qij, Qik, Qjk = rows[row], rows[row + 1], rows[row + 2], rows[row + 3]
        for k in range(m):
            s_ij[k] += W[k] * Qij[k]
            s_ik[k] += W[k] * Qik[k]
            s_jk[k] += W[k] * Qjk[k]
            s_cos[k] += DW[k] * Q[k]
    for k in range(m):
        partials = (s_ij[k], s_ik[k], s_jk[k], s_cos[k])
        _add_leg_gradients(centre.gradients[:, t1[k]], centre.gradients[:, t2[k]], centre, rows, t1[k], t2[k], k, partials)


@numba.njit(cache=True, error_model="numpy")
def _triplet_jacobian(j, g, m, centre, triplets, cutoff, angular, jacobian):
    """Add ∂term_f/∂v of block j's triplets to the Jacobian rows of their legs' pairs, function by function."""
    n_rc, n_lz = cutoff.radii.shape[0], angular.lz_lambda.shape[0]
    rows, t1, t2 = triplets.rows[j], triplets.first[j], triplets.second[j]
    a0 = FIXED_ROWS + 2 * n_rc
    A, dA = rows[a0 : a0 + n_lz], rows[a0 + n_lz : a0 + 2 * n_lz]
    q0 = a0 + 2 * n_lz
    for t in range(angular.factor_start[g], angular.factor_start[g + 1]):
        row = q0 + 4 * (t - angular.factor_start[g])
        Q, Qij, Qik, Qjk = rows[row], rows[row + 1], rows[row + 2], rows[row + 3]
        for f in range(angular.function_start[t], angular.function_start[t + 1]):
            z, col, norm = angular.function_lz[f], angular.function_column[f], angular.function_norm[f]
            for k in range(m):
                b1, b2 = t1[k], t2[k]
                na = norm * A[z, k]
                _add_leg_gradients(
                    jacobian[centre.p0 + centre.pair[b1], col], jacobian[centre.p0 + centre.pair[b2], col], centre, rows, b1, b2, k,
                    (na * Qij[k], na * Qik[k], na * Qjk[k], norm * dA[z, k] * Q[k]),
                )  # fmt: skip


@numba.njit(cache=True, inline="always", error_model="numpy")
def _add_leg_gradients(out_p, out_q, centre, rows, b1, b2, k, partials):
    """Add ∂/∂v_p and ∂/∂v_q of triplet k's term(s) (legs b1, b2; its block's `rows`) from the
    `partials` ∂/∂r_ij, ∂/∂r_ik, (∂/∂r_jk)/r_jk and ∂/∂cos θ (the module docstring's chain rule)."""
    d_ij, d_ik, d_jk, d_cos = partials
    cos, u = rows[ROW_COS, k], centre.u
    cp, cq = d_cos * centre.inverse_r[b1], d_cos * centre.inverse_r[b2]
    own_p, own_q = d_ij - cp * cos, d_ik - cq * cos
    for x in range(3):
        d = rows[ROW_D + x, k]
        out_p[x] += own_p * u[x, b1] + cp * u[x, b2] - d_jk * d
        out_q[x] += own_q * u[x, b2] + cq * u[x, b1] + d_jk * d


def _evaluate(mode, block, cutoff, radial, angular, network, out):
    """One pass per centre atom of `block`, by `mode` (module docstring). Centres are
    independent: the loop body is one call per centre (`_centre`) and writes nothing itself
    (numba's parallel loop can lose writes into arrays it unpacked from a record)."""
    n_rc, n_lz = cutoff.radii.shape[0], angular.lz_lambda.shape[0]
    most_factors = 0
    for g in range(angular.factor_start.shape[0] - 1):
        most_factors = max(most_factors, angular.factor_start[g + 1] - angular.factor_start[g])
    most_radial = 0
    for g in range(radial.start.shape[0] - 1):
        most_radial = max(most_radial, radial.start[g + 1] - radial.start[g])
    n_rows = FIXED_ROWS + 2 * n_rc + 2 * n_lz + 4 * most_factors
    kept_rows = most_radial if mode == ENERGY else 0  # ENERGY: each radial function's slope per pair, kept for after the network
    for c in numba.prange(block.offsets.shape[0] - 1):
        _centre(mode, c, block, cutoff, radial, angular, network, out, n_rows, kept_rows)


@numba.njit(cache=True, error_model="numpy")
def _centre(mode, c, block, cutoff, radial, angular, network, out, n_rows, kept_rows):
    """Centre c of the block: its pairs by neighbour element with their cutoffs, the radial
    terms, the legs with their slots, the triplet blocks; in ENERGY mode then the network's E_i
    and w = ∂E_i/∂G_i and the gradient pass from what was kept; the pairs' gradients last."""
    element = block.species[block.first + c]
    pairs = _pairs(mode, c, block, cutoff, radial.group.shape[0], kept_rows)
    _radial_terms(mode, c, element, block, pairs, radial, out)
    centre = _legs(mode, c, block, pairs, cutoff, angular, out.features.shape[1])
    triplets, n_kept = _triplet_blocks(mode, element, centre, pairs, cutoff, angular, out, n_rows)
    if mode == ENERGY:
        _network(network, element, c, centre.weights, out)
        _kept_gradients(element, centre, pairs, radial, triplets, n_kept, cutoff, angular)
    if mode == GRADIENT or mode == ENERGY:
        _scatter_gradients(centre, pairs, out)


@numba.njit(cache=True, inline="always", error_model="numpy")
def _pairs(mode, c, block, cutoff, n_elements, kept_rows):
    """Centre c's pairs ordered by neighbour element (pair_start[e] ≤ b < pair_start[e + 1] go to
    element e, pair p0 + order[b]), their distances, unit vectors and f_c, f_c' per radius with
    the inner switch of cutoff.py (each pair fades between fade[p] = (off, on) Å), and scratch."""
    p0 = block.offsets[c]
    n = block.offsets[c + 1] - p0
    start = np.zeros(n_elements + 1, dtype=np.int64)
    for a in range(n):
        start[block.species[block.neighbour[p0 + a]] + 1] += 1
    for e in range(n_elements):
        start[e + 1] += start[e]
    fill = start[:n_elements].copy()
    order = np.empty(n, dtype=np.int64)
    for a in range(n):
        e = block.species[block.neighbour[p0 + a]]
        order[fill[e]] = a
        fill[e] += 1
    n_rc = cutoff.radii.shape[0]
    r, u = np.empty(n), np.empty((3, n))
    work, bits = np.empty(max(n, TRIPLET_BLOCK)), np.empty(max(n, TRIPLET_BLOCK), dtype=np.int64)
    fc, dfc = np.empty((n_rc, n)), np.empty((n_rc, n))
    for b in range(n):
        v = block.vectors[p0 + order[b]]
        r[b] = math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])
        for x in range(3):
            u[x, b] = v[x] / r[b]
    for k in range(n_rc):
        _cutoff_block(cutoff.kind, cutoff.alpha, cutoff.radii[k], r, fc[k], dfc[k], work, bits, 0, n)
    for b in range(n):
        off, on = block.fade[p0 + order[b], 0], block.fade[p0 + order[b], 1]
        if on > 0.0 and r[b] < on:
            x = max((r[b] - off) / (on - off), 0.0)
            switch = x * x * x * (10.0 - 15.0 * x + 6.0 * x * x)
            slope_of_switch = 30.0 * x * x * (1.0 - x) * (1.0 - x) / (on - off)
            for k in range(n_rc):
                dfc[k, b] = dfc[k, b] * switch + fc[k, b] * slope_of_switch
                fc[k, b] *= switch
    slopes = np.zeros(n if mode == GRADIENT or mode == ENERGY else 0)
    return Pairs(p0, n, start, order, r, u, fc, dfc, work, bits, np.empty(n), np.empty(n), slopes, np.empty((kept_rows, n)))


@numba.njit(cache=True, inline="always", error_model="numpy")
def _radial_terms(mode, c, element, block, pairs, radial, out):
    """The radial terms of centre c, one vector loop per function and neighbour element: its
    features, and by mode Σ_f w_f P_f' per pair (GRADIENT), each P_f' kept (ENERGY) or the
    Jacobian's rows (JACOBIAN)."""
    r, fc, dfc, work, argument, slope = pairs.r, pairs.fc, pairs.dfc, pairs.work, pairs.argument, pairs.slope
    for e in range(radial.group.shape[0]):
        g = radial.group[element, e]
        if g < 0:
            continue
        lo, hi = pairs.start[e], pairs.start[e + 1]
        for f in range(radial.start[g], radial.start[g + 1]):
            k, col, eta, rs = radial.radius[f], radial.column[f], radial.eta[f], radial.rs[f]
            for b in range(lo, hi):
                argument[b] = -eta * (r[b] - rs) ** 2
            _exp_block(argument, work, pairs.bits, lo, hi)
            if mode != GRADIENT:
                out.features[c, col] += _sum_of_products(work[lo:hi], fc[k, lo:hi], hi - lo)
            if mode == FEATURES:
                continue
            for b in range(lo, hi):
                slope[b] = work[b] * (dfc[k, b] - 2.0 * eta * (r[b] - rs) * fc[k, b])
            if mode == GRADIENT:
                w = block.weights[c, col]
                for b in range(lo, hi):
                    pairs.slopes[b] += w * slope[b]
            elif mode == ENERGY:
                for b in range(lo, hi):
                    pairs.kept[f - radial.start[g], b] = slope[b]
            else:
                for b in range(lo, hi):
                    for x in range(3):
                        out.jacobian[pairs.p0 + pairs.order[b], col, x] += slope[b] * pairs.u[x, b]


@numba.njit(cache=True, inline="always", error_model="numpy")
def _legs(mode, c, block, pairs, cutoff, angular, n_features):
    """Centre c's legs, the pairs within the angular cutoff in the pairs' order (so by neighbour
    element, leg_start[e] ≤ leg < leg_start[e + 1]), with their r, unit vectors, vectors and
    P, P' per slot (η, r_s, r_c)."""
    n_elements, n_rc, n_slots = pairs.start.shape[0] - 1, cutoff.radii.shape[0], angular.slot_eta.shape[0]
    leg_start = np.zeros(n_elements + 1, dtype=np.int64)
    chosen = np.empty(pairs.n, dtype=np.int64)  # position b of each leg in the ordered pairs
    n_legs = 0
    for e in range(n_elements):
        leg_start[e] = n_legs
        for b in range(pairs.start[e], pairs.start[e + 1]):
            if pairs.r[b] < cutoff.angular:
                chosen[n_legs] = b
                n_legs += 1
    leg_start[n_elements] = n_legs
    lr, lfc, ldfc = np.empty(n_legs), np.empty((n_rc, n_legs)), np.empty((n_rc, n_legs))
    lu, lv, pair = np.empty((3, n_legs)), np.empty((3, n_legs)), np.empty(n_legs, dtype=np.int64)
    for leg in range(n_legs):
        b = chosen[leg]
        lr[leg] = pairs.r[b]
        pair[leg] = pairs.order[b]
        for k in range(n_rc):
            lfc[k, leg], ldfc[k, leg] = pairs.fc[k, b], pairs.dfc[k, b]
        for x in range(3):
            lu[x, leg] = pairs.u[x, b]
            lv[x, leg] = block.vectors[pairs.p0 + pairs.order[b], x]
    P, dP = np.empty((n_slots, n_legs)), np.empty((n_slots, n_legs))
    argument, work = pairs.argument, pairs.work
    for s in range(n_slots):
        k, eta, rs = angular.slot_radius[s], angular.slot_eta[s], angular.slot_rs[s]
        for leg in range(n_legs):
            argument[leg] = -eta * (lr[leg] - rs) ** 2
        _exp_block(argument, work, pairs.bits, 0, n_legs)
        for leg in range(n_legs):
            P[s, leg] = work[leg] * lfc[k, leg]
            dP[s, leg] = work[leg] * (ldfc[k, leg] - 2.0 * eta * (lr[leg] - rs) * lfc[k, leg])
    weights = block.weights[c] if mode == GRADIENT else np.empty(n_features if mode == ENERGY else 0)
    gradients = np.zeros((3, n_legs if mode == GRADIENT or mode == ENERGY else 0))
    return Centre(c, pairs.p0, weights, pair, 1.0 / lr, lu, lv, leg_start, P, dP, gradients)


@numba.njit(cache=True, inline="always", error_model="numpy")
def _triplet_blocks(mode, element, centre, pairs, cutoff, angular, out, n_rows):
    """Centre c's triplets, two legs of an angular group's element pair, enumerated into blocks
    of TRIPLET_BLOCK (narrow-only groups keep those with r_jk < r_c), each block's terms done
    when full (`_block_done`); in ENERGY mode every block is kept, with its group and size, for
    the gradient pass after the network. Returns the blocks and how many were kept."""
    n_elements, n_legs = pairs.start.shape[0] - 1, centre.pair.shape[0]
    keep = mode == ENERGY
    n_blocks = (n_legs * (n_legs - 1) // 2) // TRIPLET_BLOCK + n_elements * n_elements + 1 if keep else 1
    triplets = _new_triplets(n_blocks, n_rows, pairs.bits)
    j = 0  # the block being filled; in ENERGY mode also the number of blocks kept
    first, second, rows, lu, lv = triplets.first, triplets.second, triplets.rows, centre.u, centre.v
    for e1 in range(n_elements):
        for e2 in range(e1, n_elements):
            g = angular.group[element, e1, e2]
            if g < 0:
                continue
            keep2 = angular.narrow_radius[g] ** 2 if angular.only_narrow[g] else np.inf
            m = 0
            for b1 in range(centre.leg_start[e1], centre.leg_start[e1 + 1]):
                for b2 in range(b1 + 1 if e1 == e2 else centre.leg_start[e2], centre.leg_start[e2 + 1]):
                    d0, d1, d2 = lv[0, b2] - lv[0, b1], lv[1, b2] - lv[1, b1], lv[2, b2] - lv[2, b1]
                    rjk2 = d0 * d0 + d1 * d1 + d2 * d2
                    first[j, m], second[j, m] = b1, b2
                    rows[j, ROW_COS, m] = lu[0, b1] * lu[0, b2] + lu[1, b1] * lu[1, b2] + lu[2, b1] * lu[2, b2]
                    rows[j, ROW_D, m], rows[j, ROW_D + 1, m], rows[j, ROW_D + 2, m], rows[j, ROW_RJK, m] = d0, d1, d2, rjk2
                    m += rjk2 < keep2  # kept unless every term has f_c(r_jk) = 0 (no branch)
                    if m == TRIPLET_BLOCK:
                        j = _block_filled(mode, j, g, m, centre, triplets, cutoff, angular, out)
                        m = 0
            if m:
                j = _block_filled(mode, j, g, m, centre, triplets, cutoff, angular, out)
    return triplets, j


@numba.njit(cache=True, error_model="numpy")
def _block_filled(mode, j, g, m, centre, triplets, cutoff, angular, out):
    """Triplet block j (m triplets of group g) enumerated: its terms and features, and by mode
    its gradients or Jacobian now, or (ENERGY) kept with its group and size for after the
    network. Returns the block to fill next."""
    _triplet_terms(mode != FEATURES, j, g, m, centre, triplets, cutoff, angular, out.features)
    if mode == GRADIENT:
        _triplet_gradients(j, g, m, centre, triplets, cutoff, angular)
    elif mode == JACOBIAN:
        _triplet_jacobian(j, g, m, centre, triplets, cutoff, angular, out.jacobian)
    elif mode == ENERGY:
        triplets.group[j], triplets.size[j] = g, m
        return j + 1
    return j


@numba.njit(cache=True, inline="always", error_model="numpy")
def _kept_gradients(element, centre, pairs, radial, triplets, n_kept, cutoff, angular):
    """ENERGY mode, once the network has given w = ∂E_i/∂G_i: Σ_f w_f P_f' per pair from the kept
    radial slopes, and the kept triplet blocks' gradients."""
    for e in range(radial.group.shape[0]):
        g = radial.group[element, e]
        if g < 0:
            continue
        for f in range(radial.start[g], radial.start[g + 1]):
            w = centre.weights[radial.column[f]]
            for b in range(pairs.start[e], pairs.start[e + 1]):
                pairs.slopes[b] += w * pairs.kept[f - radial.start[g], b]
    for kept in range(n_kept):
        _triplet_gradients(kept, triplets.group[kept], triplets.size[kept], centre, triplets, cutoff, angular)


@numba.njit(cache=True, inline="always", error_model="numpy")
def _scatter_gradients(centre, pairs, out):
    """g_p of the centre's pairs: the radial part along each pair's unit vector, and the legs'
    triplet sums."""
    gradients = out.gradients
    for b in range(pairs.n):
        for x in range(3):
            gradients[pairs.p0 + pairs.order[b], x] += pairs.slopes[b] * pairs.u[x, b]
    for leg in range(centre.pair.shape[0]):
        for x in range(3):
            gradients[pairs.p0 + centre.pair[leg], x] += centre.gradients[x, leg]
