"""A committee of models (Schran et al., JCP 153, 104105 (2020)): the prediction is
the members' mean; their spread estimates the error.

    E = (1/M) Σ_m E_m,   σ_E = std_m E_m,   σ_F,i = sqrt((1/M) Σ_m |F_m,i − F̄_i|²)

Members of a descriptor model (BPNN, linear) must share one descriptor, so the
symmetry functions and their Jacobian are evaluated once for the whole committee.
"""

from __future__ import annotations

import torch
from torch import Tensor

from forcefit.memory import memory_budget_gb
from forcefit.models.base import Potential
from forcefit.models.forces import assemble, core_repulsion, descriptor_blocks, descriptor_passes
from forcefit.models.registry import MODELS, register


@register
class Committee(Potential):
    kind = "committee"
    has_members = True

    def __init__(self, members: list):

        members = [MODELS[m["kind"]].from_config(m["config"]) if isinstance(m, dict) else m for m in members]
        if len(members) < 2:
            raise ValueError("a committee needs at least two members")
        first = members[0]
        if any(m.kind != first.kind or m.elements != first.elements for m in members):
            raise ValueError("committee members must be models of one kind over the same elements")
        super().__init__(first.elements, max(m.cutoff for m in members), max(m.angular_cutoff for m in members))
        self.members = torch.nn.ModuleList(members)
        self.uses_descriptors = first.uses_descriptors
        if self.uses_descriptors:
            if any(m.descriptor.get_config() != first.descriptor.get_config() for m in members):
                raise ValueError("committee members must share one symmetry-function set")
            self.descriptor = first.descriptor
        repulsions = [m.core_repulsion for m in members]
        if any(
            (r is None) != (repulsions[0] is None) or (r is not None and not torch.equal(r.outer, repulsions[0].outer)) for r in repulsions
        ):
            raise ValueError("committee members must share one core repulsion (all trained on the same data, or none)")
        self.core_repulsion = first.core_repulsion  # one prior for the mean and every member
        self.energy_offset.requires_grad_(False)
        self.sync_offset()

    def sync_offset(self) -> None:
        """b of the committee is the members' mean b (the mean energy is Σ E − b̄)."""
        with torch.no_grad():
            self.energy_offset.copy_(torch.stack([m.energy_offset.detach() for m in self.members]).mean())

    def features(self, batch, vectors: Tensor) -> Tensor:
        return self.members[0].features(batch, vectors)

    def atom_energies(self, batch, vectors: Tensor) -> Tensor:
        if self.uses_descriptors:
            return self.atom_energies_from_features(self.features(batch, vectors), self.species(batch.numbers))
        return torch.stack([m.atom_energies(batch, vectors) for m in self.members]).mean(dim=0)

    def atom_energies_from_features(self, features: Tensor, species: Tensor) -> Tensor:
        return torch.stack([m.atom_energies_from_features(features, species) for m in self.members]).mean(dim=0)

    def member_predictions(self, batch, stress: bool = False) -> dict:
        """Every member's prediction from one evaluation of the descriptors:
        energy (M, n_structures) the members' Σ E_i, reference_energy (M, n_structures)
        the same minus each member's b, atom_energies (M, n_atoms),
        forces (M, n_atoms, 3), with `stress` stress (M, n_structures, 3, 3), and the shared
        features (n_atoms, n_features) or None."""
        batch = batch.to(self.energy_offset.dtype, self.energy_offset.device)
        vectors = batch.vectors()
        atom_energies, gradients, features = self.member_energies_and_pair_gradients(batch, vectors)
        forces, stresses = zip(*(assemble(batch, vectors, g, stress=stress) for g in gradients))
        first, last = batch.centre_range()
        energy = atom_energies.new_zeros((len(self.members), batch.n_structures)).index_add(
            1, batch.structure_index[first:last], atom_energies
        )
        offsets = torch.stack([m.energy_offset.detach() for m in self.members])
        return {
            "energy": energy,
            "reference_energy": energy - offsets[:, None],
            "stress": torch.stack(stresses) if stress else None,
            "atom_energies": atom_energies,
            "forces": torch.stack(forces),
            "features": features,
        }

    def member_energies_and_pair_gradients(self, batch, vectors: Tensor) -> tuple[Tensor, list[Tensor], Tensor | None]:
        """Each member's centre-atom energies (M, b − a) (`batch.centre_range`), g_p = ∂E/∂r_p
        (a list of M (n_pairs, 3)) and the shared features, the core repulsion included."""
        if self.uses_descriptors and vectors.device.type == "cpu":
            atom_energies, gradients, features = self._engine_members(batch, vectors)
        else:
            atom_energies, gradients, features = self._autograd_members(batch, vectors)
        if self.core_repulsion is not None:  # the members' shared prior
            first, last = batch.centre_range()
            repulsion, repulsion_gradients = core_repulsion(self, batch, vectors.detach())
            atom_energies = atom_energies + repulsion[first:last]
            gradients = [g + repulsion_gradients for g in gradients]
        return atom_energies, gradients, features

    def _engine_members(self, batch, vectors: Tensor):
        """(M, n_atoms) atom energies, each member's pair gradients and the features, from one
        evaluation of the descriptor per block of centre atoms (forces.py). Where its Jacobian
        is cheap (symmetry functions: the compiled engine) it is computed once and contracted
        with each member's ∂E/∂G; otherwise (ACE: the Jacobian would be n_features × pairs) the
        descriptor's own pass takes every member's weights (`features_and_pair_gradients`
        given a list of weights)."""
        species = self.species(batch.numbers)
        energies, gradients, features = [[] for _ in self.members], [[] for _ in self.members], []
        if self.descriptor.cheap_jacobian:
            for a, b, p0, p1, block_features, jacobian in descriptor_blocks(self, batch, vectors, True, memory_budget_gb()):
                for m, member in enumerate(self.members):
                    atom, d_features = member.energies_and_weights(block_features, species[a:b])
                    energies[m].append(atom)
                    gradients[m].append(torch.einsum("pf,pfc->pc", d_features.expand_as(block_features)[batch.pair_i[p0:p1] - a], jacobian))
                features.append(block_features)
        else:
            for _, _, block_features, member_energies, member_gradients in descriptor_passes(
                self, batch, vectors, self._member_weights, memory_budget_gb()
            ):
                for m in range(len(self.members)):
                    energies[m].append(member_energies[m])
                    gradients[m].append(member_gradients[m])
                features.append(block_features)
        return torch.stack([torch.cat(e) for e in energies]), [torch.cat(g) for g in gradients], torch.cat(features)

    def _member_weights(self, features: Tensor, species: Tensor) -> tuple[list, list]:
        """Every member's atom energies and ∂E/∂G of one block of features (`descriptor_passes`)."""
        parts = [member.energies_and_weights(features, species) for member in self.members]
        return [e for e, _ in parts], [w for _, w in parts]

    def _autograd_members(self, batch, vectors: Tensor):
        """As `_engine_members`, by autograd through the model (pair models; other devices)."""
        species = self.species(batch.numbers)
        first, last = batch.centre_range()
        vectors = vectors.detach().requires_grad_(True)
        energies, gradients = [], []
        with torch.enable_grad():
            features = self.features(batch, vectors) if self.uses_descriptors else None
            for member in self.members:
                atom = (
                    member.atom_energies_from_features(features, species)
                    if self.uses_descriptors
                    else member.atom_energies(batch, vectors)[first:last]
                )
                (gradient,) = torch.autograd.grad(atom.sum(), vectors, retain_graph=True)
                energies.append(atom.detach())
                gradients.append(gradient)
        return torch.stack(energies), gradients, None if features is None else features.detach()

    @property
    def has_grade(self) -> bool:
        return self.uses_descriptors and all(m.has_grade for m in self.members)

    def extrapolation_grade(self, features: Tensor, species: Tensor, close: Tensor | None = None) -> Tensor:
        """γ per atom: the largest of the members' grades (each has its own active set)."""
        return torch.stack([m.extrapolation_grade(features, species, close) for m in self.members]).amax(dim=0)

    def close_contact_grade(self, species: Tensor, pair_i: Tensor, pair_j: Tensor, distances: Tensor, centres: tuple[int, int]) -> Tensor:
        return self.members[0].close_contact_grade(species, pair_i, pair_j, distances, centres)

    def attach_grade(self, state: dict, prefix: str = "") -> None:
        for k, member in enumerate(self.members):
            member.attach_grade(state, f"{prefix}members.{k}.")

    def check_grade(self, source: str) -> None:
        for member in self.members:
            member.check_grade(source)

    def outside_range(self, features: Tensor, species: Tensor) -> Tensor:
        """(n_atoms, n_features): outside the training range of any member."""
        return torch.stack([m.scaling.outside_range(features, species) for m in self.members]).any(dim=0)

    def get_config(self) -> dict:
        return {"members": [{"kind": m.kind, "config": m.get_config()} for m in self.members]}


def spread(energies: Tensor, forces: Tensor, reference_energies: Tensor | None = None) -> dict:
    """Committee statistics from member energies (M, S) and forces (M, N, 3): means and
    standard deviations. The energy spread is taken over `reference_energies` (each
    member's Σ E_i − b_m, what the data pin down) when given: the members' b differ by
    constants that carry no disagreement about the physics."""
    mean_forces = forces.mean(dim=0)
    return {
        "energy": energies.mean(dim=0),
        "energy_std": (energies if reference_energies is None else reference_energies).std(dim=0, unbiased=False),
        "forces": mean_forces,
        "forces_std": ((forces - mean_forces) ** 2).sum(dim=2).mean(dim=0).sqrt(),
    }
