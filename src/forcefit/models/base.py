"""What every forcefit model is: a map from a batch to per-atom energies.

A model returns energies only; forces and stress come from `forcefit.models.forces`.
Each model also carries the loss's trainable energy offset b (`energy_offset`):
the reference data are matched as E_ref ≈ E_model − b, so b absorbs the arbitrary
zero of the reference method and predictions are reported on its scale.
"""
from __future__ import annotations

import torch
from ase.data import atomic_numbers, chemical_symbols
from torch import Tensor


class Potential(torch.nn.Module):
    """Base class: elements, cutoffs, species lookup and the energy offset b."""

    kind = "potential"
    uses_descriptors = False  # True: energies come from features via atom_energies_from_features

    def __init__(self, elements: list[str], cutoff: float, angular_cutoff: float = 0.0):
        super().__init__()
        unknown = [e for e in elements if e not in atomic_numbers]
        if unknown:
            raise ValueError(f"unknown element symbol(s) {unknown}")
        self.elements = list(elements)
        self.cutoff = float(cutoff)
        self.angular_cutoff = float(angular_cutoff)
        table = torch.full((len(chemical_symbols),), -1, dtype=torch.long)
        for n, e in enumerate(self.elements):
            table[atomic_numbers[e]] = n
        self.register_buffer("species_table", table, persistent=False)
        self.energy_offset = torch.nn.Parameter(torch.zeros((), dtype=torch.float64))

    def species(self, numbers: Tensor) -> Tensor:
        """Element index of each atom; an element the model does not know is an error."""
        species = self.species_table[numbers]
        if (species < 0).any():
            missing = sorted({chemical_symbols[int(z)] for z in numbers[species < 0]})
            raise ValueError(f"this model knows elements {self.elements}; the structure contains {missing}")
        return species

    def atom_energies(self, batch, vectors: Tensor) -> Tensor:
        """(n_atoms,) eV, from pair vectors (n_pairs, 3) Å. Subclasses implement."""
        raise NotImplementedError

    def get_config(self) -> dict:
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict) -> "Potential":
        return cls(**config)


class DescriptorPotential(Potential):
    """A model whose atom energies are a function of symmetry functions G_i, scaled
    with training-set statistics: the shared plumbing of the BPNN and the linear model."""

    uses_descriptors = True

    def __init__(self, descriptor, scaling: dict | None = None):
        from forcefit.descriptors.scaling import FeatureScaling
        from forcefit.descriptors.symmetry_functions import SymmetryFunctions

        if isinstance(descriptor, dict):
            descriptor = SymmetryFunctions.from_config(descriptor)
        super().__init__(descriptor.elements, descriptor.cutoff, descriptor.angular_cutoff)
        self.descriptor = descriptor
        self.scaling = FeatureScaling(len(self.elements), descriptor.n_features, **(scaling or {}))

    def features(self, batch, vectors: Tensor) -> Tensor:
        """Unscaled symmetry functions (n_atoms, n_features)."""
        species = self.species(batch.numbers)
        return self.descriptor(species, vectors, batch.pair_i, batch.pair_j, batch.triplet_p, batch.triplet_q)

    def atom_energies(self, batch, vectors: Tensor) -> Tensor:
        return self.atom_energies_from_features(self.features(batch, vectors), self.species(batch.numbers))

    def atom_energies_from_features(self, features: Tensor, species: Tensor) -> Tensor:
        raise NotImplementedError

    def cache_descriptors(self, graphs: list) -> None:
        from forcefit.descriptors.cache import cache_descriptors

        cache_descriptors(self, graphs)

    def fit_scaling(self, graphs: list):
        """Fit the feature scaling on training graphs; returns their batch and species."""
        from forcefit.data import collate

        batch = collate(graphs)
        species = self.species(batch.numbers)
        features = batch.features
        if features is None:
            with torch.no_grad():
                features = self.features(batch, batch.vectors().to(self.energy_offset.dtype))
        self.scaling.fit(features, species, self.descriptor.n_features_per_element)
        return batch, species

    def outside_range(self, features: Tensor, species: Tensor) -> Tensor:
        """(n_atoms, n_features) bool: symmetry functions outside the training range."""
        return self.scaling.outside_range(features, species)
