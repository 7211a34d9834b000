"""Body-ordered invariants of the atomic neighbour density: the atomic cluster expansion
(Drautz, PRB 99, 014104 (2019)), whose invariants up to body order 4 are those of
SOAP's power spectrum and bispectrum and span the same space as MTP's moment tensors.

For a centre atom i and a neighbour j at r_ij = r_j − r_i (distance r, direction r̂) of
element z_j:

    φ_nlm(r_ij) = R_n(r) Y_lm(r̂),   R_n(r) = T_n(ξ) f_c(r),   ξ = 2 (u(r) − u(r_min))/(u(r_c) − u(r_min)) − 1
    A_i,k,lm   = Σ_{j: z_j = z} φ_nlm(r_ij)             channel k = (z, n): one per neighbour element and radial index

with T_n the Chebyshev polynomials (n < n_radial) and f_c a cutoff function of
descriptors/cutoff.py (default poly2, smooth to the second derivative). The distance
transform u is u(r) = r (radial_power q = 0, the default: ξ linear in r) or u(r) = (1 + r/Å)^−q
(q > 0, the transform of ACE.jl's PolyTransform, whose r0 drops out of the affine map to
[−1, 1]): it puts more of the polynomials' resolution at short distances, where the
energy changes fastest, and less in the tail near the cutoff. The descriptor of
atom i is the list of rotation- and reflection-invariant contractions

    body order 2   B_k              = A_k,00
    body order 3   B_k1k2,l         = Σ_m A_k1,lm A_k2,lm                         k1 ≤ k2, l ≤ l_max
    body order 4   B_k1l1,k2l2,k3l3 = Σ_m1m2m3 C^l1l2l3_m1m2m3 A_k1,l1m1 A_k2,l2m2 A_k3,l3m3
                   (k1,l1) ≤ (k2,l2) ≤ (k3,l3), |l1 − l2| ≤ l3 ≤ l1 + l2, l1 + l2 + l3 even,
                   l ≤ l_max_4 and n < n_radial_4 for all three
                   and, with degree_4 = D, Σ (n + l) ≤ D over the three (order 5 likewise with
                   n_radial_5, l_max_5 and degree_5): a total-degree basis, as ACE.jl and MTP's
                   levels build theirs, instead of the box alone

With `embedding` E > 0 the descriptor also holds, per neighbour element z and k < E, the
Finnis–Sinclair-type term

    embedded       F(ρ_i,zk) = √(ρ_i,zk + ε) − √ε,   ρ_i,zk = Σ_{j: z_j = z} ((1 − ξ)/2)^k f_c(r) Y_00
                             = Σ_n a_kn A_i,(z,n),00

a square root of positive, shorter-ranged (larger k) neighbour densities (ε = 1e-2 keeps the
slope finite at ρ = 0). A polynomial of the A's cannot have that shape: the embedding of EAM
and of nonlinear ACE, which carries the bond-order physics of metals (each bond weaker the more
an atom has) to coordinations the data hold few of, such as surfaces. It is linear in its
coefficient, so the closed-form fit still applies.

Cost is linear in the neighbours: the pair sums happen once, in A. Every term is even
under inversion (Y_lm is odd for odd l, and each contraction has an even total l), so the
invariants are invariant under O(3), not only rotations; permutations of like atoms only
reorder the sum in A.

Y_lm and C come from e3nn (real spherical harmonics with 'integral' normalisation and
the Wigner 3j symbols in the same real basis): one library that gives both in one
consistent basis, in torch (any device, float64), pure Python with no build step, and the
library NequIP and MACE are built on.

Evaluation is matrix products. A of one atom is R^T Y over its pairs with one element (the
pairs padded into slots per atom and element, so φ is never formed per pair). Orders 4 and
5 share the couplings of two factor blocks, P^L_(k k') = Σ W(L, la, lb) A_k,la A_k',lb, taken
once per (la, lb) over all channel pairs; all invariants of one order and one coupled degree
L are then one batched product over every channel combination, from which they are picked
(the plan of descriptors/ace_basis.py, `ContractionPlan`): ten products for the 1763-invariant
basis instead of one per group (96).

Derivatives are exact, not autograd through the whole descriptor. The Jacobian (training's
design rows): ∂φ/∂r_ij per pair from R_n'(r) (forward mode in r) and ∂Y_lm/∂r (from the
harmonics of degree l − 1, `_radial_and_angular_gradients`); ∂B_i/∂A_i per atom from the
contractions themselves (each is linear in each factor: its derivative by one is the
contraction of the others), only where it is not zero; then ∂B_i/∂r_p = (∂B_i/∂A_i) · ∂A_i/∂r_p,
where ∂A_i/∂r_p is ∂φ/∂r_p in the channels of element z_j. Forces need only the product
Σ_f w_f ∂B_f/∂r_p (w = ∂E/∂B): Σ_f w_f ∂B_f/∂A per atom from the transposed products of
the same couplings (`density_gradients`), then products with each atom's padded R and Y give
the adjoints of each pair's R and Y; reverse mode in r takes R's, the harmonics' gradient
relation Y's (`_angular_vector_product`). `forward` is the plain torch evaluation, which autograd
differentiates: the reference the tests compare both with.
"""

