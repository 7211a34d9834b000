"""Extended XYZ through ase.io, with configurable label keys.

Files in the wild name their labels `energy`, `REF_energy`, `dft_energy`, ...;
ASE moves some of them into a SinglePointCalculator and leaves others in
`atoms.info` / `atoms.arrays`, so we look in both places.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read, write

from forcefit.structures import Structure


def _label(atoms, key: str, per_atom: bool):
    store = atoms.arrays if per_atom else atoms.info
    if key in store:
        return store[key]
    if atoms.calc is not None and key in atoms.calc.results:
        return atoms.calc.results[key]
    return None


def read_extxyz(
    path,
    *,
    energy_key: str = "energy",
    forces_key: str = "forces",
    stress_key: str | None = None,
    require_labels: bool = True,
) -> list[Structure]:
    """Read every frame of an extended-XYZ file (eV, Å) into `Structure`s.

    With `require_labels`, a frame without energy or forces is an error naming
    the file, the frame and its first line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        frames = read(path, index=":", format="extxyz")
    except Exception as err:  # ase's own message lacks the file name
        raise ValueError(f"{path}: not a readable extended XYZ file: {err}") from err
    structures, line = [], 1
    for index, atoms in enumerate(frames):
        where = f"{path} frame {index} (line {line})"
        line += len(atoms) + 2
        energy = _label(atoms, energy_key, per_atom=False)
        forces = _label(atoms, forces_key, per_atom=True)
        if require_labels and energy is None:
            raise ValueError(f"{where}: no energy under key {energy_key!r}; keys present: {sorted(atoms.info)}")
        if require_labels and forces is None:
            raise ValueError(f"{where}: no forces under key {forces_key!r}; arrays present: {sorted(atoms.arrays)}")
        stress = None
        if stress_key is not None:
            stress = _label(atoms, stress_key, per_atom=False)
            if stress is not None:
                stress = np.asarray(stress, dtype=float)
                if stress.size == 6:
                    from ase.constraints import voigt_6_to_full_3x3_stress

                    stress = voigt_6_to_full_3x3_stress(stress)
        weight = float(atoms.info.get("weight", 1.0))
        structures.append(
            Structure.from_atoms(atoms, energy=energy, forces=forces, stress=stress, weight=weight, source=where)
        )
    if not structures:
        raise ValueError(f"{path}: contains no structures")
    return structures


def write_extxyz(path, structures: list[Structure]) -> None:
    """Write structures with their reference labels under `energy` / `forces`
    (ASE writes per-atom arrays with 8 decimals)."""
    frames = []
    for s in structures:
        atoms = s.to_atoms()
        results = {}
        if s.energy is not None:
            results["energy"] = s.energy
        if s.forces is not None:
            results["forces"] = s.forces
        if results:
            atoms.calc = SinglePointCalculator(atoms, **results)
        frames.append(atoms)
    write(path, frames, format="extxyz")
