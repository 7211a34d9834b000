"""Dataset readers and writers (extxyz, ASE databases, n2p2 input.data) → `Structure`s.
Units are converted here, at the edge; inside forcefit everything is eV, Å, eV/Å.
The first stage: imports only structures, units and config. Potential files of other
codes, which need models, live in `forcefit.interop`."""

from pathlib import Path

from forcefit.io.extxyz import read_extxyz, write_extxyz
from forcefit.io.inputdata import read_input_data, write_input_data
from forcefit.structures import MIN_DISTANCE, check_min_distance
from forcefit.units import unit_value

FORMATS = ("extxyz", "db", "input.data")


def guess_format(path, format: str | None = None) -> str:
    """'input.data' for n2p2 datasets (named *input.data or *.data), 'db' for ASE
    databases (*.db), else 'extxyz'."""
    if format is not None:
        return "input.data" if format in ("input.data", "n2p2") else format
    name = Path(path).name
    if name.endswith(".db"):
        return "db"
    return "input.data" if name.endswith("input.data") or name.endswith(".data") else "extxyz"


def read_structures(
    path,
    *,
    format: str | None = None,
    length_unit: float = 1.0,
    energy_unit: float = 1.0,
    energy_key: str = "energy",
    forces_key: str = "forces",
    stress_key: str | None = "stress",
    stress_format: str = "ase",
    require_labels: bool = True,
    min_distance: float = MIN_DISTANCE,
):
    """Read a dataset, choosing the reader from `format` or the file name.

    `format` is "extxyz", "db" (ASE database) or "input.data". Units (Å and eV per
    file unit) apply to every format; the label keys and stress convention to the
    ASE formats (input.data has fixed columns and no stress). Atoms closer than
    `min_distance` Å are an error naming the structure (0 switches the check off).
    """
    path = Path(path)
    fmt = guess_format(path, format)
    if fmt in ("extxyz", "db"):
        structures = read_extxyz(
            path,
            energy_key=energy_key,
            forces_key=forces_key,
            stress_key=stress_key,
            stress_format=stress_format,
            length_unit=length_unit,
            energy_unit=energy_unit,
            require_labels=require_labels,
        )
    elif fmt == "input.data":
        structures = read_input_data(path, length_unit=length_unit, energy_unit=energy_unit, require_labels=require_labels)
    else:
        raise ValueError(f"{path}: unknown format {fmt!r}; expected one of {FORMATS}")
    for structure in structures:
        check_min_distance(structure, min_distance)
    return structures


def read_atoms(path, index: str | int = 0, length_unit: float | str | None = None):
    """One starting structure (ASE Atoms, no labels) for MD, relaxation or properties: any
    file ASE reads, and n2p2 input.data through forcefit's reader in the units the caller
    states (ASE would assume Bohr). `length_unit` (Å per file unit, or a name) converts
    the lengths of every format; `index` picks the frame (0 = first, −1 = last)."""
    from ase.io import read

    scale = 1.0 if length_unit is None else unit_value(length_unit, "length unit")
    if guess_format(path) == "input.data":
        if length_unit is None:
            raise ValueError(f"{path}: n2p2 input.data carries no units; state them (--length-unit bohr or angstrom)")
        structures = read_input_data(path, length_unit=scale, energy_unit=1.0, require_labels=False)
        try:
            return structures[int(index)].to_atoms()
        except (ValueError, IndexError):
            raise ValueError(f"{path}: frame {index} is not one of its {len(structures)} configurations") from None
    atoms = read(path, index=index)
    if not hasattr(atoms, "positions"):
        raise ValueError(f"{path}: index {index} selects several frames; give one")
    if scale != 1.0:
        atoms.set_cell(atoms.cell * scale)
        atoms.positions *= scale
    atoms.calc = None
    return atoms


__all__ = ["read_atoms", "guess_format", "read_structures", "read_extxyz", "write_extxyz", "read_input_data", "write_input_data"]