from __future__ import annotations

import torch
import torch.autograd.forward_ad as forward_ad
from torch import Tensor

from forcefit.descriptors.ace_basis import AceBasis, ContractionPlan, FactorsOfDegree, HarmonicGradient, o3
from forcefit.descriptors.cutoff import InnerCutoff, cutoff_function, inner_switch
from forcefit.descriptors.registry import register

JACOBIAN_BLOCK_BYTES = 4e8  # working memory of one block of atoms while assembling the Jacobian
EMBEDDING_EPSILON = 1e-2  # ε of the embedding F(ρ) = √(ρ + ε) − √ε: finite slope at ρ = 0 (a lone atom)


def _couple(b: Tensor, c: Tensor, coupling: Tensor) -> Tensor:
    """Σ_{m2 m3} W_{m1 m2 m3} b_{m2} c_{m3} (n, f, 2l1 + 1) for b (n, f, 2l2 + 1), c (n, f, 2l3 + 1):
    an outer product and one matrix product (no contraction-path search per call)."""
    outer = (b[..., :, None] * c[..., None, :]).flatten(-2)
    return outer @ coupling.flatten(1).T


def _times(d: Tensor, x: Tensor) -> Tensor:
    """d_n x_n per atom n, x (n, b, c), for d (n, a, b) or (1, a, b) shared by every atom: then
    one matrix product over the atoms' columns."""
    if d.shape[0] == 1 and x.shape[0] != 1:
        return torch.einsum("ab,nbc->nac", d[0], x)
    return torch.bmm(d, x)


