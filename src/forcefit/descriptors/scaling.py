"""Feature scaling fitted on the training set, with n2p2's modes.

Every mode is an affine map G_s = S_min + factor · (G − ref) per element and feature:

    none         factor 1,                        ref 0,     S_min 0
    center       factor 1,                        ref mean,  S_min 0
    scale        factor (S_max−S_min)/(max−min),  ref min
    scalecenter  factor (S_max−S_min)/(max−min),  ref mean
    scalesigma   factor (S_max−S_min)/σ,          ref mean

The training minimum and maximum are kept to count extrapolation at prediction time.
"""

from __future__ import annotations

import torch
from torch import Tensor

SCALING_MODES = ("none", "center", "scale", "scalecenter", "scalesigma")


def element_rows(table: Tensor, species: Tensor) -> Tensor:
    """Each atom's row of a per-element table (n_elements, …): table[species] (n_atoms, …), or
    for atoms of one element its row alone (1, …), which broadcasts without a copy per atom."""
    if species.numel() and bool((species == species[0]).all()):
        return table[species[:1]]
    return table[species]


class FeatureScaling(torch.nn.Module):
    def __init__(self, n_elements: int, n_features: int, mode: str = "scalecenter", s_min: float = -1.0, s_max: float = 1.0):
        super().__init__()
        if mode not in SCALING_MODES:
            raise ValueError(f"unknown scaling mode {mode!r}; choose one of {SCALING_MODES}")
        self.mode, self.s_min, self.s_max = mode, float(s_min), float(s_max)
        shape = (n_elements, n_features)
        for name in ("minimum", "maximum", "mean", "sigma"):
            self.register_buffer(name, torch.zeros(shape, dtype=torch.float64))
        self.register_buffer("factor", torch.ones(shape, dtype=torch.float64))
        self.register_buffer("reference", torch.zeros(shape, dtype=torch.float64))
        self.register_buffer("offset", torch.zeros(shape, dtype=torch.float64))

    def set_statistics(self, minimum: Tensor, maximum: Tensor, mean: Tensor, sigma: Tensor) -> None:
        """Install per-element statistics (n_elements, n_features) and derive the map."""
        for name, value in (("minimum", minimum), ("maximum", maximum), ("mean", mean), ("sigma", sigma)):
            getattr(self, name).copy_(value)
        span = self.s_max - self.s_min
        ones = torch.ones_like(self.factor)
        if self.mode in ("scale", "scalecenter"):
            width = maximum - minimum
            factor = torch.where(width > 0, span / width.clamp(min=1e-300), ones)
        elif self.mode == "scalesigma":
            factor = torch.where(sigma > 0, span / sigma.clamp(min=1e-300), ones)
        else:
            factor = ones
        self.factor.copy_(factor)
        self.reference.copy_(minimum if self.mode == "scale" else (torch.zeros_like(mean) if self.mode == "none" else mean))
        self.offset.fill_(self.s_min if self.mode in ("scale", "scalecenter", "scalesigma") else 0.0)

    def fit(self, chunks, n_features_per_element: list[int]) -> None:
        """Statistics over training atoms, from an iterable of (features (n_atoms, n_features),
        species (n_atoms,)) chunks: min, max, mean and σ per element and feature, the mean
        and σ combined chunk by chunk (Chan, Golub & LeVeque's pairwise update)."""
        shape = tuple(self.factor.shape)
        count = [0] * shape[0]
        low, high = torch.full(shape, torch.inf, dtype=torch.float64), torch.full(shape, -torch.inf, dtype=torch.float64)
        mean, m2 = torch.zeros(shape, dtype=torch.float64), torch.zeros(shape, dtype=torch.float64)
        for features, species in chunks:
            for e, n in enumerate(n_features_per_element):
                rows = features[species == e, :n].double().cpu()
                k = rows.shape[0]
                if k == 0:
                    continue
                chunk_mean = rows.mean(dim=0)
                chunk_m2 = ((rows - chunk_mean) ** 2).sum(dim=0)
                if count[e] == 0:
                    mean[e, :n], m2[e, :n] = chunk_mean, chunk_m2
                else:
                    total = count[e] + k
                    delta = chunk_mean - mean[e, :n]
                    mean[e, :n] += delta * (k / total)
                    m2[e, :n] += chunk_m2 + delta**2 * (count[e] * k / total)
                count[e] += k
                low[e, :n] = torch.minimum(low[e, :n], rows.min(dim=0).values)
                high[e, :n] = torch.maximum(high[e, :n], rows.max(dim=0).values)
        seen = torch.tensor([c > 0 for c in count])[:, None].expand(shape)
        n_atoms = torch.tensor(count, dtype=torch.float64).clamp(min=1)[:, None]
        stats = [torch.where(seen, x, torch.zeros_like(x)) for x in (low, high, mean, (m2 / n_atoms).sqrt())]
        self.set_statistics(*stats)

    def forward(self, features: Tensor, species: Tensor) -> Tensor:
        dtype = features.dtype
        return self.offset[species].to(dtype) + self.factor[species].to(dtype) * (features - self.reference[species].to(dtype))

    def outside_range(self, features: Tensor, species: Tensor, tolerance: float = 1e-10) -> Tensor:
        """(n_atoms, n_features) bool: feature outside the training [min, max]."""
        margin = tolerance * (1.0 + (self.maximum - self.minimum).abs())
        low, high = self.minimum - margin, self.maximum + margin  # per element (n_elements, n_features)
        return (features < element_rows(low, species)) | (features > element_rows(high, species))

    def get_config(self) -> dict:
        return {"mode": self.mode, "s_min": self.s_min, "s_max": self.s_max}
