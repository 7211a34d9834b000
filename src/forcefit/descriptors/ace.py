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
(`_plan_dense_products`): ten products for the 1763-invariant basis instead of one per group
(96); features and forces of a 54-atom bcc Mo cell 24.3 → 18.3 ms, one thread.

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

import itertools
from typing import ClassVar

import torch
import torch.autograd.forward_ad as forward_ad
from pydantic import ConfigDict, Field, model_validator
from torch import Tensor

from forcefit.descriptors.cutoff import CUTOFF_TYPES, InnerCutoff, cutoff_function, inner_switch
from forcefit.descriptors.registry import register
from forcefit.settings import Settings

JACOBIAN_BLOCK_BYTES = 4e8  # working memory of one block of atoms while assembling the Jacobian (a 54-atom Mo cell: one block)
EMBEDDING_EPSILON = 1e-2  # ε of the embedding F(ρ) = √(ρ + ε) − √ε: finite slope at ρ = 0 (a lone atom)


def embedding_coefficients(n_embedding: int, n_radial: int) -> Tensor:
    """a (n_embedding, n_radial): ((1 − ξ)/2)^k = Σ_n a_kn T_n(ξ), k < n_embedding, exactly
    (Chebyshev coefficients of a polynomial of degree k < n_radial)."""
    from numpy.polynomial import chebyshev, polynomial

    rows = []
    for k in range(n_embedding):
        coefficients = chebyshev.poly2cheb(polynomial.polypow([0.5, -0.5], k))
        rows.append(list(coefficients) + [0.0] * (n_radial - len(coefficients)))
    return torch.tensor(rows, dtype=torch.float64).reshape(n_embedding, n_radial)


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


def _map_tensors(value, fn):
    """`value` with fn applied to every tensor in it (lists, tuples and dicts, nested)."""
    if isinstance(value, Tensor):
        return fn(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_map_tensors(v, fn) for v in value)
    if isinstance(value, dict):
        return {k: _map_tensors(v, fn) for k, v in value.items()}
    return value


class AceBasis(Settings):
    """Which invariants (module docstring): the Chebyshev degrees and angular orders per body
    order, the total-degree limits, the distance transform's power and the embedded densities;
    a config's `model.ace` keys (model.cutoff and model.r_min apply too)."""

    model_config = ConfigDict(frozen=True)
    section: ClassVar[str] = "model.ace"

    n_radial: int = Field(6, ge=1, description="Chebyshev polynomials per neighbour element: the radial channels")
    l_max: int = Field(4, ge=0, description="the highest angular degree (body orders 2 and 3)")
    body_order: int = Field(4, ge=2, le=5, description="2–5: the highest body order of the invariants (centre atom included)")
    n_radial_4: int = Field(3, ge=1, description="radial channels of body order 4 (≤ n_radial)")
    l_max_4: int = Field(2, ge=0, description="the highest angular degree of body order 4 (≤ l_max)")
    n_radial_5: int = Field(2, ge=1, description="radial channels of body order 5 (≤ n_radial_4)")
    l_max_5: int = Field(1, ge=0, description="the highest angular degree of body order 5 (≤ l_max_4)")
    cutoff_type: str = Field("poly2", description="the cutoff function (descriptors/cutoff.py); poly2: smooth to the second derivative")
    radial_power: float = Field(
        0.0, description="q of the distance transform: 0, Chebyshev in r; q > 0, in (1 + r)^−q, finer at short range"
    )
    embedding: int = Field(
        0, description="E: per neighbour element, √ of E positive densities of decreasing range, Finnis–Sinclair-like (0: none)"
    )
    degree_4: int | None = Field(
        None, description="total-degree limit Σ (n + l) over the three factors of order 4, within their n and l boxes (null: none)"
    )
    degree_5: int | None = Field(None, description="the same for the four factors of order 5 (null: none)")

    @model_validator(mode="after")
    def _consistent(self) -> AceBasis:
        if self.cutoff_type not in CUTOFF_TYPES:
            raise ValueError(f"ace cutoff_type {self.cutoff_type!r}; choose one of {sorted(CUTOFF_TYPES)}")
        if self.n_radial_4 > self.n_radial or self.l_max_4 > self.l_max:
            raise ValueError("ace: need n_radial ≥ 1, l_max ≥ 0, 1 ≤ n_radial_4 ≤ n_radial and 0 ≤ l_max_4 ≤ l_max")
        if self.body_order == 5 and not (self.n_radial_5 <= self.n_radial_4 and self.l_max_5 <= self.l_max_4):
            raise ValueError("ace body_order 5: need 1 ≤ n_radial_5 ≤ n_radial_4 and 0 ≤ l_max_5 ≤ l_max_4")
        if not self.radial_power >= 0:
            raise ValueError(f"ace radial_power {self.radial_power}: expected q ≥ 0 (0: ξ linear in r; q > 0: ξ linear in (1 + r)^−q)")
        if not 0 <= self.embedding <= self.n_radial:
            raise ValueError(
                f"ace embedding {self.embedding}: expected 0 ≤ embedding ≤ n_radial ({self.n_radial}), the densities' polynomial degree"
            )
        for name, value in (("degree_4", self.degree_4), ("degree_5", self.degree_5)):
            if value is not None and value < 0:
                raise ValueError(f"ace {name} {value!r}: expected a total degree Σ (n + l) ≥ 0 over the factors, or null for none")
        return self


