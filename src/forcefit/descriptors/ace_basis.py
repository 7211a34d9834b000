"""Which body-ordered invariants the atomic cluster expansion holds, and the plan by which its
evaluation (descriptors/ace.py, whose docstring gives the formulas) contracts the densities
into them: the basis settings (`AceBasis`, a config's `model.ace`), the groups of invariants
per body order and angular degrees, and the dense-product layout of orders 4 and 5.

The plan is built once per descriptor. Its index and coefficient tensors are registered buffers
of small typed modules (`Record`s), so `Module.to` moves them with the descriptor; they are not
saved (`persistent=False`): a model file holds the basis settings, from which the plan is rebuilt.
"""

from __future__ import annotations

import itertools
from typing import ClassVar

import torch
from numpy.polynomial import chebyshev, polynomial
from pydantic import ConfigDict, Field, model_validator
from torch import Tensor

from forcefit.descriptors.cutoff import CUTOFF_TYPES
from forcefit.settings import Settings


def o3():
    """e3nn's `o3` (real spherical harmonics, Wigner 3j symbols), imported on first use: importing
    it loads torch._dynamo, about 2 s that every process importing forcefit's models would pay."""
    from e3nn import o3 as module

    return module


class AceBasis(Settings):
    """Which invariants: the Chebyshev degrees and angular orders per body order, the
    total-degree limits, the distance transform's power and the embedded densities; a config's
    `model.ace` keys (model.cutoff and model.r_min apply too)."""

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
            raise ValueError(f"model.ace.cutoff_type: {self.cutoff_type!r}; choose one of {sorted(CUTOFF_TYPES)}")
        if self.n_radial_4 > self.n_radial or self.l_max_4 > self.l_max:
            raise ValueError("model.ace: need n_radial_4 ≤ n_radial and l_max_4 ≤ l_max")
        if self.body_order == 5 and not (self.n_radial_5 <= self.n_radial_4 and self.l_max_5 <= self.l_max_4):
            raise ValueError("model.ace: body_order 5 needs n_radial_5 ≤ n_radial_4 and l_max_5 ≤ l_max_4")
        if not self.radial_power >= 0:
            raise ValueError(
                f"model.ace.radial_power: {self.radial_power}; expected q ≥ 0 (0: ξ linear in r; q > 0: ξ linear in (1 + r)^−q)"
            )
        if not 0 <= self.embedding <= self.n_radial:
            raise ValueError(
                f"model.ace.embedding: {self.embedding}; expected 0 ≤ embedding ≤ n_radial ({self.n_radial}), the densities' polynomial degree"
            )
        for name, value in (("degree_4", self.degree_4), ("degree_5", self.degree_5)):
            if value is not None and value < 0:
                raise ValueError(f"model.ace.{name}: {value!r}; expected a total degree Σ (n + l) ≥ 0 over the factors, or null for none")
        return self


def embedding_coefficients(n_embedding: int, n_radial: int) -> Tensor:
    """a (n_embedding, n_radial): ((1 − ξ)/2)^k = Σ_n a_kn T_n(ξ), k < n_embedding, exactly
    (Chebyshev coefficients of a polynomial of degree k < n_radial)."""
    rows = []
    for k in range(n_embedding):
        coefficients = chebyshev.poly2cheb(polynomial.polypow([0.5, -0.5], k))
        rows.append(list(coefficients) + [0.0] * (n_radial - len(coefficients)))
    return torch.tensor(rows, dtype=torch.float64).reshape(n_embedding, n_radial)


class Record(torch.nn.Module):
    """Named fields, declared as annotations: tensors become buffers (they move with the
    module that holds the record, and are not saved), other values plain attributes."""

    def __init__(self, **values):
        super().__init__()
        declared = {
            name for klass in type(self).__mro__ if issubclass(klass, Record) and klass is not Record for name in klass.__annotations__
        }
        if set(values) != declared:
            raise TypeError(f"{type(self).__name__}: fields {sorted(values)}, declared {sorted(declared)}")
        for name, value in values.items():
            if isinstance(value, Tensor):
                self.register_buffer(name, value, persistent=False)
            else:
                setattr(self, name, value)


class Order4Group(Record):
    """The order-4 invariants of one (l1, l2, l3): channel triples (k1, k2, k3), and W^l1l2l3."""

    ls: tuple[int, int, int]
    k1: Tensor
    k2: Tensor
    k3: Tensor
    coupling: Tensor


