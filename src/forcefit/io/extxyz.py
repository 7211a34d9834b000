"""Extended XYZ files and ASE databases (`.db`), with configurable label keys.

Files in the wild name their labels `energy`, `REF_energy`, `dft_energy`, ...;
ASE moves some of them into a SinglePointCalculator and leaves others in
`atoms.info` / `atoms.arrays`, so we look in both places.

Units: ASE formats are normally eV and Å, but a file may hold other units; the
caller states them as `length_unit` (Å per file unit) and `energy_unit` (eV per
file unit), and positions, cells, energies, forces and stresses are converted here.

Stress conventions (`stress_format`):
    ase        ASE's: σ = (1/V) ∂E/∂ε in energy/length³ (positive when the cell
               wants to shrink), 6 Voigt components (xx yy zz yz xz xy) or 3×3
    vasp-kbar  VASP's "in kB" line as the mlearn data keep it: kbar, positive when
               the cell wants to expand (so σ_ASE = −0.1 GPa × value), components
               in the order xx yy zz xy yz zx. Established from the mlearn source
               (its VASP stress order) and checked on the data: the strain derivative
               of the DFT energy of the "Elastic" frames equals V σ:dε (test_io.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import units
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read, write

from forcefit.structures import Structure

STRESS_FORMATS = ("ase", "vasp-kbar")


def _label(atoms, key: str, per_atom: bool):
    store = atoms.arrays if per_atom else atoms.info
    if key in store:
        return store[key]
    if atoms.calc is not None and key in atoms.calc.results:
        return atoms.calc.results[key]
    return None


def stress_tensor(values, stress_format: str) -> np.ndarray:
    """A stress label as a 3×3 tensor in ASE's convention (still in file units for 'ase')."""
    values = np.asarray(values, dtype=float)
    if stress_format == "ase":
        if values.size == 9:
            return values.reshape(3, 3)
        if values.size == 6:
            xx, yy, zz, yz, xz, xy = values
            return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
    elif stress_format == "vasp-kbar" and values.size == 6:
        xx, yy, zz, xy, yz, zx = values
        return -0.1 * units.GPa * np.array([[xx, xy, zx], [xy, yy, yz], [zx, yz, zz]])
    else:
        raise ValueError(f"stress format {stress_format!r}: expected one of {STRESS_FORMATS}")
    raise ValueError(f"a stress needs 6 or 9 values, got {values.size}")


MIN_ATOM_LINE = 8  # bytes: the shortest possible atom line ("H 0 0 0" and a newline)


def check_atom_counts(path: Path) -> None:
    """Walk the frame headers of an (ext)XYZ file before parsing it: every atom count must
    be a positive whole number that the rest of the file can hold. A header announcing
    10¹² atoms otherwise makes a reader allocate or loop until it is killed."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        line_number = 0
        while True:
            header = handle.readline()
            line_number += 1
            if not header:
                return
            if not header.strip():
                continue
            try:
                count = int(header.split()[0])
            except ValueError:
                raise ValueError(
                    f"{path} line {line_number}: expected the atom count of a frame, got {header[:60].decode(errors='replace')!r}"
                ) from None
            left = size - handle.tell()
            if count < 1 or count * MIN_ATOM_LINE > left:
                raise ValueError(
                    f"{path} line {line_number}: the frame announces {count} atoms but only {left} bytes follow "
                    f"(at least {MIN_ATOM_LINE} per atom line)"
                )
            for _ in range(count + 1):  # comment line and atom lines
                handle.readline()
            line_number += count + 1


def _frames(path: Path):
    """(atoms, extra info) per frame; ASE databases keep their key-value pairs apart."""
    if path.suffix == ".db":
        import ase.db

        with ase.db.connect(str(path)) as database:
            return [(row.toatoms(), dict(row.key_value_pairs)) for row in database.select()]
    check_atom_counts(path)
    return [(atoms, {}) for atoms in read(path, index=":", format="extxyz")]


def read_extxyz(
    path,
    *,
    energy_key: str = "energy",
    forces_key: str = "forces",
    stress_key: str | None = "stress",
    stress_format: str = "ase",
    length_unit: float = 1.0,
    energy_unit: float = 1.0,
    require_labels: bool = True,
) -> list[Structure]:
    """Read every frame of an extended-XYZ file or ASE database into `Structure`s.

    With `require_labels`, a frame without energy or forces is an error naming
    the file, the frame (counted from 1) and its first line. A stress is read when
    the frame has one under `stress_key`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if stress_format not in STRESS_FORMATS:
        raise ValueError(f"stress format {stress_format!r}: expected one of {STRESS_FORMATS}")
    try:
        frames = _frames(path)
    except ValueError as err:
        if str(path) in str(err):
            raise
        raise ValueError(f"{path}: not a readable {'ASE database' if path.suffix == '.db' else 'extended XYZ file'}: {err}") from err
    except Exception as err:  # ase's own message lacks the file name
        raise ValueError(f"{path}: not a readable {'ASE database' if path.suffix == '.db' else 'extended XYZ file'}: {err}") from err
    force_unit, stress_unit = energy_unit / length_unit, energy_unit / length_unit**3
    structures, line = [], 1
    for index, (atoms, extra) in enumerate(frames):
        where = f"{path} frame {index + 1}" + ("" if path.suffix == ".db" else f" (line {line})")
        line += len(atoms) + 2
        info = {**atoms.info, **extra}
        atoms.info = info
        energy = _label(atoms, energy_key, per_atom=False)
        forces = _label(atoms, forces_key, per_atom=True)
        if require_labels and energy is None:
            raise ValueError(f"{where}: no energy under key {energy_key!r}; keys present: {sorted(info)}")
        if require_labels and forces is None:
            raise ValueError(f"{where}: no forces under key {forces_key!r}; arrays present: {sorted(atoms.arrays)}")
        stress = _label(atoms, stress_key, per_atom=False) if stress_key else None
        if stress is not None:
            try:
                stress = stress_tensor(stress, stress_format) * (stress_unit if stress_format == "ase" else 1.0)
            except ValueError as err:
                raise ValueError(f"{where}: stress under key {stress_key!r}: {err}") from None
        structures.append(
            Structure(
                numbers=atoms.numbers,
                positions=atoms.positions * length_unit,
                cell=np.asarray(atoms.cell) * length_unit,
                pbc=atoms.pbc,
                energy=None if energy is None else float(energy) * energy_unit,
                forces=None if forces is None else np.asarray(forces, dtype=float) * force_unit,
                stress=stress,
                weight=float(info.get("weight", 1.0)),
                source=where,
                group=str(info.get("config_type", info.get("group", ""))),
            )
        )
    if not structures:
        raise ValueError(f"{path}: contains no structures")
    return structures


def write_extxyz(path, structures: list[Structure]) -> None:
    """Write structures with their reference labels under `energy` / `forces` /
    `stress` (ASE convention) and the group as `config_type` (ASE writes per-atom
    arrays with 8 decimals)."""
    frames = []
    for s in structures:
        atoms = s.to_atoms()
        results = {}
        if s.energy is not None:
            results["energy"] = s.energy
        if s.forces is not None:
            results["forces"] = s.forces
        if s.stress is not None:
            results["stress"] = s.stress
        if results:
            atoms.calc = SinglePointCalculator(atoms, **results)
        if s.group:
            atoms.info["config_type"] = s.group
        frames.append(atoms)
    write(path, frames, format="extxyz")
