"""What every forcefit model is: a map from a batch to per-atom energies.

A model returns energies only; forces and stress come from `forcefit.models.forces`.

The reference data's arbitrary zero (a DFT code's total energies sit hundreds of eV per
atom below zero) is carried per element: each kind has an energy per element e_Z in its
atom energies, started by least squares on composition without an intercept
(`composition_fit`) and trained with the rest, so the model's extensive Σ_i E_i is on the
reference's scale for one composition, many or one element. Each model also carries the
loss's global offset b (`energy_offset`), matched as E_ref ≈ Σ_i E_i − b: it stays 0 and
frozen unless training opts in (`training.energy_offset: global`, `use_global_offset`), for
sets that mix reference zeros; then the reference's scale is Σ_i E_i − b.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from ase.data import atomic_numbers, chemical_symbols
from pydantic import Field, model_validator
from torch import Tensor

from forcefit.data import Batch, collate, make_graph
from forcefit.descriptors.ace import AtomicClusterExpansion
from forcefit.descriptors.ace_basis import AceBasis
from forcefit.descriptors.registry import descriptor_from_config
from forcefit.descriptors.scaling import FeatureScaling
from forcefit.descriptors.symmetry_functions import SymmetryFunction, SymmetryFunctions, generate_symmetry_functions
from forcefit.memory import memory_budget_gb
from forcefit.models.forces import _gradient, descriptor_blocks
from forcefit.models.grade import ExtrapolationGrade
from forcefit.models.repulsion import CoreRepulsion
from forcefit.settings import ModelSettings

STATISTICS_CHUNK = 32  # structures per step of the scaling statistics (a batch-sized piece of a streamed set)


def composition_fit(counts: Tensor, energies: Tensor, intercept: bool = False) -> tuple[Tensor, float]:
    """Energy per element e (n_elements,) and intercept c with E ≈ c + counts @ e by least
    squares, minimum-norm e where compositions cannot tell elements apart (one molecule).
    Without `intercept` (the default) c = 0 and e carries the reference's zero; with it the
    fit is made on centred data and e = 0 for compositions that never vary."""
    counts, energies = counts.double(), energies.double()
    if energies.numel() == 0:
        return torch.zeros(counts.shape[1], dtype=torch.float64), 0.0
    if not intercept:
        return torch.linalg.lstsq(counts, energies[:, None], driver="gelsd").solution[:, 0], 0.0
    mean_counts, mean_energy = counts.mean(dim=0), energies.mean()
    solution = torch.linalg.lstsq(counts - mean_counts, (energies - mean_energy)[:, None], driver="gelsd").solution[:, 0]
    return solution, float(mean_energy - mean_counts @ solution)


def composition_counts(model: Potential, batch: Batch) -> Tensor:
    """(n_structures, n_elements) atoms of each element in each structure of `batch`."""
    species = model.species(batch.numbers)
    counts = torch.zeros((batch.n_structures, len(model.elements)), dtype=torch.float64)
    return counts.index_put_((batch.structure_index, species), torch.ones_like(species, dtype=torch.float64), accumulate=True)


def shortest_distances(model: Potential, structures) -> Tensor:
    """(n_elements, n_elements) the shortest distance of each element pair within the model's
    cutoff over `structures`, Å (inf where none), from their neighbour lists, STATISTICS_CHUNK
    structures at a time."""
    n = len(model.elements)
    shortest = torch.full((n * n,), float("inf"), dtype=torch.float64)
    for start in range(0, len(structures), STATISTICS_CHUNK):
        batch = collate([make_graph(s, model.cutoff, 0.0, False) for s in structures[start : start + STATISTICS_CHUNK]])
        species = model.species(batch.numbers)
        r = torch.linalg.vector_norm(batch.vectors().double(), dim=1)
        shortest.scatter_reduce_(0, species[batch.pair_i] * n + species[batch.pair_j], r, reduce="amin")
    return shortest.view(n, n)


class Potential(torch.nn.Module):
    """Base class: elements, cutoffs, species lookup and the energy offset b."""

    kind = "potential"
    # What the model can do, asked by the code that uses it (never by type checks):
    uses_descriptors = False  # energies come from features (atom_energies_from_features); training caches them
    closed_form = False  # fit_ridge(graphs, weights, ridge) finds the loss's exact minimum (linear models)
    has_members = False  # a committee: member_predictions(batch) gives each member's prediction
    has_grade = False  # an extrapolation grade: extrapolation_grade(features, species) gives γ per atom (models/grade.py)

    def __init__(self, elements: list[str], cutoff: float, angular_cutoff: float = 0.0, core_repulsion: bool = False):
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
        self.energy_offset = torch.nn.Parameter(torch.zeros((), dtype=torch.float64), requires_grad=False)
        self.global_offset = False
        # the ZBL repulsion the model hands over to below the data (models/repulsion.py), or None
        self.core_repulsion = CoreRepulsion(self.elements) if core_repulsion else None

    def set_short_range(self, shortest: Tensor) -> None:
        """Hand over to physics where the data begin, `shortest` (n_elements, n_elements) the
        training data's shortest distance of each element pair, Å (inf: a pair they never
        hold; `shortest_distances`): the core repulsion is switched off there, and descriptors
        fade pairs closer than that (descriptors/cutoff.py). Set before descriptors are computed."""
        if self.core_repulsion is not None:
            self.core_repulsion.set_from_shortest_distances(shortest)

    def start_energy_zero(self, element_energies: Tensor, counts: Tensor, energies: Tensor) -> None:
        """Set `element_energies` (and b with a global offset) to the least-squares fit of the
        labelled `energies` (n_structures,) on composition `counts` (n_structures, n_elements)."""
        labelled = torch.isfinite(energies)
        e, intercept = composition_fit(counts[labelled], energies[labelled], intercept=self.global_offset)
        with torch.no_grad():
            element_energies.copy_(e)
            self.energy_offset.fill_(-intercept)

    def use_global_offset(self, on: bool) -> None:
        """Fit the loss's global offset b beside the element energies (on), or keep b = 0 (off,
        the default): set before `initialise`."""
        self.global_offset = bool(on)
        with torch.no_grad():
            self.energy_offset.zero_()
        self.energy_offset.requires_grad_(self.global_offset)

    # the `model` keys of a run config this kind reads (forcefit/config.py), None: not built from a config
    Settings: type[ModelSettings] | None = None

    @classmethod
    def from_settings(cls, m: ModelSettings, elements: list[str]) -> Potential:
        """This kind from the `model` section of a run config (its `Settings`)."""
        raise ValueError(f"model.kind {cls.kind!r} cannot be built from a config section")

    default_core_repulsion = False  # what model.core_repulsion: auto means for this kind

    @classmethod
    def core_repulsion_from_config(cls, m: ModelSettings) -> bool:
        """Does model.core_repulsion (auto | zbl | none) ask for the ZBL prior?"""
        return cls.default_core_repulsion if m.core_repulsion == "auto" else m.core_repulsion == "zbl"

    def graph(self, structure, triplets: bool = True) -> Batch:
        """The structure's neighbour graph (pairs and triplets) within this model's cutoffs;
        `triplets=False` leaves the triplets to be built per chunk at prediction."""
        return make_graph(structure, self.cutoff, self.angular_cutoff, triplets)

    def summary(self) -> str:
        """One line a person reads: kind, elements, size, cutoff."""
        return (
            f"model: {self.kind}, elements {self.elements}, {sum(p.numel() for p in self.parameters())} parameters, cutoff {self.cutoff} Å"
        )

    def attach_grade(self, state: dict, prefix: str = "") -> None:
        """Before loading `state`: make room for the extrapolation grade it holds (descriptor models)."""

    def check_grade(self, source: str) -> None:
        """After loading: refuse a damaged active set (descriptor models)."""

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

    def compiled_network(self):
        """The model as its descriptor's compiled engine can evaluate it whole (E_i and ∂E_i/∂G_i
        per atom inside the engine), or None: then `energies_and_weights` between two passes."""
        return None

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


class DescriptorSettings(ModelSettings):
    """The `model` keys of the kinds built on a descriptor (bpnn, linear): which descriptor, its
    settings, and how its features are scaled."""

    descriptor: Literal["symmetry_functions", "ace"] = Field(
        "symmetry_functions", description="symmetry_functions | ace (body-ordered invariants, descriptors/ace.py)"
    )
    r_min: float = Field(0.8, description="Å: the shortest distance the generated functions (and ACE's radial basis) resolve")
    cutoff_type: str = Field(
        "tanh", description="symmetry functions' cutoff function: hard, cos, tanhu, tanh, exp, poly1–poly4 (n2p2's; descriptors/cutoff.py)"
    )
    cutoff_alpha: float = Field(0.0, description="n2p2's inner cutoff fraction α: the cutoff function is 1 below α r_c")
    n_radial: int = Field(
        8, ge=0, description="generated radial symmetry functions per centre and neighbour element (Gaussians on [r_min, cutoff))"
    )
    n_angular: int = Field(4, ge=0, description="generated angular radial windows per neighbour-element pair, each with λ = ±1 and every ζ")
    angular_kind: Literal["wide", "narrow"] = Field("wide", description="wide (G5, n2p2 type 9) | narrow (G4, type 3)")
    zetas: list[float] = Field([1.0, 4.0], description="angular exponents ζ of the generated functions")
    angular_grid: Literal["centred", "shifted"] = Field(
        "centred", description="centred (r_s = 0, nested widths) | shifted (r_s on a grid, by neighbour shell)"
    )
    symmetry_functions: list[dict] | None = Field(None, description="an explicit list of symmetry functions instead of the generator")
    ace: AceBasis | None = Field(None, description="descriptor: ace — its basis (the table `model.ace` below); default: every default")
    scaling: str = Field(
        "scalecenter", description="descriptor scaling: none | center | scale | scalecenter | scalesigma (descriptors/scaling.py)"
    )

    @model_validator(mode="after")
    def _descriptor(self) -> DescriptorSettings:
        if self.descriptor == "ace":
            ignored = sorted(self.model_fields_set & SYMMETRY_FUNCTION_KEYS)
            if ignored:
                raise ValueError(
                    f"{', '.join(f'model.{k}' for k in ignored)} not used by descriptor: ace (its settings go under model.ace)"
                )
        elif self.ace is not None:
            raise ValueError("model.ace is read only with model.descriptor: ace")
        if not self.symmetry_functions and not 0 <= self.r_min < self.cutoff:
            raise ValueError(f"model.r_min: {self.r_min} Å; expected 0 ≤ r_min < model.cutoff ({self.cutoff} Å)")
        return self


# the keys of the symmetry functions alone
SYMMETRY_FUNCTION_KEYS = {
    "cutoff_type",
    "cutoff_alpha",
    "n_radial",
    "n_angular",
    "angular_kind",
    "zetas",
    "angular_grid",
    "symmetry_functions",
}


class DescriptorPotential(Potential):
    """A model whose atom energies are a function of symmetry functions G_i, scaled
    with training-set statistics: the shared plumbing of the BPNN and the linear model."""

    uses_descriptors = True
    default_core_repulsion = True  # polynomials and networks are unconstrained where the data stop
    Settings = DescriptorSettings

    @staticmethod
    def descriptor_from_settings(m: DescriptorSettings, elements: list[str]):
        """The descriptor a config asks for: body-ordered invariants (`descriptor: ace`), or
        symmetry functions from an explicit list or the generator."""
        if m.descriptor == "ace":
            return AtomicClusterExpansion(elements, m.cutoff, m.ace or AceBasis(), r_min=m.r_min)
        if m.symmetry_functions:
            functions = [SymmetryFunction(**f) for f in m.symmetry_functions]
        else:
            functions = generate_symmetry_functions(
                elements, m.cutoff, m.n_radial, m.n_angular, m.r_min, m.angular_kind, tuple(m.zetas), m.angular_grid
            )
        return SymmetryFunctions(elements, functions, m.cutoff_type, m.cutoff_alpha)

    def __init__(self, descriptor, scaling: dict | None = None, core_repulsion: bool = False):
        if isinstance(descriptor, dict):
            descriptor = descriptor_from_config(descriptor)
        super().__init__(descriptor.elements, descriptor.cutoff, descriptor.angular_cutoff, core_repulsion)
        self.descriptor = descriptor
        self.scaling = FeatureScaling(len(self.elements), descriptor.n_features, **(scaling or {}))

    def set_short_range(self, shortest: Tensor) -> None:
        """With a core repulsion, also the descriptors' inner cutoff: the two halves of one
        hand-over (`core_repulsion: none` keeps both off, e.g. for a BPNN n2p2 must run exactly)."""
        super().set_short_range(shortest)
        if self.core_repulsion is not None:
            self.descriptor.set_inner_radii(shortest)

    def features(self, batch, vectors: Tensor) -> Tensor:
        """Unscaled symmetry functions (n_atoms, n_features)."""
        species = self.species(batch.numbers)
        return self.descriptor(species, vectors, batch.pair_i, batch.pair_j, batch.triplet_p, batch.triplet_q)

    def atom_energies(self, batch, vectors: Tensor) -> Tensor:
        return self.atom_energies_from_features(self.features(batch, vectors), self.species(batch.numbers))

    def atom_energies_from_features(self, features: Tensor, species: Tensor) -> Tensor:
        raise NotImplementedError

    def summary(self) -> str:
        return super().summary() + ", " + self.descriptor.describe()

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

    def _feature_chunks(self, graphs):
        """(batch, features, species) of training graphs (a list, or a streamed sequence: read
        once, STATISTICS_CHUNK structures at a time); cached descriptors where the graphs hold them."""
        for start in range(0, len(graphs), STATISTICS_CHUNK):
            batch = collate(list(graphs[start : start + STATISTICS_CHUNK]))
            features = batch.features
            if features is None:  # descriptors alone, by the descriptor's fast path: no Jacobian
                vectors = batch.vectors().to(self.energy_offset.dtype)
                with torch.no_grad():
                    features = torch.cat([G for *_, G, _ in descriptor_blocks(self, batch, vectors, False, memory_budget_gb())])
            yield batch, features, self.species(batch.numbers)

    def fit_scaling(self, graphs) -> tuple[Tensor, Tensor, float]:
        """Fit the feature scaling on training graphs. Returns what the initial energy model
        needs from the same pass: element counts (n_structures, n_elements), reference
        energies (n_structures,) and the RMS of the reference force components."""
        counts, energies, force_sums = [], [], torch.zeros(2, dtype=torch.float64)

        def chunks():
            for batch, features, species in self._feature_chunks(graphs):
                counts.append(composition_counts(self, batch))
                energies.append(batch.ref_energy.double())
                forces = batch.ref_forces[torch.isfinite(batch.ref_forces)].double()
                force_sums.add_(torch.tensor([float(forces.pow(2).sum()), forces.numel()], dtype=torch.float64))
                yield features, species

        self.scaling.fit(chunks(), self.descriptor.n_features_per_element)
        rms = float((force_sums[0] / force_sums[1]).sqrt()) if force_sums[1] > 0 else 0.0
        return torch.cat(counts), torch.cat(energies), rms

    # ------------------------------------------------------------ extrapolation grade (models/grade.py)

    def input_map(self) -> tuple[Tensor, Tensor]:
        """(slope, intercept) (n_elements, F): what the model's energy reads of an atom's
        descriptors G is slope ⊙ G + intercept (the scaled features)."""
        s = self.scaling
        return s.factor, s.offset - s.factor * s.reference

    def design_rows(self, features: Tensor, species: Tensor) -> list[Tensor]:
        """Per element: the atoms' design rows [x̃, 1] (n_Z × (F_Z + 1)), x̃ = slope ⊙ G + intercept."""
        slope, intercept = (t.detach().double() for t in self.input_map())
        features, species = features.detach().cpu().double(), species.cpu()
        rows = []
        for z, n in enumerate(self.descriptor.n_features_per_element):
            block = features[species == z, :n] * slope[z, :n] + intercept[z, :n]
            rows.append(torch.cat([block, torch.ones_like(block[:, :1])], dim=1))
        return rows

    def fit_grade(self, graphs) -> None:
        """Choose the active set of the extrapolation grade from the training graphs."""
        parts = [[] for _ in self.elements]
        for _, features, species in self._feature_chunks(graphs):
            for z, block in enumerate(self.design_rows(features, species)):
                parts[z].append(block)
        self.grade = ExtrapolationGrade.fit([torch.cat(p) for p in parts])

    def extrapolation_grade(self, features: Tensor, species: Tensor, close: Tensor | None = None) -> Tensor:
        """γ per atom (n_atoms,) (models/grade.py) of the atoms whose descriptors are `features`;
        with `close` (`close_contact_grade`), the larger of the two. The model must have an
        active set (`has_grade`)."""
        slope, intercept = (t.detach() for t in self.input_map())
        gamma = self.grade(features.detach().cpu(), species.cpu(), slope, intercept)
        return gamma if close is None else torch.maximum(gamma, close.to(gamma))

    def close_contact_grade(self, species: Tensor, pair_i: Tensor, pair_j: Tensor, distances: Tensor, centres: tuple[int, int]) -> Tensor:
        """Per centre atom a ≤ i < b: (r_d / r)³ of its closest pair relative to the training data's
        shortest distance r_d of that element pair (0 without an inner cutoff). Pairs closer than
        the data are what the descriptors' inner switch hides from the grade (and hands to the
        core repulsion): the atom sits in a sphere (r_d / r)³ times smaller than any training
        atom's. ≤ 1 on every training structure."""
        first, last = centres
        radius = self.descriptor.pair_inner_radii(species, pair_i, pair_j).to(distances)
        ratio = torch.where(radius > 0, (radius / distances.clamp(min=1e-12)) ** 3, torch.zeros_like(distances))
        return distances.new_zeros(last - first).scatter_reduce(0, pair_i - first, ratio, "amax", include_self=True)

    @property
    def has_grade(self) -> bool:
        return getattr(self, "grade", None) is not None

    def attach_grade(self, state: dict, prefix: str = "") -> None:
        grade = ExtrapolationGrade.from_state(state, prefix + "grade.")
        if grade is not None:
            self.grade = grade

    def check_grade(self, source: str) -> None:
        if self.has_grade:
            self.grade.check(source)

    def outside_range(self, features: Tensor, species: Tensor) -> Tensor:
        """(n_atoms, n_features) bool: symmetry functions outside the training range."""
        return self.scaling.outside_range(features, species)
