"""One atomic configuration (`Structure`) and reference labels.

Everything inside forcefit is in eV, Å and eV/Å; readers convert at the edge.
A `Structure` holds geometry and, separately, its reference labels
(`energy`, `forces`, `stress`) so predictions never overwrite references.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import vesin
from ase import Atoms
from ase.data import chemical_symbols

MIN_DISTANCE = 0.1  # Å: closer atoms are an error in the data, not physics a potential is fitted to
DEGENERATE = 1e-3  # a periodic cell spanning less than this fraction of the product of its lengths is refused


@dataclass
class Structure:
    """A configuration with optional reference labels.

    numbers:   (n_atoms,) atomic numbers
    positions: (n_atoms, 3) Å
    cell:      (3, 3) Å, rows are lattice vectors (zeros for a free cluster)
    pbc:       (3,) bool
    energy:    reference total energy, eV (None if unlabelled)
    forces:    (n_atoms, 3) reference forces, eV/Å (None if unlabelled)
    stress:    (3, 3) reference stress, eV/Å³, ASE sign convention (optional)
    weight:    weight of this structure in the loss
    source:    where it came from (file and index), used in error messages
    group:     configuration type (extxyz `config_type` or `group`), for error tables per group
    """

    numbers: np.ndarray
    positions: np.ndarray
    cell: np.ndarray = field(default_factory=lambda: np.zeros((3, 3)))
    pbc: np.ndarray = field(default_factory=lambda: np.zeros(3, dtype=bool))
    energy: float | None = None
    forces: np.ndarray | None = None
    stress: np.ndarray | None = None
    weight: float = 1.0
    source: str = ""
    group: str = ""

    @property
    def group_label(self) -> str:
        """The group, or "(none)" without one: the name in error tables and cross-validation."""
        return self.group or "(none)"

    def __post_init__(self) -> None:
        self.numbers = np.asarray(self.numbers, dtype=np.int64).reshape(-1)
        self.positions = np.asarray(self.positions, dtype=np.float64).reshape(-1, 3)
        self.cell = np.asarray(self.cell, dtype=np.float64).reshape(3, 3)
        self.pbc = np.broadcast_to(np.asarray(self.pbc, dtype=bool), (3,)).copy()
        n = len(self.numbers)
        where = f" ({self.source})" if self.source else ""
        if self.positions.shape[0] != n:
            raise ValueError(f"structure{where}: {n} atomic numbers but {self.positions.shape[0]} positions")
        if not np.all(np.isfinite(self.positions)):
            raise ValueError(f"structure{where}: positions contain NaN or inf")
        if np.any(np.linalg.norm(self.cell, axis=1)[self.pbc] == 0.0):
            raise ValueError(f"structure{where}: periodic along an axis whose lattice vector is zero")
        if not np.all(np.isfinite(self.cell)):
            raise ValueError(f"structure{where}: the cell contains NaN or inf")
        periodic = self.cell[self.pbc]
        if len(periodic):
            lengths = np.linalg.norm(periodic, axis=1)
            measure = np.sqrt(max(np.linalg.det(periodic @ periodic.T), 0.0))  # volume, area or length they span
            if measure < DEGENERATE * np.prod(lengths):
                raise ValueError(
                    f"structure{where}: the periodic lattice vectors {np.round(periodic, 6).tolist()} are (nearly) linearly "
                    f"dependent (they span {measure:.3g} Å^{len(periodic)} for lengths {np.round(lengths, 4).tolist()} Å)"
                )
        if self.forces is not None:
            self.forces = np.asarray(self.forces, dtype=np.float64).reshape(-1, 3)
            if self.forces.shape[0] != n:
                raise ValueError(f"structure{where}: {n} atoms but {self.forces.shape[0]} force rows")
            if not np.all(np.isfinite(self.forces)):
                raise ValueError(f"structure{where}: reference forces contain NaN or inf")
        if self.energy is not None:
            self.energy = float(self.energy)
            if not np.isfinite(self.energy):
                raise ValueError(f"structure{where}: reference energy is {self.energy}")
        if self.stress is not None:
            self.stress = np.asarray(self.stress, dtype=np.float64).reshape(3, 3)
            if not np.all(np.isfinite(self.stress)):
                raise ValueError(f"structure{where}: reference stress contains NaN or inf")
            if not self.pbc.all():
                raise ValueError(f"structure{where}: a reference stress needs a cell periodic in all three directions")

    @property
    def n_atoms(self) -> int:
        return len(self.numbers)

    @property
    def symbols(self) -> list[str]:
        return [chemical_symbols[z] for z in self.numbers]

    @classmethod
    def from_atoms(cls, atoms: Atoms, **labels) -> Structure:
        return cls(
            numbers=atoms.numbers,
            positions=atoms.positions,
            cell=np.asarray(atoms.cell),
            pbc=atoms.pbc,
            **labels,
        )

    def to_atoms(self) -> Atoms:
        return Atoms(numbers=self.numbers, positions=self.positions, cell=self.cell, pbc=self.pbc)


def check_min_distance(structure: Structure, min_distance: float = MIN_DISTANCE, pairs=None) -> None:
    """Refuse atoms closer than `min_distance` Å (periodic images included), naming them.
    `pairs` = (i, j, d): a full neighbour list already at hand whose cutoff is at least
    `min_distance` (the calculator's graph), searched instead of building one."""
    if min_distance <= 0 or structure.n_atoms < 1:
        return
    if pairs is None:
        i, j, d = vesin.NeighborList(cutoff=min_distance, full_list=False).compute(
            points=structure.positions, box=structure.cell, periodic=[bool(p) for p in structure.pbc], quantities="ijd"
        )
        count = len(d)
    else:
        i, j, d = pairs
        close = np.flatnonzero(d < min_distance)
        i, j, d = i[close], j[close], d[close]
        count = len(d) // 2  # a full list holds each pair twice
    if len(d):
        k = int(np.argmin(d))
        where = f" ({structure.source})" if structure.source else ""
        raise ValueError(
            f"structure{where}: atoms {int(i[k]) + 1} and {int(j[k]) + 1} (counted from 1) are {d[k]:.4g} Å apart, "
            f"closer than the minimum distance {min_distance} Å ({count} such pairs): coincident or overlapping atoms"
        )