class Order5Group(Record):
    """The order-5 invariants of one (l1, l2, l3, l4, L), coupled as (12)_L (34)_L: channel
    quadruples and the two 3j symbols W^L,l1,l2 (`left`), W^L,l3,l4 (`right`)."""

    ls: tuple[int, int, int, int, int]
    k1: Tensor
    k2: Tensor
    k3: Tensor
    k4: Tensor
    left: Tensor
    right: Tensor


class CouplingBlock(Record):
    """The couplings P^L = Σ W(L, la, lb) A_la A_lb of one (la ≤ lb) over the Ls it serves: the
    stacked 3j symbols as the matrices that contract them with the first factor (2la + 1,
    S (2lb + 1)) and with the second (2lb + 1, S (2la + 1)), and each L's rows [start, stop)."""

    la: int
    lb: int
    by_first: Tensor
    by_second: Tensor
    rows: dict


class FactorSlot(Record):
    """One factor of an order-4 group's invariants: its channels and degree l, the rows of Q^l
    that hold the coupling of the other two, and the sign of that block's orientation."""

    channels: Tensor
    l: int
    rows: Tensor
    sign: float


class Order5Factors(Record):
    """An order-5 group's halves (12) and (34): their rows in Q^L and their signs."""

    L: int
    rows12: Tensor
    sign12: float
    rows34: Tensor
    sign34: float


class DensePick(Record):
    """Where one dense product's invariants go among those of orders 4 and 5, and their flat index in it."""

    positions: Tensor
    flat: Tensor


class FactorsOfDegree(Record):
    """The factor derivatives of one angular degree l (the evaluation's `_factor_derivatives`,
    concatenated): the order that sorts them by channel, their invariants in that order, and each
    channel's range (channel, start, stop)."""

    l: int
    order: Tensor
    invariants: Tensor
    ranges: list


class HarmonicGradient(Record):
    """G_l (2l − 1, 2l + 1, 3): ∇(r^l Y_lm) = Σ_m' G_l[m', m] r^(l−1) Y_(l−1)m' in e3nn's real basis.
    The relation is exact (the gradient of a harmonic polynomial of degree l is harmonic of
    degree l − 1); G_l is solved from it by least squares on 50 points of the sphere, and
    checked there."""

    l: int
    gradient: Tensor

    def __init__(self, l: int):
        k = torch.arange(50, dtype=torch.float64) + 0.5  # a Fibonacci lattice
        z, phi = 1.0 - 2.0 * k / 50, torch.pi * (1.0 + 5.0**0.5) * k
        points = torch.stack([torch.sqrt(1 - z * z) * torch.cos(phi), torch.sqrt(1 - z * z) * torch.sin(phi), z], dim=1)
        x = points.clone().requires_grad_(True)
        with torch.enable_grad():
            solid = o3().spherical_harmonics(l, x, normalize=False, normalization="integral")
            rows = [torch.autograd.grad(solid[:, m].sum(), x, retain_graph=True)[0] for m in range(2 * l + 1)]
        target = torch.stack(rows, dim=1).flatten(1)  # (points, (2l + 1) · 3)
        lower = o3().spherical_harmonics(l - 1, points, normalize=False, normalization="integral")
        gradient = torch.linalg.lstsq(lower, target).solution
        if not torch.allclose(lower @ gradient, target, rtol=0.0, atol=1e-12):
            raise RuntimeError(f"ace: the gradient of the degree-{l} spherical harmonics is not of degree {l - 1}")
        super().__init__(l=l, gradient=gradient.view(2 * l - 1, 2 * l + 1, 3))


def order4_groups(basis: AceBasis, n_channels: int) -> list[Order4Group]:
    """Sorted channel triples ((k1, l1) ≤ (k2, l2) ≤ (k3, l3)) with |l1 − l2| ≤ l3 ≤ l1 + l2 and
    l1 + l2 + l3 even, l ≤ l_max_4, n < n_radial_4 and Σ (n + l) ≤ degree_4, grouped by (l1, l2, l3)."""
    items = [(k, l) for k in range(n_channels) if k % basis.n_radial < basis.n_radial_4 for l in range(basis.l_max_4 + 1)]
    degree = [k % basis.n_radial + l for k, l in items]
    groups: dict[tuple[int, int, int], list[tuple[int, int, int]]] = {}
    for a, b, c in itertools.combinations_with_replacement(range(len(items)), 3):
        (k1, l1), (k2, l2), (k3, l3) = items[a], items[b], items[c]
        if basis.degree_4 is not None and degree[a] + degree[b] + degree[c] > basis.degree_4:
            continue
        if abs(l1 - l2) <= l3 <= l1 + l2 and (l1 + l2 + l3) % 2 == 0:
            groups.setdefault((l1, l2, l3), []).append((k1, k2, k3))
    out = []
    for ls, triples in sorted(groups.items()):
        k1, k2, k3 = torch.tensor(triples).T
        out.append(Order4Group(ls=ls, k1=k1, k2=k2, k3=k3, coupling=o3().wigner_3j(*ls, dtype=torch.float64)))
    return out


