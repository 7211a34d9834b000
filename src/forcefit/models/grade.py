"""The extrapolation grade γ of an atom: how far its environment lies outside the training
environments, in the sense of D-optimal design (as linear ACE codes grade extrapolation).

Each atom of element Z has a design row d = [x̃, 1]: its scaled descriptors x̃ (what a linear
model multiplies by its coefficients; for a network, what its first layer reads) and the
constant that carries the element's energy. From the training atoms of Z:

- P_Z (D × r): the r ≤ MAX_RANK leading principal directions of their rows (eigenvectors of
  Σ d dᵀ), so that z = Pᵀd are coordinates in the space the data span;
- an active set: r training atoms chosen by MaxVol (Goreinov et al. 2010) so that the r × r
  matrix A of their coordinates has (locally) maximal |det A|: every training atom's z is a
  combination c = z A⁻¹ of them with all |c_k| ≤ 1 + TOLERANCE;
- s_Z: the largest part of a training row outside those directions, |d|² − |z|² (at least
  FLOOR² |d|², so that round-off is never graded).

    γ = max( max_k |(z A⁻¹)_k| ,  √((|d|² − |z|²) / s_Z) )

γ ≤ 1 (+ TOLERANCE) for every training environment and exactly 1 for the active set's own;
γ > 1 means the environment needs a coefficient beyond any training environment's (it lies
outside the hull MaxVol keeps) or has a component the data never had. γ depends only on
invariant descriptors, so it is invariant under rotations, translations and permutations.
Cost per atom: one D × r and one r × r product.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import torch
from torch import Tensor

# leading directions kept per element: bounds the cost (2 D r flops per atom; linear ACE Si, D = 1764: ≈ 7 % of an evaluation)
MAX_RANK = 64
TOLERANCE = 0.01  # MaxVol stops when no training coefficient exceeds 1 + TOLERANCE
FLOOR = 1e-3  # the smallest off-span part graded, relative to |d|


def maxvol(coordinates: Tensor, tolerance: float = TOLERANCE) -> Tensor:
    """Indices of r rows of `coordinates` (n × r, rank r) whose r × r block has locally maximal
    |det|: every row is a combination of them with coefficients ≤ 1 + tolerance in size."""
    n, r = coordinates.shape
    _, _, pivots = scipy.linalg.qr(coordinates.T.numpy(), mode="economic", pivoting=True)  # a good start
    rows = torch.from_numpy(np.ascontiguousarray(pivots[:r]))
    coefficients = torch.linalg.solve(coordinates[rows].T, coordinates.T).T  # (n, r): row = c · active rows
    for _ in range(100 * r):
        flat = int(coefficients.abs().argmax())
        i, k = divmod(flat, r)
        pivot = coefficients[i, k]
        if pivot.abs() <= 1 + tolerance:
            break
        rows[k] = i  # swap row i in for active row k: |det| grows by |pivot|
        change = coefficients[i].clone()
        change[k] -= 1.0
        coefficients -= torch.outer(coefficients[:, k], change) / pivot
    else:  # each swap grows |det|, so this is not reached in practice; never return a set that breaks the bound
        raise RuntimeError(f"MaxVol did not reach coefficients ≤ 1 + {tolerance} within {100 * r} swaps")
    return rows


class ExtrapolationGrade(torch.nn.Module):
    """Per element Z: `projection_Z` P (D_Z × r_Z), `active_Z` A (r_Z × r_Z, the active set's
    coordinates), `inverse_Z` A⁻¹, and `residual_scale` s (n_elements,)."""

    def __init__(self, shapes: list[tuple[int, int]]):
        super().__init__()
        self.shapes = [tuple(s) for s in shapes]
        for z, (d, r) in enumerate(self.shapes):
            self.register_buffer(f"projection_{z}", torch.zeros((d, r), dtype=torch.float64))
            self.register_buffer(f"active_{z}", torch.zeros((r, r), dtype=torch.float64))
            self.register_buffer(f"inverse_{z}", torch.zeros((r, r), dtype=torch.float64))
        self.register_buffer("residual_scale", torch.ones(len(self.shapes), dtype=torch.float64))

    @classmethod
    def from_state(cls, state: dict, prefix: str) -> ExtrapolationGrade | None:
        """An empty grade shaped like the one `state` holds under `prefix` (None if it holds none)."""
        shapes = []
        while f"{prefix}projection_{len(shapes)}" in state:
            shapes.append(tuple(state[f"{prefix}projection_{len(shapes)}"].shape))
        return cls(shapes) if shapes else None

    @classmethod
    def fit(cls, rows: list[Tensor], tolerance: float = TOLERANCE, max_rank: int = MAX_RANK) -> ExtrapolationGrade:
        """From each element's training design rows (n_Z × D_Z), float64."""
        parts = []
        for z, d in enumerate(rows):
            if d.shape[0] == 0:
                raise ValueError(f"no training atom of element {z}: the extrapolation grade needs some of each element")
            values, vectors = torch.linalg.eigh(d.T @ d)
            keep = int((values > values[-1] * 1e-12).sum().clamp(max=max_rank))
            projection = vectors[:, -keep:].flip(1).contiguous()
            coordinates = d @ projection
            active = coordinates[maxvol(coordinates, tolerance)]
            outside = (d * d).sum(1) - (coordinates * coordinates).sum(1)
            scale = max(float(outside.max()), FLOOR**2 * float((d * d).sum(1).max()))
            parts.append((projection, active, torch.linalg.inv(active), scale))
        grade = cls([tuple(p.shape) for p, *_ in parts])
        with torch.no_grad():
            for z, (projection, active, inverse, scale) in enumerate(parts):
                getattr(grade, f"projection_{z}").copy_(projection)
                getattr(grade, f"active_{z}").copy_(active)
                getattr(grade, f"inverse_{z}").copy_(inverse)
                grade.residual_scale[z] = scale
        return grade

    def _terms(self, features: Tensor, species: Tensor, slope: Tensor, intercept: Tensor):
        """Per element present: (z, atom indices or None for all, coefficients z A⁻¹ (n_Z × r_Z),
        off-span part / s_Z (n_Z,)), from raw descriptors whose design rows are
        [slope ⊙ G + intercept, 1]. The affine map is folded into the projection (coordinates
        G (slope ⊙ P) + const; |d|² from G² and G): no scaled copy of the descriptors, one
        n × F × r product per element."""
        features = features.to(torch.float64)
        for z, (d, _) in enumerate(self.shapes):
            n = d - 1
            every = bool((species == z).all())
            atoms = None if every else torch.nonzero(species == z).squeeze(1)
            if not every and atoms.numel() == 0:
                continue
            x = features[:, :n] if every else features[atoms, :n]
            a, b = slope[z, :n].to(torch.float64), intercept[z, :n].to(torch.float64)
            projection = getattr(self, f"projection_{z}")
            coordinates = x @ (a[:, None] * projection[:n]) + (b @ projection[:n] + projection[n])
            squared = (x * x) @ (a * a) + x @ (2 * a * b) + float((b * b).sum() + 1.0)
            outside = (squared - (coordinates * coordinates).sum(1)).clamp(min=0.0) / self.residual_scale[z]
            yield z, atoms, coordinates @ getattr(self, f"inverse_{z}"), outside

    def forward(self, features: Tensor, species: Tensor, slope: Tensor, intercept: Tensor) -> Tensor:
        """γ (n_atoms,) from raw descriptors (n_atoms, F) whose design rows are
        [slope ⊙ G + intercept, 1] per element (slope, intercept: (n_elements, F))."""
        gamma = torch.zeros(features.shape[0], dtype=torch.float64)
        for _, atoms, coefficients, outside in self._terms(features, species, slope, intercept):
            values = torch.maximum(coefficients.abs().amax(dim=1), outside.sqrt())
            if atoms is None:
                return values
            gamma[atoms] = values
        return gamma

    def coefficients(self, features: Tensor, species: Tensor, slope: Tensor, intercept: Tensor) -> list[tuple[int, Tensor, Tensor]]:
        """Per element present: (z, atom indices, each atom's coefficients on the active set
        (n_Z × r_Z)): what a batch of new environments adds, for D-optimal selection."""
        every = torch.arange(features.shape[0])
        return [(z, every if atoms is None else atoms, c) for z, atoms, c, _ in self._terms(features, species, slope, intercept)]

    def check(self, source: str) -> None:
        """Refuse an active set that is not what `fit` writes: orthonormal projections, A⁻¹ the
        inverse of A, a positive residual scale."""
        for z in range(len(self.shapes)):
            p, a, inverse = (getattr(self, f"{name}_{z}") for name in ("projection", "active", "inverse"))
            eye = torch.eye(a.shape[0], dtype=a.dtype)
            problems = []
            if not torch.allclose(p.T @ p, eye, atol=1e-8):
                problems.append("its projection is not orthonormal")
            if not torch.allclose(a @ inverse, eye, atol=1e-6):
                problems.append("its inverse active matrix is not the inverse of the active set")
            if problems:
                raise ValueError(f"{source}: the extrapolation grade's active set of element {z} is damaged: {'; '.join(problems)}")
        if not bool((self.residual_scale > 0).all()):
            raise ValueError(f"{source}: the extrapolation grade's residual scale is not positive")
