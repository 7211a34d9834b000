"""What LAMMPS's `pair_style forcefit` (interop/lammps_plugin) calls, inside LAMMPS's process.

The pair style owns atoms, ghost atoms and neighbour lists; for each block of centre atoms
a ≤ i < b it passes the atomic number of every local and ghost atom and the pairs i–j within
the cutoff with r_ij = x_j − x_i, as flat buffers it owns. `PairStyle.compute` evaluates the
model on exactly those pairs — a `Batch` whose ghost atoms are neighbours only (`centres`),
through the same path as forcefit's calculator (models/forces.py) — and writes back each
centre's energy E_i, g_ij = ∂E/∂r_ij per pair, and, for a committee, every member's E_i and
g_ij; for a descriptor model also how many of each centre's descriptors lie outside the
training range and its extrapolation grade γ (models/grade.py). Units: eV, Å (LAMMPS `units metal`).
"""

from __future__ import annotations

import numpy as np
import torch
from ase.data import atomic_numbers

from forcefit.data import Batch
from forcefit.memory import memory_budget_gb
from forcefit.models.forces import energies_and_pair_gradients
from forcefit.models.saving import load_model


def _array(buffer, dtype, shape=(-1,)) -> np.ndarray:
    """A NumPy view of a buffer the pair style owns (written in place for outputs)."""
    return np.frombuffer(buffer, dtype=dtype).reshape(shape)


class PairStyle:
    """One `pair_style forcefit MODEL` with its `pair_coeff * * El1 El2 …` (NULL: a type
    left to another pair style)."""

    def __init__(self, path: str, elements: list[str], threads: int = 1, trust_code: bool = False):
        self.model = load_model(path, trust_code=bool(trust_code))
        self.model.eval()
        unknown = [e for e in elements if e != "NULL" and e not in self.model.elements]
        if unknown:
            raise ValueError(f"pair_coeff names {unknown}, which the model {path} does not know; it knows {self.model.elements}")
        if all(e == "NULL" for e in elements):
            raise ValueError("pair_coeff maps every atom type to NULL")
        self.numbers = [0 if e == "NULL" else atomic_numbers[e] for e in elements]  # per LAMMPS type 1…N
        self.cutoff = float(self.model.cutoff)
        self.members = len(self.model.members) if self.model.has_members else 0
        self.has_grade = int(self.model.has_grade)
        # atoms of types given to other pair styles (Z = 0) are in no pair: any element of the model stands in
        self._stand_in = atomic_numbers[self.model.elements[0]]
        self._dtype = self.model.energy_offset.dtype
        torch.set_num_threads(threads)

    def _batch(self, numbers, pair_i, pair_j, vectors, centres: tuple[int, int]) -> Batch:
        z = torch.from_numpy(_array(numbers, np.int64))
        z = torch.where(z > 0, z, self._stand_in)
        n_all, n_pairs = z.shape[0], len(pair_i) // 8
        angular = float(self.model.angular_cutoff)
        return Batch(
            numbers=z,
            positions=torch.zeros((n_all, 3), dtype=self._dtype),  # r_p = 0 − 0 + shift_p: the pair vectors as given
            cell=torch.zeros((1, 3, 3), dtype=self._dtype),
            pbc=torch.zeros((1, 3), dtype=torch.bool),
            structure_index=torch.zeros(n_all, dtype=torch.long),
            n_atoms=torch.tensor([centres[1] - centres[0]]),
            pair_i=torch.from_numpy(_array(pair_i, np.int64)),
            pair_j=torch.from_numpy(_array(pair_j, np.int64)),
            pair_shift=torch.from_numpy(_array(vectors, np.float64, (n_pairs, 3))).to(self._dtype),
            pair_structure=torch.zeros(n_pairs, dtype=torch.long),
            triplet_p=torch.zeros(0, dtype=torch.long),
            triplet_q=torch.zeros(0, dtype=torch.long),
            ref_energy=torch.full((1,), float("nan"), dtype=self._dtype),
            ref_forces=torch.zeros((0, 3), dtype=self._dtype),
            ref_stress=torch.full((1, 3, 3), float("nan"), dtype=self._dtype),
            weight=torch.ones(1, dtype=self._dtype),
            deferred_angular_cutoff=angular if angular > 0 else None,
            centres=centres,
        )

    def compute(self, block: tuple, results: tuple) -> None:
        """For `block` = (numbers, pair_i, pair_j, vectors, a, b): the elements of every local
        and ghost atom, the pairs centred on atoms a ≤ i < b and their vectors. Fills `results` =
        (energies (b − a,), gradients (n_pairs, 3), for a committee member_energies (M, b − a)
        and member_gradients (M, n_pairs, 3), outside (b − a,) descriptors out of the training
        range per centre (0 for pair potentials), gamma (b − a,) the extrapolation grade (0 for a
        model without one))."""
        numbers, pair_i, pair_j, vectors, a, b = block
        energies, gradients, member_energies, member_gradients, outside, gamma = results
        batch = self._batch(numbers, pair_i, pair_j, vectors, (a, b))
        model, n_pairs = self.model, batch.pair_i.shape[0]
        vectors = batch.vectors()
        with torch.enable_grad():
            if self.members:
                atom_energies, member_g, features = model.member_energies_and_pair_gradients(batch, vectors)
                _array(member_energies, np.float64, (self.members, b - a))[:] = atom_energies.detach().numpy()
                _array(member_gradients, np.float64, (self.members, n_pairs, 3))[:] = torch.stack(member_g).detach().numpy()
                atom_energies, pair_gradients = atom_energies.mean(dim=0), torch.stack(member_g).mean(dim=0)
            else:
                atom_energies, pair_gradients, features, _ = energies_and_pair_gradients(
                    model, batch, vectors, True, False, memory_budget_gb()
                )
        _array(energies, np.float64)[:] = atom_energies.detach().numpy()
        _array(gradients, np.float64, (n_pairs, 3))[:] = pair_gradients.detach().numpy()
        if features is not None:
            species = model.species(batch.numbers[a:b])
            _array(outside, np.float64)[:] = model.outside_range(features, species).sum(dim=1).numpy()
            if self.has_grade:
                distances = torch.linalg.vector_norm(vectors.detach(), dim=1)
                all_species = model.species(batch.numbers)
                close = model.close_contact_grade(all_species, batch.pair_i, batch.pair_j, distances, (a, b))
                _array(gamma, np.float64)[:] = model.extrapolation_grade(features, species, close).numpy()
            else:
                _array(gamma, np.float64)[:] = 0.0
        else:
            _array(outside, np.float64)[:] = 0.0
            _array(gamma, np.float64)[:] = 0.0