def order5_groups(basis: AceBasis, n_channels: int) -> list[Order5Group]:
    """Sorted quadruples of (channel, l) coupled as (12)_L (34)_L over every intermediate L (one
    coupling scheme spans the invariants of its four factors), grouped by (l1, l2, l3, l4, L); a
    pair of identical factors has no part odd under their exchange."""
    items = [(k, l) for k in range(n_channels) if k % basis.n_radial < basis.n_radial_5 for l in range(basis.l_max_5 + 1)]
    degree = [k % basis.n_radial + l for k, l in items]
    groups: dict[tuple[int, ...], list[tuple[int, int, int, int]]] = {}
    for a, b, c, d in itertools.combinations_with_replacement(range(len(items)), 4):
        (k1, l1), (k2, l2), (k3, l3), (k4, l4) = items[a], items[b], items[c], items[d]
        if (l1 + l2 + l3 + l4) % 2 or (basis.degree_5 is not None and degree[a] + degree[b] + degree[c] + degree[d] > basis.degree_5):
            continue
        for L in range(max(abs(l1 - l2), abs(l3 - l4)), min(l1 + l2, l3 + l4) + 1):
            if (a == b and (l1 + l2 + L) % 2) or (c == d and (l3 + l4 + L) % 2):
                continue
            groups.setdefault((l1, l2, l3, l4, L), []).append((k1, k2, k3, k4))
    out = []
    for ls, quadruples in sorted(groups.items()):
        k1, k2, k3, k4 = torch.tensor(quadruples).T
        l1, l2, l3, l4, L = ls
        left, right = (o3().wigner_3j(L, x, y, dtype=torch.float64) for x, y in ((l1, l2), (l3, l4)))
        out.append(Order5Group(ls=ls, k1=k1, k2=k2, k3=k3, k4=k4, left=left, right=right))
    return out


def _oriented(lx: int, ly: int, kx: Tensor, ky: Tensor, L: int, size: int, where: Tensor):
    """The block (la ≤ lb) a coupling of (kx, lx) with (ky, ly) to L reads, the flat pair index in
    that block's channel layout, and the sign: a block (la > lb) is the transposed one times
    (−1)^(L + la + lb), the exchange symmetry of the 3j symbols."""
    if lx <= ly:
        return (lx, ly), where[kx] * size + where[ky], 1.0
    return (ly, lx), where[ky] * size + where[kx], float((-1) ** (L + lx + ly))


def _coupling_blocks(needed: dict[tuple[int, int], set[int]]) -> list[CouplingBlock]:
    """Per block (la, lb): its Ls' 3j symbols stacked (S = Σ (2L + 1) rows), as the two matrices
    that contract them with one factor, and each L's rows."""
    blocks = []
    for (la, lb), ls in sorted(needed.items()):
        rows, at = {}, 0
        for L in sorted(ls):
            rows[L] = (at, at + 2 * L + 1)
            at += 2 * L + 1
        symbols = torch.cat([o3().wigner_3j(L, la, lb, dtype=torch.float64) for L in sorted(ls)])
        by_first, by_second = symbols.permute(1, 0, 2).reshape(2 * la + 1, -1), symbols.permute(2, 0, 1).reshape(2 * lb + 1, -1)
        blocks.append(CouplingBlock(la=la, lb=lb, by_first=by_first, by_second=by_second, rows=rows))
    return blocks


