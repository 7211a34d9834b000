"""What every forcefit model is: a map from a batch to per-atom energies.

A model returns energies only; forces and stress come from `forcefit.models.forces`.
Each model also carries the loss's trainable energy offset b (`energy_offset`):
the reference data are matched as E_ref ≈ E_model − b, so b absorbs the arbitrary
zero of the reference method and predictions are reported on its scale.
"""

from __future__ import annotations

import inspect

import numpy as np
import torch
from ase.data import atomic_numbers, chemical_symbols
from torch import Tensor

from forcefit.data import Batch, collate, make_graph
from forcefit.descriptors.ace import AtomicClusterExpansion
from forcefit.descriptors.scaling import FeatureScaling
from forcefit.descriptors.symmetry_functions import SymmetryFunction, SymmetryFunctions, generate_symmetry_functions
from forcefit.models.forces import MEMORY_GB, _gradient, descriptor_blocks

# the model keys of symmetry functions only, and the keys of model.ace (descriptors/ace.py)
SYMMETRY_FUNCTION_KEYS = (
    "cutoff_type",
    "cutoff_alpha",
    "n_radial",
    "n_angular",
    "angular_kind",
    "zetas",
    "angular_grid",
    "symmetry_functions",
)
# model.ace holds the descriptor's own settings; elements, cutoff and r_min come from model.*
ACE_KEYS = tuple(k for k in inspect.signature(AtomicClusterExpansion).parameters if k not in ("elements", "cutoff", "r_min"))
STATISTICS_CHUNK = 32  # structures per step of the scaling statistics (a batch-sized piece of a streamed set)


class Potential(torch.nn.Module):
    """Base class: elements, cutoffs, species lookup and the energy offset b."""

    kind = "potential"
    # What the model can do, asked by the code that uses it (never by type checks):
    uses_descriptors = False  # energies come from features (atom_energies_from_features); training caches them
    closed_form = False  # fit_ridge(graphs, weights, ridge) finds the loss's exact minimum (linear models)
    has_members = False  # a committee: member_predictions(batch) gives each member's prediction

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

    # ModelConfig keys this kind reads besides kind, elements, cutoff and dtype: any other key
    # set away from its default is a mistake (say, `hidden` for a pair potential) and refused.
    config_keys: tuple[str, ...] = ()

    @classmethod
    def from_model_config(cls, m, elements: list[str]) -> Potential:
        """Build this kind from the `model` section of a run config (a ModelConfig)."""
        cls.check_model_config(m)
        return cls._from_model_config(m, elements)

    @classmethod
    def _from_model_config(cls, m, elements: list[str]) -> Potential:
        raise ValueError(f"model.kind {cls.kind!r} cannot be built from a config section")

    @classmethod
    def check_model_config(cls, m) -> None:
        import dataclasses

        common = {"kind", "elements", "cutoff", "dtype"}
        unused = [
            f.name
            for f in dataclasses.fields(m)
            if f.name not in common
            and f.name not in cls.config_keys
            and getattr(m, f.name) != (f.default if f.default is not dataclasses.MISSING else f.default_factory())
        ]
        if unused:
            raise ValueError(
                f"model: {', '.join(f'model.{k}' for k in unused)} not used by kind {cls.kind!r} "
                f"(its keys: {', '.join(sorted(common | set(cls.config_keys)))})"
            )

    def graph(self, structure, triplets: bool = True) -> Batch:
        """The structure's neighbour graph (pairs and triplets) within this model's cutoffs;
        `triplets=False` leaves the triplets to be built per chunk at prediction."""
        return make_graph(structure, self.cutoff, self.angular_cutoff, triplets)

    def summary(self) -> str:
        """One line a person reads: kind, elements, size, cutoff."""
        return (
            f"model: {self.kind}, elements {self.elements}, {sum(p.numel() for p in self.parameters())} parameters, cutoff {self.cutoff} Å"
        )

    def species(self, numbers: Tensor) -> Tensor:
        """Element index of each atom; an element the model does not know is an error."""
        species = self.species_table[numbers]
        if (species < 0).any():
            missing = sorted({chemical_symbols[int(z)] for z in numbers[species < 0]})
            raise ValueError(f"this model knows elements {self.elements}; the structure contains {missing}")
        return species

    def atom_energies(self, batch: Batch, vectors: Tensor) -> Tensor:
        """(n_atoms,) eV, from pair vectors (n_pairs, 3) Å. Subclasses implement."""
        raise NotImplementedError

    def energies_and_weights(self, features: Tensor, species: Tensor) -> tuple[Tensor, Tensor]:
        """Atom energies of a block of features (n, F) and w = ∂E_i/∂G_i, the weights of the
        descriptor's gradient pass: (n, F), or (1, F) where every atom of the block has the
        same (descriptors take both). By autograd; a model that knows its derivative overrides it."""
        with torch.enable_grad():
            leaf = features.detach().requires_grad_(True)
            energies = self.atom_energies_from_features(leaf, species)
            return energies.detach(), _gradient(energies, leaf, create_graph=False)

    def get_config(self) -> dict:
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict) -> Potential:
        return cls(**config)


