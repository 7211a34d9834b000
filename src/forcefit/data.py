"""From structures to flat batches of tensors.

A `Graph` is one structure with its neighbour pairs and triplets as tensors,
computed once. A `Batch` concatenates graphs: atoms, pairs and triplets are
flattened and re-indexed, `structure_index` says which structure each atom is in
(no padding). Reference labels travel in the batch under `ref_*` names, never
mixed with predictions.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
import torch
from torch import Tensor

from forcefit.neighbors import build_neighbors
from forcefit.structures import Structure


@dataclass
class Batch:
    """Shapes: n_structures S, n_atoms N, n_pairs P, n_triplets T.

    numbers (N,), positions (N, 3) Å, cell (S, 3, 3) Å, structure_index (N,),
    n_atoms (S,), pair_i/pair_j (P,), pair_shift (P, 3) Å (shift @ cell),
    pair_structure (P,), triplet_p/triplet_q (T,) indices into the pairs,
    ref_energy (S,) eV (NaN when missing), ref_forces (N, 3) eV/Å (NaN when
    missing), ref_stress (S, 3, 3) eV/Å³, ASE sign (NaN when missing), weight (S,), and optionally cached descriptors: features (N, F) and
    jacobian (P, F, 3) = ∂G_{i_p}/∂r_p.
    """

    numbers: Tensor
    positions: Tensor
    cell: Tensor
    pbc: Tensor
    structure_index: Tensor
    n_atoms: Tensor
    pair_i: Tensor
    pair_j: Tensor
    pair_shift: Tensor
    pair_structure: Tensor
    triplet_p: Tensor
    triplet_q: Tensor
    ref_energy: Tensor
    ref_forces: Tensor
    ref_stress: Tensor
    weight: Tensor
    features: Tensor | None = None
    jacobian: Tensor | None = None
    deferred_angular_cutoff: float | None = None  # triplets not stored: build them per chunk of centres (Å)
    # atoms a ≤ i < b whose energies are computed (all when None); the others are neighbours only,
    # like an MD engine's ghost atoms (interop/lammps_bridge.py), and pairs are centred on these
    centres: tuple[int, int] | None = None

    def centre_range(self) -> tuple[int, int]:
        """(a, b): the atoms a ≤ i < b whose energies are computed."""
        return self.centres if self.centres is not None else (0, self.numbers.shape[0])

    @property
    def n_structures(self) -> int:
        return self.cell.shape[0]

    def vectors(self) -> Tensor:
        """Pair displacements r_p = x_j − x_i + shift, (n_pairs, 3) Å."""
        return self.positions[self.pair_j] - self.positions[self.pair_i] + self.pair_shift

    def to(self, dtype: torch.dtype | None = None, device: torch.device | str | None = None) -> Batch:
        """Floating-point fields in `dtype` (default: as they are), every tensor on `device`
        (default: where it is)."""
        changes = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Tensor):
                changes[f.name] = value.to(device=device, dtype=dtype if dtype is not None and value.is_floating_point() else value.dtype)
        return replace(self, **changes)


def make_graph(structure: Structure, cutoff: float, angular_cutoff: float, triplets: bool = True) -> Batch:
    """One structure as a batch of one, with its neighbour lists. With `triplets=False`
    the triplets are left to the consumer (built per chunk of centre atoms, so that a
    large system never holds all of them at once)."""
    nb = build_neighbors(structure, cutoff, angular_cutoff if triplets else None)
    cell = torch.from_numpy(structure.cell)
    shifts = torch.from_numpy(nb.shifts).double()
    n = structure.n_atoms
    nan = float("nan")
    return Batch(
        numbers=torch.from_numpy(structure.numbers),
        positions=torch.from_numpy(structure.positions),
        cell=cell[None],
        pbc=torch.from_numpy(structure.pbc)[None],
        structure_index=torch.zeros(n, dtype=torch.long),
        n_atoms=torch.tensor([n]),
        pair_i=torch.from_numpy(nb.pair_i),
        pair_j=torch.from_numpy(nb.pair_j),
        pair_shift=shifts @ cell,
        pair_structure=torch.zeros(len(nb.pair_i), dtype=torch.long),
        triplet_p=torch.from_numpy(nb.triplet_p),
        triplet_q=torch.from_numpy(nb.triplet_q),
        ref_energy=torch.tensor([structure.energy if structure.energy is not None else nan], dtype=torch.float64),
        ref_forces=torch.from_numpy(structure.forces) if structure.forces is not None else torch.full((n, 3), nan, dtype=torch.float64),
        ref_stress=torch.from_numpy(structure.stress)[None]
        if structure.stress is not None
        else torch.full((1, 3, 3), nan, dtype=torch.float64),
        weight=torch.tensor([structure.weight], dtype=torch.float64),
        deferred_angular_cutoff=None if triplets or angular_cutoff <= 0 else float(angular_cutoff),
    )


def collate(graphs: list[Batch]) -> Batch:
    """Concatenate batches, shifting atom, pair and structure indices."""
    if len(graphs) == 1:
        return graphs[0]
    atom_offsets = np.cumsum([0] + [g.numbers.shape[0] for g in graphs[:-1]])
    pair_offsets = np.cumsum([0] + [g.pair_i.shape[0] for g in graphs[:-1]])
    structure_offsets = np.cumsum([0] + [g.n_structures for g in graphs[:-1]])

    def cat(name, offsets=None):
        parts = [getattr(g, name) for g in graphs]
        if offsets is not None:
            parts = [p + int(o) for p, o in zip(parts, offsets)]
        return torch.cat(parts)

    if any(g.centres is not None for g in graphs):
        raise ValueError("graphs with neighbour-only atoms (centres set) are evaluated one at a time, not batched")
    has_cache = all(g.features is not None for g in graphs)
    deferred = {g.deferred_angular_cutoff for g in graphs}
    if len(deferred) > 1:
        raise ValueError("cannot batch graphs with and without stored triplets")
    return Batch(
        numbers=cat("numbers"),
        positions=cat("positions"),
        cell=cat("cell"),
        pbc=cat("pbc"),
        structure_index=cat("structure_index", structure_offsets),
        n_atoms=cat("n_atoms"),
        pair_i=cat("pair_i", atom_offsets),
        pair_j=cat("pair_j", atom_offsets),
        pair_shift=cat("pair_shift"),
        pair_structure=cat("pair_structure", structure_offsets),
        triplet_p=cat("triplet_p", pair_offsets),
        triplet_q=cat("triplet_q", pair_offsets),
        ref_energy=cat("ref_energy"),
        ref_forces=cat("ref_forces"),
        ref_stress=cat("ref_stress"),
        weight=cat("weight"),
        features=cat("features") if has_cache else None,
        jacobian=cat("jacobian") if has_cache and all(g.jacobian is not None for g in graphs) else None,
        deferred_angular_cutoff=deferred.pop(),
    )


def split_indices(n: int, fractions: tuple[float, float, float], seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random train/validation/test indices drawn with `seed`."""
    if abs(sum(fractions) - 1.0) > 1e-9 or min(fractions) < 0:
        raise ValueError(f"split fractions {fractions} must be non-negative and add up to 1")
    order = np.random.default_rng(seed).permutation(n)
    n_train = int(round(fractions[0] * n))
    n_val = int(round(fractions[1] * n))
    return np.sort(order[:n_train]), np.sort(order[n_train : n_train + n_val]), np.sort(order[n_train + n_val :])