class ContractionPlan(torch.nn.Module):
    """Every invariant of a basis for `n_elements` elements, as index and coefficient tensors:

    order 2: the channels k = (z, n) (`order2`); order 3: per l in `order3_ls` the channel pairs
    k1 ≤ k2 (`order3_first`, `order3_second`; `order3_flat` their index in the flat (K, K)
    product A_l A_lᵀ); orders 4 and 5: their groups (`order4`, `order5`) and the dense layout
    (`_plan_dense_products`); the embedding's Chebyshev coefficients. `n_features` counts them,
    in this order."""

    def __init__(self, basis: AceBasis, n_elements: int):
        super().__init__()
        self.n_radial, self.n_channels = basis.n_radial, n_elements * basis.n_radial
        self.register_buffer("order2", torch.arange(self.n_channels), persistent=False)
        first, second = torch.triu_indices(self.n_channels, self.n_channels)
        self.order3_ls = list(range(basis.l_max + 1)) if basis.body_order >= 3 else []
        self.register_buffer("order3_first", first, persistent=False)
        self.register_buffer("order3_second", second, persistent=False)
        self.register_buffer("order3_flat", first * self.n_channels + second, persistent=False)
        self.order4 = torch.nn.ModuleList(order4_groups(basis, self.n_channels) if basis.body_order >= 4 else [])
        self.order5 = torch.nn.ModuleList(order5_groups(basis, self.n_channels) if basis.body_order >= 5 else [])
        self.register_buffer("embedding_coefficients", embedding_coefficients(basis.embedding, basis.n_radial), persistent=False)
        self.n_features = (
            self.n_channels
            + len(self.order3_ls) * len(first)
            + sum(len(g.k1) for g in self.order4)
            + sum(len(g.k1) for g in self.order5)
            + n_elements * basis.embedding
        )
        self._plan_dense_products(basis)

    def block(self, la: int, lb: int) -> CouplingBlock:
        return self.blocks[self.block_index[(la, lb)]]

    def _plan_dense_products(self, basis: AceBasis) -> None:
        """The plan of the couplings, invariants and density gradients of orders 4 and 5. Both are
        built from couplings of two factor blocks, P^L_(k k') = Σ W(L, la, lb) A_k,la A_k',lb,
        computed once per (la ≤ lb) over every pair of the channels order 4 uses and for every L
        the invariants need. The couplings of one L from all blocks are stacked, Q^L (NB K² rows,
        2L + 1); then all invariants of one order and one L come from one batched matrix product
        over every channel combination, whose entries the invariants hold are picked out by a
        flat index and a sign (`dense_picks`, `dense_sign`):
          order 4, l1 = L:    B = Σ_m A_k1,Lm Q^L_(k2 k3),m          dense (K4, NB K4²)
          order 5, (12)_L (34)_L:  B = Σ_M Q^L_(k1 k2),M Q^L_(k3 k4),M   dense (NB K5², NB K5²)
        with K4 (K5) the channels of order 4 (5). Their gradients are the transposed products."""
        channel = torch.arange(self.n_channels)
        channels4, channels5 = channel[channel % basis.n_radial < basis.n_radial_4], channel[channel % basis.n_radial < basis.n_radial_5]
        self.register_buffer("channels4", channels4, persistent=False)
        self.register_buffer("channels5", channels5, persistent=False)
        position4 = torch.full((self.n_channels,), -1, dtype=torch.long)
        position4[channels4] = torch.arange(len(channels4))
        position5 = torch.full((self.n_channels,), -1, dtype=torch.long)
        position5[channels5] = torch.arange(len(channels5))
        self.register_buffer(
            "channel_pairs5", (position4[channels5][:, None] * len(channels4) + position4[channels5][None, :]).reshape(-1), persistent=False
        )
        slots4, slots5, needed = self._factor_slots(position4, position5)
        self.blocks = torch.nn.ModuleList(_coupling_blocks(needed))
        self.block_index = {(b.la, b.lb): n for n, b in enumerate(self.blocks)}
        self.stack4 = {L: sorted(blocks) for L, blocks in sorted(_blocks_by_L(s[2] for group in slots4 for s in group).items())}
        self.stack5 = {
            L: sorted(blocks) for L, blocks in sorted(_blocks_by_L((L, b) for L, halves in slots5 for b, _, _ in halves).items())
        }
        self._place_invariants(slots4, slots5, len(channels4), len(channels5), position4)

    def _factor_slots(self, position4: Tensor, position5: Tensor):
        """Which block (la, lb) each product reads, at which L: per order-4 group its three factors
        (channels, l, (L, block), flat pair, sign), per order-5 group L and its two halves; and the
        Ls each block serves."""
        k4, k5 = int((position4 >= 0).sum()), int((position5 >= 0).sum())
        slots4, slots5, needed = [], [], {}
        for g in self.order4:
            (l1, l2, l3), k1, k2, k3 = g.ls, g.k1, g.k2, g.k3
            # the derivative by each factor is the coupling of the other two to its degree
            # (W^l1l2l3 changes by (−1)^(l1 + l2 + l3) = 1 under an exchange of two columns);
            # the first of the three gives the invariant itself, with its factor A_k1,l1
            slots = []
            for (kx, lx), (ky, ly), (kz, lz) in (
                ((k1, l1), (k2, l2), (k3, l3)),
                ((k2, l2), (k1, l1), (k3, l3)),
                ((k3, l3), (k1, l1), (k2, l2)),
            ):
                block, pair, sign = _oriented(ly, lz, ky, kz, lx, k4, position4)
                slots.append((kx, lx, (lx, block), pair, sign))
                needed.setdefault(block, set()).add(lx)
            slots4.append(slots)
        for g in self.order5:
            (l1, l2, l3, l4, L), k1, k2, k3, k4_ = g.ls, g.k1, g.k2, g.k3, g.k4
            halves = (_oriented(l1, l2, k1, k2, L, k5, position5), _oriented(l3, l4, k3, k4_, L, k5, position5))
            for block, _, _ in halves:
                needed.setdefault(block, set()).add(L)
            slots5.append((L, halves))
        return slots4, slots5, needed

    def _place_invariants(self, slots4, slots5, k4: int, k5: int, position4: Tensor) -> None:
        """The sizes of the dense products (order 4 by L, then 5 by L), each invariant's flat index
        in their concatenation and its sign, the order-4 factors' and order-5 halves' rows in the
        stacks, and per product the positions of its invariants (each product is read, and its
        adjoint written, on its own)."""
        self.dense_sizes = [k4 * len(b) * k4 * k4 for b in self.stack4.values()] + [(len(b) * k5 * k5) ** 2 for b in self.stack5.values()]
        starts = [0, *itertools.accumulate(self.dense_sizes)]
        offset4, offset5 = dict(zip(self.stack4, starts)), dict(zip(self.stack5, starts[len(self.stack4) :]))
        index, sign = [], []
        factors4 = []
        for slots in slots4:
            derivatives = [
                FactorSlot(channels=kx, l=lx, rows=self.stack4[lx].index(block) * k4 * k4 + pair, sign=s)
                for kx, lx, (_, block), pair, s in slots
            ]
            first = derivatives[0]
            index.append(offset4[first.l] + position4[first.channels] * len(self.stack4[first.l]) * k4 * k4 + first.rows)
            sign.append(torch.full((len(first.rows),), first.sign, dtype=torch.float64))
            factors4.append(torch.nn.ModuleList(derivatives))
        self.factors4 = torch.nn.ModuleList(factors4)
        factors5 = []
        for L, ((block12, pair12, s12), (block34, pair34, s34)) in slots5:
            size = len(self.stack5[L]) * k5 * k5
            rows12, rows34 = (self.stack5[L].index(block) * k5 * k5 + pair for block, pair in ((block12, pair12), (block34, pair34)))
            index.append(offset5[L] + rows12 * size + rows34)
            sign.append(torch.full((len(rows12),), s12 * s34, dtype=torch.float64))
            factors5.append(Order5Factors(L=L, rows12=rows12, sign12=s12, rows34=rows34, sign34=s34))
        self.factors5 = torch.nn.ModuleList(factors5)
        flat = torch.cat(index) if index else torch.zeros(0, dtype=torch.long)
        self.register_buffer("dense_sign", torch.cat(sign) if sign else torch.zeros(0, dtype=torch.float64), persistent=False)
        picks = []
        for start, stop in itertools.pairwise(starts):
            positions = torch.nonzero((flat >= start) & (flat < stop)).squeeze(1)
            picks.append(DensePick(positions=positions, flat=flat[positions] - start))
        self.dense_picks = torch.nn.ModuleList(picks)

    def feature_degrees(self, embedding: int) -> Tensor:
        """d (n_features,): the polynomial degree Σ (n + l) of each invariant over its factors
        (radial index n, angular degree l), in the order of the features."""
        n = torch.arange(self.n_channels) % self.n_radial
        parts = [n]
        parts += [n[self.order3_first] + n[self.order3_second] + 2 * l for l in self.order3_ls]
        parts += [n[g.k1] + n[g.k2] + n[g.k3] + sum(g.ls) for g in self.order4]
        parts += [n[g.k1] + n[g.k2] + n[g.k3] + n[g.k4] + sum(g.ls[:4]) for g in self.order5]
        parts.append(torch.arange(embedding).repeat(self.n_channels // self.n_radial))  # F(ρ_zk): the degree k of its density
        return torch.cat(parts)


def _blocks_by_L(pairs) -> dict[int, set]:
    """{L: the blocks coupled to L} from (L, block) pairs."""
    out: dict[int, set] = {}
    for L, block in pairs:
        out.setdefault(L, set()).add(block)
    return out
