"""n2p2/RuNNer `input.data` datasets.

Format, one block per configuration:

    begin
    comment <text>                         (any number)
    lattice <ax> <ay> <az>                 (0 or 3 lines; 3 means periodic)
    atom <x> <y> <z> <element> <charge> <atom energy> <fx> <fy> <fz>
    energy <total energy>
    charge <total charge>
    end

The format carries no units: the caller states them as `length_unit` (Å per file
length unit, e.g. ase.units.Bohr) and `energy_unit` (eV per file energy unit,
e.g. ase.units.Hartree).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase.data import atomic_numbers, chemical_symbols

from forcefit.structures import Structure


def _floats(fields, path, lineno, what):
    try:
        values = [float(x) for x in fields]
    except ValueError:
        raise ValueError(f"{path} line {lineno}: {what}: expected numbers, got {' '.join(fields)!r}") from None
    if not all(np.isfinite(values)):
        raise ValueError(f"{path} line {lineno}: {what}: contains NaN or inf")
    return values


def read_input_data(path, *, length_unit: float, energy_unit: float, require_labels: bool = True) -> list[Structure]:
    """Read all configurations, converting to Å and eV with the stated units
    (with `require_labels=False` a configuration may lack its energy line)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    structures: list[Structure] = []
    block = None
    begin_line = 0
    with path.open() as handle:
        for lineno, raw in enumerate(handle, start=1):
            fields = raw.split()
            if not fields or fields[0].startswith("#"):
                continue
            key = fields[0]
            if key == "begin":
                if block is not None:
                    raise ValueError(f"{path} line {lineno}: 'begin' inside the configuration opened at line {begin_line} (missing 'end')")
                block = {"lattice": [], "atoms": [], "energy": None, "comment": []}
                begin_line = lineno
                continue
            if block is None:
                raise ValueError(f"{path} line {lineno}: {key!r} outside a begin/end block")
            if key == "comment":
                block["comment"].append(" ".join(fields[1:]))
            elif key == "lattice":
                if len(fields) != 4:
                    raise ValueError(f"{path} line {lineno}: expected 'lattice ax ay az', got {len(fields)} fields")
                block["lattice"].append(_floats(fields[1:], path, lineno, "lattice"))
            elif key == "atom":
                if len(fields) != 10:
                    raise ValueError(
                        f"{path} line {lineno}: expected 'atom x y z element charge energy fx fy fz' (10 fields), got {len(fields)}"
                    )
                if fields[4] not in atomic_numbers:
                    raise ValueError(f"{path} line {lineno}: unknown element {fields[4]!r}")
                xyz = _floats(fields[1:4], path, lineno, "atom position")
                rest = _floats(fields[5:10], path, lineno, "atom charge/energy/forces")
                block["atoms"].append((atomic_numbers[fields[4]], xyz, rest[2:]))
            elif key == "energy":
                if len(fields) != 2:
                    raise ValueError(f"{path} line {lineno}: expected 'energy E', got {len(fields)} fields")
                if block["energy"] is not None:
                    raise ValueError(f"{path} line {lineno}: a second 'energy' line in the configuration opened at line {begin_line}")
                block["energy"] = _floats(fields[1:], path, lineno, "energy")[0]
            elif key == "charge":
                _floats(fields[1:2], path, lineno, "charge")
            elif key == "end":
                structures.append(_finish(block, path, begin_line, length_unit, energy_unit, len(structures), require_labels))
                block = None
            else:
                raise ValueError(f"{path} line {lineno}: unknown keyword {key!r}")
    if block is not None:
        raise ValueError(f"{path}: file ends inside the configuration opened at line {begin_line} (truncated? no 'end')")
    if not structures:
        raise ValueError(f"{path}: contains no configurations")
    return structures


def _finish(block, path, begin_line, length_unit, energy_unit, index, require_labels) -> Structure:
    where = f"{path} configuration {index + 1} (line {begin_line})"
    if not block["atoms"]:
        raise ValueError(f"{where}: no atom lines")
    if block["energy"] is None and require_labels:
        raise ValueError(f"{where}: no 'energy' line")
    if len(block["lattice"]) not in (0, 3):
        raise ValueError(f"{where}: {len(block['lattice'])} lattice lines; expected 0 or 3")
    periodic = len(block["lattice"]) == 3
    numbers = [a[0] for a in block["atoms"]]
    positions = np.array([a[1] for a in block["atoms"]]) * length_unit
    forces = np.array([a[2] for a in block["atoms"]]) * energy_unit / length_unit
    cell = np.array(block["lattice"]) * length_unit if periodic else np.zeros((3, 3))
    return Structure(
        numbers=numbers,
        positions=positions,
        cell=cell,
        pbc=periodic,
        energy=None if block["energy"] is None else block["energy"] * energy_unit,
        forces=forces,
        source=where,
    )


def write_input_data(path, structures: list[Structure], *, length_unit: float, energy_unit: float) -> None:
    """Write structures in the stated file units (full double precision)."""
    with Path(path).open("w") as out:
        for s in structures:
            out.write("begin\n")
            if s.source:
                out.write(f"comment {s.source}\n")
            if s.pbc.any():
                for vector in s.cell / length_unit:
                    out.write("lattice " + " ".join(f"{x: .16E}" for x in vector) + "\n")
            forces = s.forces if s.forces is not None else np.zeros_like(s.positions)
            forces = forces * length_unit / energy_unit
            for z, r, f in zip(s.numbers, s.positions / length_unit, forces):
                out.write(
                    "atom "
                    + " ".join(f"{x: .16E}" for x in r)
                    + f" {chemical_symbols[z]:2s}"
                    + f" {0.0: .16E} {0.0: .16E} "
                    + " ".join(f"{x: .16E}" for x in f)
                    + "\n"
                )
            energy = (s.energy if s.energy is not None else 0.0) / energy_unit
            out.write(f"energy {energy: .16E}\ncharge {0.0: .16E}\nend\n")
