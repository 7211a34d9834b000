"""Descriptor families by name (`model.descriptor` in a config, `kind` in a model file's
descriptor section): each family's module registers its class (`@register`); the
`Descriptor` protocol says what a family provides. A new family is its own module plus one
import line in `descriptors/__init__.py`."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from forcefit.registry import Registry

DESCRIPTORS = Registry("descriptor")
register = DESCRIPTORS.register  # class decorator: `cls.kind` names the family


def descriptor_from_config(config: dict):
    """The descriptor a model file's `get_config()` dict describes (files without a `kind`
    hold symmetry functions, the first family)."""
    kind = config.get("kind", "symmetry_functions")
    if kind not in DESCRIPTORS:
        raise ValueError(f"unknown descriptor kind {kind!r}; known: {sorted(DESCRIPTORS)}")
    return DESCRIPTORS[kind].from_config(config)


@runtime_checkable
class Descriptor(Protocol):
    """What a descriptor family provides to the models (models/base.py): invariant features
    G_i per atom from pair vectors, by the torch formulas (`forward`, autograd's reference and
    the path on other devices) and by the family's fast CPU path (`evaluate`,
    `features_and_pair_gradients`), the inner cutoff of the short-range hand-over, and its
    config."""

    kind: str
    elements: list[str]
    cutoff: float
    angular_cutoff: float  # 0 when the family needs no triplets
    n_features: int
    n_features_per_element: list[int]
    cheap_jacobian: bool  # whether keeping ∂G/∂r for several sets of weights beats one gradient pass each

    def forward(
        self, species: Tensor, vectors: Tensor, pair_i: Tensor, pair_j: Tensor, triplet_p: Tensor, triplet_q: Tensor, centres=None
    ) -> Tensor: ...

    def evaluate(self, species: Tensor, vectors: Tensor, pair_i: Tensor, pair_j: Tensor, centres: tuple[int, int], jacobian: bool): ...

    def features_and_pair_gradients(
        self, species: Tensor, vectors: Tensor, pair_i: Tensor, pair_j: Tensor, centres: tuple[int, int], weigh
    ): ...

    def bytes_per_pair(self, jacobian: bool) -> float: ...

    def set_inner_radii(self, radii: Tensor) -> None: ...

    def pair_inner_radii(self, species: Tensor, pair_i: Tensor, pair_j: Tensor) -> Tensor: ...

    def describe(self) -> str: ...

    def get_config(self) -> dict: ...

    def to(self, *args, **kwargs) -> torch.nn.Module: ...