@register
class AtomicClusterExpansion(InnerCutoff, torch.nn.Module):
    kind = "ace"
    angular_cutoff = 0.0  # no triplets: angles enter through the spherical harmonics
    cheap_jacobian = False  # n_features × pairs × 3: one gradient pass per set of weights costs far less

    def __init__(self, elements: list[str], cutoff: float, basis: AceBasis | None = None, r_min: float = 0.0):
        super().__init__()
        self.basis = basis or AceBasis()
        if not 0 <= r_min < cutoff:
            raise ValueError(f"ace r_min {r_min} Å: expected 0 ≤ r_min < cutoff ({cutoff} Å)")
        self.elements, self.cutoff, self.r_min = list(elements), float(cutoff), float(r_min)
        b = self.basis
        self.n_radial, self.l_max, self.body_order, self.l_max_4 = b.n_radial, b.l_max, b.body_order, b.l_max_4
        self.radial_power, self.embedding, self.cutoff_type = float(b.radial_power), b.embedding, b.cutoff_type
        self.plan = ContractionPlan(b, len(self.elements))
        self.n_features = self.plan.n_features
        self.n_features_per_element = [self.n_features] * len(self.elements)
        self.harmonic_gradients = torch.nn.ModuleList(HarmonicGradient(l) for l in range(1, self.l_max + 1))
        self.factor_plan = torch.nn.ModuleList(self._factor_plan())
        # where the data begin, per (centre, neighbour) element pair, Å: 0 (no switch) until set from the data
        self.register_inner_radii(len(self.elements))

    def feature_degrees(self) -> Tensor:
        """d (n_features,): the polynomial degree Σ (n + l) of each invariant over its factors
        (radial index n, angular degree l), in the order of `invariants`; for smoothness priors."""
        return self.plan.feature_degrees(self.embedding)

    # ------------------------------------------------------------------ pieces

    @property
    def n_lm(self) -> int:
        return (self.l_max + 1) ** 2

    def _transform(self, r):
        """u(r): r, or (1 + r)^−q with q = radial_power > 0 (distances in Å)."""
        return r if self.radial_power == 0 else (1.0 + r) ** -self.radial_power

    def _radial(self, r: Tensor, inner: Tensor) -> Tensor:
        """R_n(r) = T_n(ξ(r)) f_c(r) s(r), (n_pairs, n_radial), with s the inner switch at each
        pair's inner radius `inner` (n_pairs,) Å."""
        xi = 2.0 * (self._transform(r) - self._transform(self.r_min)) / (self._transform(self.cutoff) - self._transform(self.r_min)) - 1.0
        chebyshev = [torch.ones_like(xi), xi]
        for _ in range(2, self.n_radial):
            chebyshev.append(2.0 * xi * chebyshev[-1] - chebyshev[-2])
        envelope = cutoff_function(r, self.cutoff, self.cutoff_type) * inner_switch(r, inner.to(r))
        return torch.stack(chebyshev[: self.n_radial], dim=1) * envelope[:, None]

    def _angular(self, vectors: Tensor) -> Tensor:
        """Y_lm(r̂) (n_pairs, n_lm), l ≤ l_max, e3nn's real basis with 'integral' normalisation."""
        return o3().spherical_harmonics(list(range(self.l_max + 1)), vectors, normalize=True, normalization="integral")

    def _radial_and_angular(self, vectors: Tensor, inner: Tensor) -> tuple[Tensor, Tensor]:
        """R_n(r) (n_pairs, n_radial) and Y_lm(r̂) (n_pairs, n_lm), whose outer product is φ."""
        return self._radial(torch.linalg.vector_norm(vectors, dim=1), inner), self._angular(vectors)

    def _radial_and_angular_gradients(self, vectors: Tensor, inner: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """R, Y and their derivatives by r_p, (n_pairs, n_radial, 3) and (n_pairs, n_lm, 3):
        ∂R_n/∂r_p = R_n'(r) r̂ (one forward-mode pass in r), and, since r^l Y_l(r̂) is a
        harmonic polynomial whose gradient is one of degree l − 1,
            ∂Y_lm/∂r_p = (Σ_m' G_l[m', m, :] Y_(l−1)m'(r̂) − l r̂ Y_lm(r̂)) / r
        with the constants G_l of `HarmonicGradient` (descriptors/ace_basis.py)."""

        r = torch.linalg.vector_norm(vectors, dim=1)
        unit = vectors / r[:, None]
        with forward_ad.dual_level():
            radial, slope = forward_ad.unpack_dual(self._radial(forward_ad.make_dual(r, torch.ones_like(r)), inner))
        angular = self._angular(vectors)
        blocks = [torch.zeros_like(vectors)[:, None, :]]
        for h in self.harmonic_gradients:
            l, gradient = h.l, h.gradient
            lower = angular[:, (l - 1) ** 2 : l * l] @ gradient.to(vectors).flatten(1)
            blocks.append(lower.view(-1, 2 * l + 1, 3) - l * unit[:, None, :] * angular[:, l * l : (l + 1) ** 2, None])
        return radial, angular, slope[:, :, None] * unit[:, None, :], torch.cat(blocks, dim=1) / r[:, None, None]

    def _neighbour_slots(self, species: Tensor, pair_i: Tensor, pair_j: Tensor, first: int, n_block: int) -> tuple[Tensor, Tensor, int]:
        """Per pair its row (centre, neighbour element) and slot among that row's pairs, and the
        largest count: the layout in which the pair sums of one atom are matrix products."""
        rows = (pair_i - first) * len(self.elements) + species[pair_j]
        order = torch.sort(rows, stable=True).indices
        counts = torch.bincount(rows, minlength=n_block * len(self.elements))
        slots = torch.empty_like(rows)
        slots[order] = torch.arange(rows.shape[0], device=rows.device) - (torch.cumsum(counts, 0) - counts)[rows[order]]
        return rows, slots, int(counts.max()) if rows.numel() else 0

    def _padded(self, values: Tensor, layout: tuple[Tensor, Tensor, int], n_block: int) -> Tensor:
        """(n_block · n_elements, largest count, ·): the pairs' rows of `values` in their slots, zero elsewhere."""
        rows, slots, width = layout
        out = values.new_zeros((n_block * len(self.elements), width, values.shape[1]))
        out[rows, slots] = values
        return out

    def _densities(
        self, radial: Tensor, angular: Tensor, layout: tuple[Tensor, Tensor, int], n_block: int
    ) -> tuple[Tensor, Tensor, Tensor]:
        """A (n_block, n_channels, n_lm) = Σ_j R_n(r_ij) Y_lm(r̂_ij) per neighbour element: one
        batched matrix product over the pairs of each (atom, element), never φ per pair; and
        the padded R and Y it multiplied."""
        padded_radial, padded_angular = self._padded(radial, layout, n_block), self._padded(angular, layout, n_block)
        product = torch.bmm(padded_radial.transpose(1, 2), padded_angular)
        return product.view(n_block, len(self.elements) * self.n_radial, self.n_lm), padded_radial, padded_angular

    def couplings(self, densities: Tensor) -> tuple[dict, dict, dict, dict]:
        """What both the invariants and their gradients use (`ContractionPlan`): the
        factor blocks A_l over the order-4 channels (n, K4, 2l + 1); per block (la, lb) the
        contraction of W with its first factor, (W A_la)_k,M,b (n, K4 S, 2lb + 1); and per L
        the stacked couplings Q^L of orders 4 (n, NB K4², 2L + 1) and 5 (n, NB K5², 2L + 1)."""
        plan = self.plan
        n, k4 = densities.shape[0], len(plan.channels4)
        factors = {l: densities[:, plan.channels4, l * l : (l + 1) ** 2] for l in range(self.l_max_4 + 1)} if len(plan.order4) else {}
        half, coupled = {}, {}
        for block in plan.blocks:
            la, lb = block.la, block.lb
            half[(la, lb)] = (factors[la].reshape(n * k4, -1) @ block.by_first.to(densities)).view(n, -1, 2 * lb + 1)
            p = torch.bmm(half[(la, lb)], factors[lb].transpose(1, 2))  # (n, K4 S, K4): P_k,M,j
            coupled[(la, lb)] = p.view(n, k4, -1, k4).transpose(2, 3).reshape(n, k4 * k4, -1)

        def stacked(L: int, blocks: list, pairs: slice | Tensor) -> Tensor:
            return torch.cat([coupled[block][:, pairs, slice(*plan.block(*block).rows[L])] for block in blocks], dim=1)

        stacked4 = {L: stacked(L, blocks, slice(None)) for L, blocks in plan.stack4.items()}
        stacked5 = {L: stacked(L, blocks, plan.channel_pairs5) for L, blocks in plan.stack5.items()}
        return factors, half, stacked4, stacked5

    def _dense_products(self, factors: dict, stacked4: dict, stacked5: dict) -> list[Tensor]:
        """The products that hold every invariant of orders 4 and 5, each (n, size) flat, in
        the order of `dense_sizes`."""
        dense = [torch.bmm(factors[L], q.transpose(1, 2)).flatten(1) for L, q in stacked4.items()]
        return dense + [torch.bmm(q, q.transpose(1, 2)).flatten(1) for q in stacked5.values()]

    def invariants(self, densities: Tensor, couplings=None) -> Tensor:
        """B (n_atoms, n_features) from A (n_atoms, n_channels, n_lm) (and its `couplings`,
        computed here if not given)."""
        factors, _, stacked4, stacked5 = couplings or self.couplings(densities)
        plan = self.plan
        parts = [densities[:, plan.order2, 0]]
        for l in plan.order3_ls:  # B_k1k2,l = (A_l A_lᵀ)_k1k2: one product per l
            block = densities[:, :, l * l : (l + 1) * (l + 1)]
            parts.append(torch.bmm(block, block.transpose(1, 2)).flatten(1)[:, plan.order3_flat])
        if len(plan.dense_sign):
            n = densities.shape[0]
            dense = densities.new_empty((n, len(plan.dense_sign)))
            for product, pick in zip(self._dense_products(factors, stacked4, stacked5), plan.dense_picks):
                dense.index_copy_(1, pick.positions, torch.gather(product, 1, pick.flat.expand(n, -1)))  # gather: row by row
            parts.append(dense.mul_(plan.dense_sign.to(densities)))
        if self.embedding:
            parts.append(torch.sqrt(self._embedded_densities(densities) + EMBEDDING_EPSILON).flatten(1) - EMBEDDING_EPSILON**0.5)
        return torch.cat(parts, dim=1)

    def _embedded_densities(self, densities: Tensor) -> Tensor:
        """ρ (n_atoms, n_elements, embedding) = Σ_n a_kn A_(z,n),00 (`embedding_coefficients`)."""
        radial = densities[:, :, 0].reshape(densities.shape[0], len(self.elements), self.n_radial)
        return radial @ self.plan.embedding_coefficients.to(densities).T

    def _embedding_slopes(self, densities: Tensor) -> Tensor:
        """F'(ρ) = 1 / (2 √(ρ + ε)) (n_atoms, n_elements, embedding)."""
        return 0.5 / torch.sqrt(self._embedded_densities(densities) + EMBEDDING_EPSILON)

    def _factor_derivatives(self, densities: Tensor, couplings):
        """Per group of invariants: (features, channels, l, values), values (n, len(features), 2l + 1)
        the derivative of those invariants by their factor A[:, channels, l block]. Each
        contraction is linear in each of its factors, so its derivative by one factor is the
        contraction of the others, from the `couplings` the invariants were built of: at
        order 4 a coupling P itself, at order 5 one P coupled with a third factor."""
        n, n_channels, _ = densities.shape
        _, _, stacked4, stacked5 = couplings
        plan = self.plan
        yield torch.arange(n_channels), plan.order2, 0, densities.new_ones((n, n_channels, 1))
        at = n_channels
        k1, k2 = plan.order3_first, plan.order3_second
        for l in plan.order3_ls:
            features = torch.arange(at, at + len(k1))
            block = densities[:, :, l * l : (l + 1) ** 2]
            yield features, k1, l, block[:, k2]
            yield features, k2, l, block[:, k1]
            at += len(k1)
        for group, derivatives in zip(plan.order4, plan.factors4):
            features = torch.arange(at, at + len(group.k1))
            for slot in derivatives:
                yield features, slot.channels, slot.l, slot.sign * stacked4[slot.l][:, slot.rows]
            at += len(group.k1)
        for group, halves in zip(plan.order5, plan.factors5):
            # B = Σ_M (ab)_M (cd)_M: the derivative by a is Σ W[M, m_a, m_b] b (cd)_M, and so on
            (l1, l2, l3, l4, _), k1, k2, k3, k4 = group.ls, group.k1, group.k2, group.k3, group.k4
            features = torch.arange(at, at + len(k1))
            left, right = group.left.to(densities), group.right.to(densities)
            a, b, c, d = (densities[:, k, l * l : (l + 1) ** 2] for k, l in ((k1, l1), (k2, l2), (k3, l3), (k4, l4)))
            stack = stacked5[halves.L]
            ab, cd = halves.sign12 * stack[:, halves.rows12], halves.sign34 * stack[:, halves.rows34]
            yield features, k1, l1, _couple(b, cd, left.permute(1, 2, 0))
            yield features, k2, l2, _couple(a, cd, left.permute(2, 1, 0))
            yield features, k3, l3, _couple(d, ab, right.permute(1, 2, 0))
            yield features, k4, l4, _couple(c, ab, right.permute(2, 1, 0))
            at += len(k1)
        if self.embedding:  # ∂F(ρ_zk)/∂A_(z,n),00 = F'(ρ_zk) a_kn: one group per radial index n
            n_elements = len(self.elements)
            features = torch.arange(at, at + n_elements * self.embedding)
            slopes = self._embedding_slopes(densities).flatten(1)  # (n, features)
            element = torch.arange(n_elements).repeat_interleave(self.embedding)
            a = plan.embedding_coefficients.to(densities).repeat(n_elements, 1)  # (features, n_radial)
            for radial_index in range(self.n_radial):
                yield features, element * self.n_radial + radial_index, 0, (slopes * a[:, radial_index])[:, :, None]

    def _factor_plan(self) -> list[FactorsOfDegree]:
        """Per angular degree l, over the factor derivatives of that l (`_factor_derivatives`,
        concatenated in the order it yields them): the order that sorts them by channel, their
        invariants in that order, and each channel's range (channel, start, stop). Static: taken
        once, from the shapes of a zero density."""
        n_channels = len(self.elements) * self.n_radial
        parts: dict[int, list[tuple[Tensor, Tensor]]] = {}
        zero = torch.zeros((1, n_channels, self.n_lm), dtype=torch.float64)
        for features, channels, l, _ in self._factor_derivatives(zero, self.couplings(zero)):
            parts.setdefault(l, []).append((features, channels))
        plan = []
        for l, pieces in sorted(parts.items()):
            features, channels = (torch.cat(x) for x in zip(*pieces))
            order = torch.sort(channels, stable=True).indices
            ends = torch.cumsum(torch.bincount(channels, minlength=n_channels), 0).tolist()
            ranges = [(k, start, stop) for k, (start, stop) in enumerate(zip([0, *ends[:-1]], ends)) if stop > start]
            plan.append(FactorsOfDegree(l=l, order=order, invariants=features[order], ranges=ranges))
        return plan

    def _add_to_blocks(self, d_coupled: dict, d_stacked: Tensor, L: int, blocks: list, pairs: Tensor | None) -> None:
        """The adjoint of a stack Q^L (`couplings`) added into its blocks' rows of L (and, at
        order 5, their channel pairs `pairs`)."""
        size = d_stacked.shape[1] // len(blocks)
        for i, block in enumerate(blocks):
            r0, r1 = self.plan.block(*block).rows[L]
            part = d_stacked[:, i * size : (i + 1) * size]
            if pairs is None:
                d_coupled[block][:, :, r0:r1] += part
            else:
                d_coupled[block][:, :, r0:r1].index_add_(1, pairs, part)

    def density_gradients(self, densities: Tensor, weights: Tensor, couplings=None) -> Tensor:
        """Σ_f w_f ∂B_f/∂A (n_atoms, n_channels, n_lm) for weights w (n_atoms, n_features), or
        (1, n_features) for weights every atom shares (a model linear in B: then the weights'
        layouts below are built once, not per atom): the
        vector–Jacobian product of the contractions, without forming ∂B/∂A. Order 3 per l is
        (M + Mᵀ) A_l; for orders 4 and 5 the weights are scattered into the dense layout of
        `_dense_products` and, per order and L, the transposed products give the adjoints of
        the factors and stacks Q^L; the adjoints of each block of couplings P are then taken
        back to A once (`couplings` are reused if given)."""
        factors, half, stacked4, stacked5 = couplings or self.couplings(densities)
        plan = self.plan
        n, n_channels, n_lm = densities.shape
        rows = weights.shape[0]  # n, or 1: shared
        out = densities.new_zeros((n, n_channels, n_lm))
        out[:, plan.order2, 0] += weights[:, : len(plan.order2)]
        at = n_channels
        for l in plan.order3_ls:  # dA_l = (M + Mᵀ) A_l, M the weights in the (K, K) layout
            w = weights.new_zeros((rows, n_channels * n_channels))
            w[:, plan.order3_flat] = weights[:, at : at + len(plan.order3_flat)]
            w = w.view(rows, n_channels, n_channels)
            out[:, :, l * l : (l + 1) ** 2] += _times(w + w.transpose(1, 2), densities[:, :, l * l : (l + 1) ** 2])
            at += len(plan.order3_flat)
        d_factors = {l: torch.zeros_like(f) for l, f in factors.items()}
        d_coupled = {
            (b.la, b.lb): densities.new_zeros((n, len(plan.channels4) ** 2, max(r1 for _, r1 in b.rows.values()))) for b in plan.blocks
        }
        n_dense = len(plan.dense_sign)
        if n_dense:  # the weights in each product's dense layout, then the transposed products per L
            signed = plan.dense_sign.to(weights) * weights[:, at : at + n_dense]
            parts = iter(
                signed.new_zeros((rows, size)).index_add_(1, pick.flat, signed[:, pick.positions])
                for size, pick in zip(plan.dense_sizes, plan.dense_picks)
            )
            for L, q in stacked4.items():
                d = next(parts).view(rows, factors[L].shape[1], q.shape[1])
                d_factors[L] += _times(d, q)
                self._add_to_blocks(d_coupled, _times(d.transpose(1, 2), factors[L]), L, plan.stack4[L], None)
            for L, q in stacked5.items():
                d = next(parts).view(rows, q.shape[1], q.shape[1])
                self._add_to_blocks(d_coupled, _times(d + d.transpose(1, 2), q), L, plan.stack5[L], plan.channel_pairs5)
            at += n_dense
        for (la, lb), d in d_coupled.items():  # P_kjM = Σ_ab W_Mab x_ka y_jb: dx_ka = Σ_jM dP_kjM (W y)_jMa, dy likewise
            k4 = factors[la].shape[1]
            by_second = (factors[lb].reshape(n * k4, -1) @ plan.block(la, lb).by_second.to(d)).view(n, -1, 2 * la + 1)
            d_factors[la] += torch.bmm(d.view(n, k4, -1), by_second)
            d_factors[lb] += torch.bmm(d.view(n, k4, k4, -1).transpose(1, 2).reshape(n, k4, -1), half[(la, lb)])
        for l, d in d_factors.items():
            out[:, :, l * l : (l + 1) ** 2].index_add_(1, plan.channels4, d)
        if self.embedding:  # Σ_k w_zk F'(ρ_zk) a_kn into A_(z,n),00
            w = weights[:, at:].view(rows, len(self.elements), self.embedding) * self._embedding_slopes(densities)
            out[:, :, 0] += (w @ plan.embedding_coefficients.to(densities)).flatten(1)
        return out

    # --------------------------------------------------------------- the API

    def forward(self, species, vectors, pair_i, pair_j, triplet_p=None, triplet_q=None, centres=None) -> Tensor:
        """B (n_atoms, n_features) from pair vectors, in plain torch (autograd differentiates
        it): the reference for `evaluate`. Triplets are not used."""
        first, last = centres if centres is not None else (0, species.shape[0])
        layout = self._neighbour_slots(species, pair_i, pair_j, first, last - first)
        inner = self.pair_inner_radii(species, pair_i, pair_j)
        return self.invariants(self._densities(*self._radial_and_angular(vectors, inner), layout, last - first)[0])

    @torch.no_grad()
    def evaluate(self, species, vectors, pair_i, pair_j, centres: tuple[int, int], jacobian: bool) -> tuple[Tensor, Tensor | None]:
        """B of atoms a ≤ i < b (`centres`) from the pairs centred on them (sorted by centre)
        and, with `jacobian`, J (n_pairs, n_features, 3) = ∂B_{i_p}/∂r_p, by sub-blocks of
        atoms whose working memory fits in JACOBIAN_BLOCK_BYTES."""
        first, last = centres
        if not jacobian:
            return self.forward(species, vectors, pair_i, pair_j, centres=centres), None
        # per atom: its factor derivatives (about 15 numbers per invariant, twice) and its padded
        # Jacobian (slots of every element), gathered per pair
        pairs_per_atom = int(torch.bincount(pair_i - first).max()) if pair_i.numel() else 0
        row_bytes = self.n_features * (40 + 6 * len(self.elements) * pairs_per_atom) * vectors.element_size()
        atoms_per_block = max(1, int(JACOBIAN_BLOCK_BYTES / row_bytes))
        features, jacobians = [], []
        for a in range(first, last, atoms_per_block):
            b = min(a + atoms_per_block, last)
            p0, p1 = torch.searchsorted(pair_i, torch.tensor([a, b], device=pair_i.device)).tolist()
            block_features, block_jacobian = self._jacobian_block(species, vectors[p0:p1], pair_i[p0:p1], pair_j[p0:p1], a, b)
            features.append(block_features)
            jacobians.append(block_jacobian)
        if len(jacobians) == 1:  # one block: no copy
            return features[0], jacobians[0]
        return torch.cat(features), torch.cat(jacobians)

    def _jacobian_block(self, species, vectors, pair_i, pair_j, first: int, last: int) -> tuple[Tensor, Tensor]:
        """B and J of atoms first ≤ i < last. The part of J_p from one factor (channel k = (z, n),
        degree l) of the invariants is

            J_p,f += Σ_m V_f,m ∂φ_nlm/∂r_p,   V = ∂B_f/∂A_k,lm,   ∂φ_nlm/∂r_p = (∂R_n/∂r_p) Y_lm + R_n ∂Y_lm/∂r_p

        over the invariants f with that factor alone (∂B/∂A is sparse: each invariant has at most
        four factors): per (k, l) one batched product of V with the ∂φ of the atom's pairs with
        element z, padded in slots (`_neighbour_slots`)."""
        n_block, n_elements = last - first, len(self.elements)
        radial, angular, d_radial, d_angular = self._radial_and_angular_gradients(vectors, self.pair_inner_radii(species, pair_i, pair_j))
        layout = self._neighbour_slots(species, pair_i, pair_j, first, n_block)
        rows, slots, width = layout
        densities, _, _ = self._densities(radial, angular, layout, n_block)
        couplings = self.couplings(densities)
        features = self.invariants(densities, couplings)
        d_basis = d_radial[:, :, None] * angular[:, None, :, None] + radial[:, :, None, None] * d_angular[:, None]  # ∂φ (pairs, n, lm, 3)
        # (n, n_elements, n_radial, n_lm, 3, slots): the pairs' ∂φ in their slots
        d_basis = self._padded(d_basis.flatten(1), layout, n_block).view(n_block, n_elements, width, self.n_radial, self.n_lm, 3)
        d_basis = d_basis.permute(0, 1, 3, 4, 5, 2)
        values: dict[int, list[Tensor]] = {}
        for _, _, l, value in self._factor_derivatives(densities, couplings):
            values.setdefault(l, []).append(value)
        jacobian = vectors.new_zeros((n_block, n_elements, self.n_features, 3 * width))
        for factors in self.factor_plan:
            l = factors.l
            by_channel = torch.cat(values[l], dim=1)[:, factors.order]  # (n, F_l, 2l + 1)
            invariants = factors.invariants
            for k, start, stop in factors.ranges:
                z, n = divmod(k, self.n_radial)
                d_phi = d_basis[:, z, n, l * l : (l + 1) ** 2].reshape(n_block, 2 * l + 1, 3 * width)
                jacobian[:, z].index_add_(1, invariants[start:stop], torch.bmm(by_channel[:, start:stop], d_phi))
        jacobian = jacobian.view(n_block * n_elements, self.n_features, 3, width)
        return features, jacobian.permute(0, 3, 1, 2)[rows, slots]

    def bytes_per_pair(self, jacobian: bool) -> float:
        """Working memory of `evaluate` and `pair_gradients` per pair, to size blocks of centre
        atoms: an upper bound of five copies of φ, plus the Jacobian (its padded and gathered
        copies and the parts added into it)."""
        return 8 * self.n_radial * self.n_lm * 5 + (8 * self.n_features * 9 if jacobian else 0)

    @torch.no_grad()
    def features_and_pair_gradients(
        self, species, vectors, pair_i, pair_j, centres: tuple[int, int], weigh
    ) -> tuple[Tensor, object, Tensor]:
        """(B, value, g) in one pass for the atoms a ≤ i < b (`centres`): B (n_block, n_features),
        (value, w) = weigh(B) with weights w (n_block, n_features), say a model's atom energies
        and ∂E/∂B, and g_p = Σ_f w_{i_p f} ∂B_{i_p f}/∂r_p (n_pairs, 3). The pair basis, the
        densities and the couplings the invariants share with their gradients are computed once.
        Σ_f w_f ∂B_f/∂A per atom comes from the contractions (`density_gradients`); its products
        with each atom's padded R and Y are the adjoints of the pairs' R_n(r) and Y_lm(r̂), and
        from those, reverse mode in r gives R's share of g and the harmonics' gradient relation
        Y's (`_angular_vector_product`); nothing of size n_features × pairs is formed. weigh may
        return a list of weights (a committee's members): then g is the list of their gradients,
        all from this one pass's densities and couplings."""
        first, last = centres
        r = torch.linalg.vector_norm(vectors, dim=1)
        with torch.enable_grad():
            distance = r.detach().requires_grad_(True)
            radial = self._radial(distance, self.pair_inner_radii(species, pair_i, pair_j))
        angular = self._angular(vectors)
        n_block = last - first
        layout = self._neighbour_slots(species, pair_i, pair_j, first, n_block)
        rows, slots, _ = layout
        densities, padded_radial, padded_angular = self._densities(radial.detach(), angular.detach(), layout, n_block)
        couplings = self.couplings(densities)
        features = self.invariants(densities, couplings)
        value, weights = weigh(features)
        unit = vectors / r[:, None]
        gradients = []
        for w in weights if isinstance(weights, list) else [weights]:
            adjoint = self.density_gradients(densities, w, couplings).view(-1, self.n_radial, self.n_lm)  # per (atom, element)
            # through A = Σ_pairs R ⊗ Y: the adjoints of each pair's R and Y are products with its row's adjoint of A
            d_radial = torch.bmm(padded_angular, adjoint.transpose(1, 2))[rows, slots]
            d_angular = torch.bmm(padded_radial, adjoint)[rows, slots]
            (d_distance,) = torch.autograd.grad(radial, distance, grad_outputs=d_radial, retain_graph=True)
            gradients.append(d_distance[:, None] * unit + self._angular_vector_product(angular, d_angular, r, unit))
        return features, value, gradients if isinstance(weights, list) else gradients[0]

    def _angular_vector_product(self, angular: Tensor, adjoint: Tensor, r: Tensor, unit: Tensor) -> Tensor:
        """Σ_lm adjoint_lm ∂Y_lm(r̂_p)/∂r_p (n_pairs, 3), from the gradient relation of
        `_radial_and_angular_gradients` without forming ∂Y per (l, m): for each l the product of
        adjoint_l with G_l, then its sum with Y_(l−1) per pair."""
        tangential, along = torch.zeros_like(unit), torch.zeros_like(r)
        for h in self.harmonic_gradients:
            l, gradient = h.l, h.gradient
            block = adjoint[:, l * l : (l + 1) ** 2]
            # Σ_m adjoint_m G_l[m', m, :] first, (n_pairs, 2l − 1, 3), then its sum with Y_(l−1)m'
            by_lower = (block @ gradient.to(unit).transpose(0, 1).reshape(2 * l + 1, -1)).view(-1, 2 * l - 1, 3)
            tangential += torch.bmm(angular[:, None, (l - 1) ** 2 : l * l], by_lower)[:, 0]
            along -= l * (block * angular[:, l * l : (l + 1) ** 2]).sum(1)
        return (tangential + along[:, None] * unit) / r[:, None]

    def pair_gradients(self, species, vectors, pair_i, pair_j, centres: tuple[int, int], weights: Tensor) -> Tensor:
        """g_p = Σ_f w_{i_p f} ∂B_{i_p f}/∂r_p (n_pairs, 3) for fixed weights w (n_block, n_features)."""
        return self.features_and_pair_gradients(species, vectors, pair_i, pair_j, centres, lambda _: (None, weights))[2]

    def get_config(self) -> dict:
        return {"kind": self.kind, "elements": self.elements, "cutoff": self.cutoff, "r_min": self.r_min, **self.basis.model_dump()}

    @classmethod
    def from_config(cls, config: dict) -> AtomicClusterExpansion:
        """From `get_config`'s flat dict (a model file's)."""
        basis = AceBasis(**{name: config[name] for name in AceBasis.model_fields if name in config})
        return cls(config["elements"], config["cutoff"], basis, config.get("r_min", 0.0))

    def describe(self) -> str:
        b = self.basis
        return (
            f"{self.n_features} body-ordered invariants per atom (order ≤ {b.body_order}, n_radial {b.n_radial}, "
            f"l_max {b.l_max}{f', ξ in (1 + r)^-{b.radial_power:g}' if b.radial_power else ''}; order 4: n < {b.n_radial_4}, l ≤ {b.l_max_4}"
            + (f", Σ(n + l) ≤ {b.degree_4}" if b.degree_4 is not None else "")
            + (f"; order 5: n < {b.n_radial_5}, l ≤ {b.l_max_5}" if b.body_order >= 5 else "")
            + (f", Σ(n + l) ≤ {b.degree_5}" if b.body_order >= 5 and b.degree_5 is not None else "")
            + (f"; {b.embedding} embedded densities per element)" if b.embedding else ")")
        )