@register
class AtomicClusterExpansion(InnerCutoff, torch.nn.Module):
    kind = "ace"
    angular_cutoff = 0.0  # no triplets: angles enter through the spherical harmonics
    cheap_jacobian = False  # n_features × pairs × 3: one gradient pass per set of weights costs far less

    def __init__(self, elements: list[str], cutoff: float, basis: AceBasis | None = None, r_min: float = 0.0):
        super().__init__()
        basis = basis or AceBasis()
        n_radial, l_max, body_order, n_radial_4, l_max_4 = basis.n_radial, basis.l_max, basis.body_order, basis.n_radial_4, basis.l_max_4
        n_radial_5, l_max_5, cutoff_type, radial_power = basis.n_radial_5, basis.l_max_5, basis.cutoff_type, basis.radial_power
        embedding, degree_4, degree_5 = basis.embedding, basis.degree_4, basis.degree_5
        if not 0 <= r_min < cutoff:
            raise ValueError(f"ace r_min {r_min} Å: expected 0 ≤ r_min < cutoff ({cutoff} Å)")
        self.degree_4, self.degree_5 = degree_4, degree_5
        self.radial_power = float(radial_power)
        self.embedding = int(embedding)
        self.embedding_coefficients = embedding_coefficients(self.embedding, n_radial)
        self.elements, self.cutoff = list(elements), float(cutoff)
        self.n_radial, self.l_max, self.body_order = n_radial, l_max, body_order
        self.n_radial_4, self.l_max_4, self.r_min, self.cutoff_type = n_radial_4, l_max_4, float(r_min), cutoff_type
        self.n_radial_5, self.l_max_5 = n_radial_5, l_max_5
        n_channels = len(self.elements) * n_radial
        self.order2 = torch.arange(n_channels)
        # body order 3, per l: the channel pairs k1 ≤ k2
        first, second = torch.triu_indices(n_channels, n_channels)
        self.order3 = [(l, first, second) for l in range(l_max + 1)] if body_order >= 3 else []
        self.order3_flat = first * n_channels + second  # (k1, k2) in the flat (K, K) product A_l A_lᵀ
        # body order 4, grouped by (l1, l2, l3): the channel triples and the coupling tensor
        self.order4 = []
        if body_order >= 4:
            from e3nn import o3

            items = [(k, l) for k in range(n_channels) if k % n_radial < n_radial_4 for l in range(l_max_4 + 1)]
            degree = [k % n_radial + l for k, l in items]
            groups: dict[tuple[int, int, int], list[tuple[int, int, int]]] = {}
            for a, b, c in itertools.combinations_with_replacement(range(len(items)), 3):
                (k1, l1), (k2, l2), (k3, l3) = items[a], items[b], items[c]
                if degree_4 is not None and degree[a] + degree[b] + degree[c] > degree_4:
                    continue
                if abs(l1 - l2) <= l3 <= l1 + l2 and (l1 + l2 + l3) % 2 == 0:
                    groups.setdefault((l1, l2, l3), []).append((k1, k2, k3))
            for ls, triples in sorted(groups.items()):
                ks = torch.tensor(triples).T
                self.order4.append((ls, ks[0], ks[1], ks[2], o3.wigner_3j(*ls, dtype=torch.float64)))
        # body order 5, grouped by (l1, l2, l3, l4, L): sorted quadruples of (channel, l) coupled
        # as (12)_L (34)_L over every intermediate L (one coupling scheme spans the invariants of
        # its four factors); a pair of identical factors has no part odd under their exchange
        self.order5 = []
        if body_order >= 5:
            from e3nn import o3

            items = [(k, l) for k in range(n_channels) if k % n_radial < n_radial_5 for l in range(l_max_5 + 1)]
            degree = [k % n_radial + l for k, l in items]
            groups5: dict[tuple[int, ...], list[tuple[int, int, int, int]]] = {}
            for a, b, c, d in itertools.combinations_with_replacement(range(len(items)), 4):
                (k1, l1), (k2, l2), (k3, l3), (k4, l4) = items[a], items[b], items[c], items[d]
                if (l1 + l2 + l3 + l4) % 2 or (degree_5 is not None and degree[a] + degree[b] + degree[c] + degree[d] > degree_5):
                    continue
                for L in range(max(abs(l1 - l2), abs(l3 - l4)), min(l1 + l2, l3 + l4) + 1):
                    if (a == b and (l1 + l2 + L) % 2) or (c == d and (l3 + l4 + L) % 2):
                        continue
                    groups5.setdefault((l1, l2, l3, l4, L), []).append((k1, k2, k3, k4))
            for ls, quadruples in sorted(groups5.items()):
                ks = torch.tensor(quadruples).T
                l1, l2, l3, l4, L = ls
                left, right = (o3.wigner_3j(L, x, y, dtype=torch.float64) for x, y in ((l1, l2), (l3, l4)))
                self.order5.append((ls, ks[0], ks[1], ks[2], ks[3], left, right))
        n = (
            n_channels
            + sum(len(f) for _, f, _ in self.order3)
            + sum(len(k) for _, k, _, _, _ in self.order4)
            + sum(len(k) for _, k, *_ in self.order5)
            + len(self.elements) * self.embedding
        )
        self.n_features = n
        self.n_features_per_element = [n] * len(self.elements)
        self._plan_dense_products()
        self._factor_plan_cache = self._harmonic_gradient_cache = None
        # where the data begin, per (centre, neighbour) element pair, Å: 0 (no switch) until set from the data
        self.register_inner_radii(len(self.elements))

    def _apply(self, fn, recurse: bool = True):
        """`Module.to` and friends: the contraction plan built in __init__ (index and
        coefficient tensors, in lists, tuples and dicts) goes where the module goes. The
        lazily built caches are dropped: the training Jacobian's plan is built on the CPU, where
        training computes descriptors."""
        super()._apply(fn, recurse)
        for name, value in list(vars(self).items()):
            if not name.startswith("_"):  # torch.nn.Module's own state and the caches
                setattr(self, name, _map_tensors(value, fn))
        self._factor_plan_cache = self._harmonic_gradient_cache = None
        return self

    def _plan_dense_products(self) -> None:
        """The plan of `couplings`, `invariants` and `density_gradients` for orders 4 and 5.
        Both are built from couplings of two factor blocks, P^L_(k k') = Σ W(L, la, lb) A_k,la A_k',lb,
        computed once per (la ≤ lb) over every pair of the channels order 4 uses and for
        every L the invariants need (a block (la > lb) is the transposed one times
        (−1)^(L + la + lb), the exchange symmetry of the 3j symbols). The couplings of one L
        from all blocks are stacked, Q^L (NB K² rows, 2L + 1); then all invariants of one
        order and one L come from one batched matrix product over every channel combination,
        whose entries the invariants hold are picked out by a flat index and a sign (`dense_picks`):
          order 4, l1 = L:    B = Σ_m A_k1,Lm Q^L_(k2 k3),m          dense (K4, NB K4²)
          order 5, (12)_L (34)_L:  B = Σ_M Q^L_(k1 k2),M Q^L_(k3 k4),M   dense (NB K5², NB K5²)
        with K4 (K5) the channels of order 4 (5). Their gradients are the transposed products,
        and one reverse step per block of P (`density_gradients`)."""
        from e3nn import o3

        n_channels = len(self.elements) * self.n_radial
        channel = torch.arange(n_channels)
        self.channels4 = channel[channel % self.n_radial < self.n_radial_4]
        self.channels5 = channel[channel % self.n_radial < self.n_radial_5]
        position = torch.full((n_channels,), -1, dtype=torch.long)
        position[self.channels4] = torch.arange(len(self.channels4))
        k4, k5 = len(self.channels4), len(self.channels5)
        self.channel_pairs5 = (position[self.channels5][:, None] * k4 + position[self.channels5][None, :]).reshape(-1)
        position5 = torch.full((n_channels,), -1, dtype=torch.long)
        position5[self.channels5] = torch.arange(k5)

        def oriented(lx: int, ly: int, kx: Tensor, ky: Tensor, L: int, size: int, where: Tensor):
            """(la, lb), the flat pair index in that block's channel layout and the sign."""
            if lx <= ly:
                return (lx, ly), where[kx] * size + where[ky], 1.0
            return (ly, lx), where[ky] * size + where[kx], float((-1) ** (L + lx + ly))

        # pass 1: which block (la, lb) each product uses, at which L
        groups4, groups5 = [], []
        used4: dict[int, set] = {}
        used5: dict[int, set] = {}
        for (l1, l2, l3), k1, k2, k3, _ in self.order4:
            # the derivative by each factor is the coupling of the other two to its degree
            # (W^l1l2l3 changes by (−1)^(l1 + l2 + l3) = 1 under an exchange of two columns);
            # the first of the three gives the invariant itself, with its factor A_k1,l1
            slots = []
            for (kx, lx), (ky, ly), (kz, lz) in (
                ((k1, l1), (k2, l2), (k3, l3)),
                ((k2, l2), (k1, l1), (k3, l3)),
                ((k3, l3), (k1, l1), (k2, l2)),
            ):
                slots.append((kx, lx, *oriented(ly, lz, ky, kz, lx, k4, position)))
                used4.setdefault(lx, set()).add(slots[-1][2])
            groups4.append(slots)
        for (l1, l2, l3, l4, L), k1, k2, k3, k4_, _, _ in self.order5:
            halves = (oriented(l1, l2, k1, k2, L, k5, position5), oriented(l3, l4, k3, k4_, L, k5, position5))
            used5.setdefault(L, set()).update(block for block, _, _ in halves)
            groups5.append((L, halves))
        # per block (la, lb): its Ls' 3j symbols W stacked (S = Σ (2L + 1) rows M), as the two
        # matrices that contract them with one factor, (2la + 1, S (2lb + 1)) and (2lb + 1, S (2la + 1)),
        # and each L's rows
        needed: dict[tuple[int, int], set[int]] = {}
        for used in (used4, used5):
            for L, blocks in used.items():
                for block in blocks:
                    needed.setdefault(block, set()).add(L)
        self.blocks = {}
        for (la, lb), ls in sorted(needed.items()):
            rows, at = {}, 0
            for L in sorted(ls):
                rows[L] = (at, at + 2 * L + 1)
                at += 2 * L + 1
            symbols = torch.cat([o3.wigner_3j(L, la, lb, dtype=torch.float64) for L in sorted(ls)])
            self.blocks[(la, lb)] = (
                symbols.permute(1, 0, 2).reshape(2 * la + 1, -1),
                symbols.permute(2, 0, 1).reshape(2 * lb + 1, -1),
                rows,
            )
        # pass 2: the stacks Q^L (blocks in order), the flat index of each invariant in the
        # concatenated dense products (order 4 by L, then order 5 by L) and its sign
        self.stack4 = {L: sorted(blocks) for L, blocks in sorted(used4.items())}
        self.stack5 = {L: sorted(blocks) for L, blocks in sorted(used5.items())}
        # the sizes of the dense products in `_dense_products`' order (order 4 by L, then 5 by L)
        self.dense_sizes = [k4 * len(b) * k4 * k4 for b in self.stack4.values()] + [(len(b) * k5 * k5) ** 2 for b in self.stack5.values()]
        starts = [0, *itertools.accumulate(self.dense_sizes)]
        offset4 = dict(zip(self.stack4, starts))
        offset5 = dict(zip(self.stack5, starts[len(self.stack4) :]))
        index, sign = [], []
        self.factors4 = []  # per order-4 group and factor: (channels, l, rows in Q^l, sign)
        for slots in groups4:
            derivatives = [(kx, lx, self.stack4[lx].index(block) * k4 * k4 + pair, s) for kx, lx, block, pair, s in slots]
            kx, lx, rows, s = derivatives[0]
            index.append(offset4[lx] + position[kx] * len(self.stack4[lx]) * k4 * k4 + rows)
            sign.append(torch.full((len(rows),), s, dtype=torch.float64))
            self.factors4.append(derivatives)
        self.factors5 = []  # per order-5 group: L and (rows in Q^L, sign) of its (12) and (34)
        for L, halves in groups5:
            (block12, pair12, s12), (block34, pair34, s34) = halves
            size = len(self.stack5[L]) * k5 * k5
            rows12, rows34 = (self.stack5[L].index(block) * k5 * k5 + pair for block, pair in ((block12, pair12), (block34, pair34)))
            index.append(offset5[L] + rows12 * size + rows34)
            sign.append(torch.full((len(rows12),), s12 * s34, dtype=torch.float64))
            self.factors5.append((L, (rows12, s12), (rows34, s34)))
        flat = torch.cat(index) if index else torch.zeros(0, dtype=torch.long)
        self.dense_sign = torch.cat(sign) if sign else torch.zeros(0, dtype=torch.float64)
        # per dense product: the positions of its invariants among those of orders 4 and 5, and
        # their flat index within it (each product is read, and its adjoint written, on its own)
        self.dense_picks = []
        for start, stop in itertools.pairwise(starts):
            positions = torch.nonzero((flat >= start) & (flat < stop)).squeeze(1)
            self.dense_picks.append((positions, flat[positions] - start))

    def feature_degrees(self) -> Tensor:
        """d (n_features,): the polynomial degree Σ (n + l) of each invariant over its factors
        (radial index n, angular degree l), in the order of `invariants`; for smoothness priors."""
        n = torch.arange(len(self.elements) * self.n_radial) % self.n_radial
        parts = [n]
        parts += [n[k1] + n[k2] + 2 * l for l, k1, k2 in self.order3]
        parts += [n[k1] + n[k2] + n[k3] + sum(ls) for ls, k1, k2, k3, _ in self.order4]
        parts += [n[k1] + n[k2] + n[k3] + n[k4] + sum(ls[:4]) for ls, k1, k2, k3, k4, _, _ in self.order5]
        parts.append(torch.arange(self.embedding).repeat(len(self.elements)))  # F(ρ_zk): the degree k of its density
        return torch.cat(parts)

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
        from e3nn import o3

        return o3.spherical_harmonics(list(range(self.l_max + 1)), vectors, normalize=True, normalization="integral")

    def _radial_and_angular(self, vectors: Tensor, inner: Tensor) -> tuple[Tensor, Tensor]:
        """R_n(r) (n_pairs, n_radial) and Y_lm(r̂) (n_pairs, n_lm), whose outer product is φ."""
        return self._radial(torch.linalg.vector_norm(vectors, dim=1), inner), self._angular(vectors)

    def _radial_and_angular_gradients(self, vectors: Tensor, inner: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """R, Y and their derivatives by r_p, (n_pairs, n_radial, 3) and (n_pairs, n_lm, 3):
        ∂R_n/∂r_p = R_n'(r) r̂ (one forward-mode pass in r), and, since r^l Y_l(r̂) is a
        harmonic polynomial whose gradient is one of degree l − 1,
            ∂Y_lm/∂r_p = (Σ_m' G_l[m', m, :] Y_(l−1)m'(r̂) − l r̂ Y_lm(r̂)) / r
        with the constants G_l of `_harmonic_gradients`."""

        r = torch.linalg.vector_norm(vectors, dim=1)
        unit = vectors / r[:, None]
        with forward_ad.dual_level():
            radial, slope = forward_ad.unpack_dual(self._radial(forward_ad.make_dual(r, torch.ones_like(r)), inner))
        angular = self._angular(vectors)
        blocks = [torch.zeros_like(vectors)[:, None, :]]
        for l, gradient in enumerate(self._harmonic_gradients(), start=1):
            lower = angular[:, (l - 1) ** 2 : l * l] @ gradient.to(vectors).flatten(1)
            blocks.append(lower.view(-1, 2 * l + 1, 3) - l * unit[:, None, :] * angular[:, l * l : (l + 1) ** 2, None])
        return radial, angular, slope[:, :, None] * unit[:, None, :], torch.cat(blocks, dim=1) / r[:, None, None]

    def _harmonic_gradients(self) -> list[Tensor]:
        """G_l (2l − 1, 2l + 1, 3), l = 1 … l_max: ∇(r^l Y_lm) = Σ_m' G_l[m', m] r^(l−1) Y_(l−1)m' in e3nn's
        real basis. The relation is exact (the gradient of a harmonic polynomial of degree l is
        harmonic of degree l − 1); G_l is solved from it once, by least squares on 50 points of
        the sphere, and checked there."""
        if self._harmonic_gradient_cache is None:
            from e3nn import o3

            k = torch.arange(50, dtype=torch.float64) + 0.5  # a Fibonacci lattice
            z, phi = 1.0 - 2.0 * k / 50, torch.pi * (1.0 + 5.0**0.5) * k
            points = torch.stack([torch.sqrt(1 - z * z) * torch.cos(phi), torch.sqrt(1 - z * z) * torch.sin(phi), z], dim=1)
            self._harmonic_gradient_cache = []
            for l in range(1, self.l_max + 1):
                x = points.clone().requires_grad_(True)
                with torch.enable_grad():
                    solid = o3.spherical_harmonics(l, x, normalize=False, normalization="integral")
                    rows = [torch.autograd.grad(solid[:, m].sum(), x, retain_graph=True)[0] for m in range(2 * l + 1)]
                target = torch.stack(rows, dim=1).flatten(1)  # (points, (2l + 1) · 3)
                lower = o3.spherical_harmonics(l - 1, points, normalize=False, normalization="integral")
                gradient = torch.linalg.lstsq(lower, target).solution
                if not torch.allclose(lower @ gradient, target, rtol=0.0, atol=1e-12):
                    raise RuntimeError(f"ace: the gradient of the degree-{l} spherical harmonics is not of degree {l - 1}")
                self._harmonic_gradient_cache.append(gradient.view(2 * l - 1, 2 * l + 1, 3))
        return self._harmonic_gradient_cache

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
        """What both the invariants and their gradients use (`_plan_dense_products`): the
        factor blocks A_l over the order-4 channels (n, K4, 2l + 1); per block (la, lb) the
        contraction of W with its first factor, (W A_la)_k,M,b (n, K4 S, 2lb + 1); and per L
        the stacked couplings Q^L of orders 4 (n, NB K4², 2L + 1) and 5 (n, NB K5², 2L + 1)."""
        n, k4 = densities.shape[0], len(self.channels4)
        factors = {l: densities[:, self.channels4, l * l : (l + 1) ** 2] for l in range(self.l_max_4 + 1)} if self.order4 else {}
        half, coupled = {}, {}
        for (la, lb), (by_first, _, _) in self.blocks.items():
            half[(la, lb)] = (factors[la].reshape(n * k4, -1) @ by_first.to(densities)).view(n, -1, 2 * lb + 1)
            p = torch.bmm(half[(la, lb)], factors[lb].transpose(1, 2))  # (n, K4 S, K4): P_k,M,j
            coupled[(la, lb)] = p.view(n, k4, -1, k4).transpose(2, 3).reshape(n, k4 * k4, -1)

        def stacked(L: int, blocks: list, pairs: slice | Tensor) -> Tensor:
            return torch.cat([coupled[block][:, pairs, slice(*self.blocks[block][2][L])] for block in blocks], dim=1)

        stacked4 = {L: stacked(L, blocks, slice(None)) for L, blocks in self.stack4.items()}
        stacked5 = {L: stacked(L, blocks, self.channel_pairs5) for L, blocks in self.stack5.items()}
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
        parts = [densities[:, self.order2, 0]]
        for l, _, _ in self.order3:  # B_k1k2,l = (A_l A_lᵀ)_k1k2: one product per l
            block = densities[:, :, l * l : (l + 1) * (l + 1)]
            parts.append(torch.bmm(block, block.transpose(1, 2)).flatten(1)[:, self.order3_flat])
        if len(self.dense_sign):
            n = densities.shape[0]
            dense = densities.new_empty((n, len(self.dense_sign)))
            for product, (positions, flat) in zip(self._dense_products(factors, stacked4, stacked5), self.dense_picks):
                dense.index_copy_(1, positions, torch.gather(product, 1, flat.expand(n, -1)))  # gather: row by row
            parts.append(dense.mul_(self.dense_sign.to(densities)))
        if self.embedding:
            parts.append(torch.sqrt(self._embedded_densities(densities) + EMBEDDING_EPSILON).flatten(1) - EMBEDDING_EPSILON**0.5)
        return torch.cat(parts, dim=1)

    def _embedded_densities(self, densities: Tensor) -> Tensor:
        """ρ (n_atoms, n_elements, embedding) = Σ_n a_kn A_(z,n),00 (`embedding_coefficients`)."""
        radial = densities[:, :, 0].reshape(densities.shape[0], len(self.elements), self.n_radial)
        return radial @ self.embedding_coefficients.to(densities).T

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
        yield torch.arange(n_channels), self.order2, 0, densities.new_ones((n, n_channels, 1))
        at = n_channels
        for l, k1, k2 in self.order3:
            features = torch.arange(at, at + len(k1))
            block = densities[:, :, l * l : (l + 1) ** 2]
            yield features, k1, l, block[:, k2]
            yield features, k2, l, block[:, k1]
            at += len(k1)
        for (_, k1, _, _, _), derivatives in zip(self.order4, self.factors4):
            features = torch.arange(at, at + len(k1))
            for k, l, rows, sign in derivatives:
                yield features, k, l, sign * stacked4[l][:, rows]
            at += len(k1)
        for ((l1, l2, l3, l4, _), k1, k2, k3, k4, left, right), (L, (rows12, sign12), (rows34, sign34)) in zip(self.order5, self.factors5):
            # B = Σ_M (ab)_M (cd)_M: the derivative by a is Σ W[M, m_a, m_b] b (cd)_M, and so on
            features = torch.arange(at, at + len(k1))
            left, right = left.to(densities), right.to(densities)
            a, b, c, d = (densities[:, k, l * l : (l + 1) ** 2] for k, l in ((k1, l1), (k2, l2), (k3, l3), (k4, l4)))
            ab, cd = sign12 * stacked5[L][:, rows12], sign34 * stacked5[L][:, rows34]
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
            a = self.embedding_coefficients.to(densities).repeat(n_elements, 1)  # (features, n_radial)
            for radial_index in range(self.n_radial):
                yield features, element * self.n_radial + radial_index, 0, (slopes * a[:, radial_index])[:, :, None]

    def _factor_plan(self) -> dict[int, tuple[Tensor, Tensor, list[tuple[int, int, int]]]]:
        """Per angular degree l, over the factor derivatives of that l (`_factor_derivatives`,
        concatenated in the order it yields them): the order that sorts them by channel, their
        invariants in that order, and each channel's range (channel, start, stop). Static: taken
        once from the shapes of a zero density."""
        if self._factor_plan_cache is None:
            n_channels = len(self.elements) * self.n_radial
            parts: dict[int, list[tuple[Tensor, Tensor]]] = {}
            zero = torch.zeros((1, n_channels, self.n_lm), dtype=torch.float64)
            for features, channels, l, _ in self._factor_derivatives(zero, self.couplings(zero)):
                parts.setdefault(l, []).append((features, channels))
            self._factor_plan_cache = {}
            for l, pieces in sorted(parts.items()):
                features, channels = (torch.cat(x) for x in zip(*pieces))
                order = torch.sort(channels, stable=True).indices
                ends = torch.cumsum(torch.bincount(channels, minlength=n_channels), 0).tolist()
                ranges = [(k, start, stop) for k, (start, stop) in enumerate(zip([0, *ends[:-1]], ends)) if stop > start]
                self._factor_plan_cache[l] = (order, features[order], ranges)
        return self._factor_plan_cache

    def _add_to_blocks(self, d_coupled: dict, d_stacked: Tensor, L: int, blocks: list, pairs: Tensor | None) -> None:
        """The adjoint of a stack Q^L (`couplings`) added into its blocks' rows of L (and, at
        order 5, their channel pairs `pairs`)."""
        size = d_stacked.shape[1] // len(blocks)
        for i, block in enumerate(blocks):
            r0, r1 = self.blocks[block][2][L]
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
        n, n_channels, n_lm = densities.shape
        rows = weights.shape[0]  # n, or 1: shared
        out = densities.new_zeros((n, n_channels, n_lm))
        out[:, self.order2, 0] += weights[:, : len(self.order2)]
        at = n_channels
        for l, k1, _ in self.order3:  # dA_l = (M + Mᵀ) A_l, M the weights in the (K, K) layout
            w = weights.new_zeros((rows, n_channels * n_channels))
            w[:, self.order3_flat] = weights[:, at : at + len(k1)]
            w = w.view(rows, n_channels, n_channels)
            out[:, :, l * l : (l + 1) ** 2] += _times(w + w.transpose(1, 2), densities[:, :, l * l : (l + 1) ** 2])
            at += len(k1)
        d_factors = {l: torch.zeros_like(f) for l, f in factors.items()}
        d_coupled = {
            block: densities.new_zeros((n, len(self.channels4) ** 2, max(r1 for _, r1 in rows.values())))
            for block, (_, _, rows) in self.blocks.items()
        }
        n_dense = len(self.dense_sign)
        if n_dense:  # the weights in each product's dense layout, then the transposed products per L
            signed = self.dense_sign.to(weights) * weights[:, at : at + n_dense]
            parts = iter(
                signed.new_zeros((rows, size)).index_add_(1, flat, signed[:, positions])
                for size, (positions, flat) in zip(self.dense_sizes, self.dense_picks)
            )
            for L, q in stacked4.items():
                d = next(parts).view(rows, factors[L].shape[1], q.shape[1])
                d_factors[L] += _times(d, q)
                self._add_to_blocks(d_coupled, _times(d.transpose(1, 2), factors[L]), L, self.stack4[L], None)
            for L, q in stacked5.items():
                d = next(parts).view(rows, q.shape[1], q.shape[1])
                self._add_to_blocks(d_coupled, _times(d + d.transpose(1, 2), q), L, self.stack5[L], self.channel_pairs5)
            at += n_dense
        for (la, lb), d in d_coupled.items():  # P_kjM = Σ_ab W_Mab x_ka y_jb: dx_ka = Σ_jM dP_kjM (W y)_jMa, dy likewise
            k4 = factors[la].shape[1]
            by_second = (factors[lb].reshape(n * k4, -1) @ self.blocks[(la, lb)][1].to(d)).view(n, -1, 2 * la + 1)
            d_factors[la] += torch.bmm(d.view(n, k4, -1), by_second)
            d_factors[lb] += torch.bmm(d.view(n, k4, k4, -1).transpose(1, 2).reshape(n, k4, -1), half[(la, lb)])
        for l, d in d_factors.items():
            out[:, :, l * l : (l + 1) ** 2].index_add_(1, self.channels4, d)
        if self.embedding:  # Σ_k w_zk F'(ρ_zk) a_kn into A_(z,n),00
            w = weights[:, at:].view(rows, len(self.elements), self.embedding) * self._embedding_slopes(densities)
            out[:, :, 0] += (w @ self.embedding_coefficients.to(densities)).flatten(1)
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
        for l, (order, invariants, ranges) in self._factor_plan().items():
            by_channel = torch.cat(values[l], dim=1)[:, order.to(vectors.device)]  # (n, F_l, 2l + 1)
            invariants = invariants.to(vectors.device)
            for k, start, stop in ranges:
                z, n = divmod(k, self.n_radial)
                d_phi = d_basis[:, z, n, l * l : (l + 1) ** 2].reshape(n_block, 2 * l + 1, 3 * width)
                jacobian[:, z].index_add_(1, invariants[start:stop], torch.bmm(by_channel[:, start:stop], d_phi))
        jacobian = jacobian.view(n_block * n_elements, self.n_features, 3, width)
        return features, jacobian.permute(0, 3, 1, 2)[rows, slots]

    def bytes_per_pair(self, jacobian: bool) -> float:
        """Working memory of `evaluate` and `pair_gradients` per pair, to size blocks of centre
        atoms: an upper bound of five copies of φ (1728-atom Si, 1763 invariants, forces: 8.6 kB
        per pair measured at peak, 19.6 kB estimated), plus the Jacobian (its padded and gathered
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
        for l, gradient in enumerate(self._harmonic_gradients(), start=1):
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
        return {
            "kind": self.kind,
            "elements": self.elements,
            "cutoff": self.cutoff,
            "n_radial": self.n_radial,
            "l_max": self.l_max,
            "body_order": self.body_order,
            "n_radial_4": self.n_radial_4,
            "l_max_4": self.l_max_4,
            "n_radial_5": self.n_radial_5,
            "l_max_5": self.l_max_5,
            "r_min": self.r_min,
            "cutoff_type": self.cutoff_type,
            "radial_power": self.radial_power,
            "embedding": self.embedding,
            "degree_4": self.degree_4,
            "degree_5": self.degree_5,
        }

    @classmethod
    def from_config(cls, config: dict) -> AtomicClusterExpansion:
        """From `get_config`'s flat dict (a model file's)."""
        basis = AceBasis(**{name: config[name] for name in AceBasis.model_fields if name in config})
        return cls(config["elements"], config["cutoff"], basis, config.get("r_min", 0.0))

    def describe(self) -> str:
        return (
            f"{self.n_features} body-ordered invariants per atom (order ≤ {self.body_order}, n_radial {self.n_radial}, "
            f"l_max {self.l_max}{f', ξ in (1 + r)^-{self.radial_power:g}' if self.radial_power else ''}; order 4: n < {self.n_radial_4}, l ≤ {self.l_max_4}"
            + (f", Σ(n + l) ≤ {self.degree_4}" if self.degree_4 is not None else "")
            + (f"; order 5: n < {self.n_radial_5}, l ≤ {self.l_max_5}" if self.body_order >= 5 else "")
            + (f", Σ(n + l) ≤ {self.degree_5}" if self.body_order >= 5 and self.degree_5 is not None else "")
            + (f"; {self.embedding} embedded densities per element)" if self.embedding else ")")
        )