class DescriptorPotential(Potential):
    """A model whose atom energies are a function of symmetry functions G_i, scaled
    with training-set statistics: the shared plumbing of the BPNN and the linear model."""

    uses_descriptors = True
    config_keys = SYMMETRY_FUNCTION_KEYS + ("r_min", "scaling", "descriptor", "ace")

    @staticmethod
    def descriptor_from_model_config(m, elements: list[str]):
        """The descriptor a config asks for: body-ordered invariants (`descriptor: ace`), or
        symmetry functions from an explicit list or the generator."""
        if m.descriptor == "ace":
            defaults = type(m)(kind=m.kind)
            ignored = [k for k in SYMMETRY_FUNCTION_KEYS if getattr(m, k) != getattr(defaults, k)]
            if ignored:
                raise ValueError(
                    f"model: {', '.join(f'model.{k}' for k in ignored)} not used by descriptor: ace (its settings go under model.ace)"
                )
            options = dict(m.ace or {})
            unknown = sorted(set(options) - set(ACE_KEYS))
            if unknown:
                raise ValueError(f"model.ace: unknown key(s) {unknown}; valid keys are {sorted(ACE_KEYS)}")
            return AtomicClusterExpansion(elements, m.cutoff, r_min=m.r_min, **options)
        if m.symmetry_functions:
            functions = [SymmetryFunction(**f) for f in m.symmetry_functions]
        else:
            functions = generate_symmetry_functions(
                elements, m.cutoff, m.n_radial, m.n_angular, m.r_min, m.angular_kind, tuple(m.zetas), m.angular_grid
            )
        return SymmetryFunctions(elements, functions, m.cutoff_type, m.cutoff_alpha)

    def __init__(self, descriptor, scaling: dict | None = None):
        if isinstance(descriptor, dict):
            kind = AtomicClusterExpansion if descriptor.get("kind") == "ace" else SymmetryFunctions
            descriptor = kind.from_config(descriptor)
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

    def summary(self) -> str:
        if isinstance(self.descriptor, AtomicClusterExpansion):
            return super().summary() + ", " + self.descriptor.describe()
        return super().summary() + f", {self.descriptor.n_features_per_element} symmetry functions per element"

    def cache_descriptors(self, graphs: list) -> None:
        """Store features G (n_atoms, F) and ∂G_{i_p}/∂r_p (n_pairs, F, 3) on each graph, in
        one evaluation over `graphs` (the caller chooses how many at a time: memory)."""
        batch = collate(graphs).to(self.energy_offset.dtype)
        features, jacobian = self.descriptor.evaluate(
            self.species(batch.numbers), batch.vectors(), batch.pair_i, batch.pair_j, (0, batch.numbers.shape[0]), jacobian=True
        )
        atoms = np.cumsum([0] + [g.numbers.shape[0] for g in graphs])
        pairs = np.cumsum([0] + [g.pair_i.shape[0] for g in graphs])
        for n, g in enumerate(graphs):
            g.features = features[atoms[n] : atoms[n + 1]]
            g.jacobian = jacobian[pairs[n] : pairs[n + 1]]

    def fit_scaling(self, graphs) -> tuple[Tensor, Tensor, float]:
        """Fit the feature scaling on training graphs (a list, or a streamed sequence: read
        once, STATISTICS_CHUNK structures at a time). Returns what the initial energy
        model needs from the same pass: element counts (n_structures, n_elements),
        reference energies (n_structures,) and the RMS of the reference force components."""
        counts, energies, force_sums = [], [], torch.zeros(2, dtype=torch.float64)

        def chunks():
            for start in range(0, len(graphs), STATISTICS_CHUNK):
                batch = collate(list(graphs[start : start + STATISTICS_CHUNK]))
                species = self.species(batch.numbers)
                features = batch.features
                if features is None:  # descriptors alone, by the descriptor's fast path: no Jacobian
                    vectors = batch.vectors().to(self.energy_offset.dtype)
                    with torch.no_grad():
                        features = torch.cat([G for *_, G, _ in descriptor_blocks(self, batch, vectors, False, MEMORY_GB)])
                chunk_counts = torch.zeros((batch.n_structures, len(self.elements)), dtype=torch.float64)
                chunk_counts.index_put_((batch.structure_index, species), torch.ones_like(species, dtype=torch.float64), accumulate=True)
                counts.append(chunk_counts)
                energies.append(batch.ref_energy.double())
                forces = batch.ref_forces[torch.isfinite(batch.ref_forces)].double()
                force_sums.add_(torch.tensor([float(forces.pow(2).sum()), forces.numel()], dtype=torch.float64))
                yield features, species

        self.scaling.fit(chunks(), self.descriptor.n_features_per_element)
        rms = float((force_sums[0] / force_sums[1]).sqrt()) if force_sums[1] > 0 else 0.0
        return torch.cat(counts), torch.cat(energies), rms

    def outside_range(self, features: Tensor, species: Tensor) -> Tensor:
        """(n_atoms, n_features) bool: symmetry functions outside the training range."""
        return self.scaling.outside_range(features, species)
