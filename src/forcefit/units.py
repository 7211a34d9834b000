"""Units at the edge: the one parser of unit options. Inside forcefit everything is eV, Å,
eV/Å and eV/Å³; a file's units are given as Å or eV per file unit, or by name."""

from __future__ import annotations

from ase import units

NAMED_UNITS = {
    "angstrom": 1.0,
    "Å": 1.0,
    "bohr": units.Bohr,
    "nm": 10.0,
    "ev": 1.0,
    "hartree": units.Hartree,
    "ry": units.Rydberg,
    "kcal/mol": units.kcal / units.mol,
    "kj/mol": units.kJ / units.mol,
}


def unit_value(value, key: str | None = None) -> float:
    """A unit as a positive number (Å or eV per file unit), a numeric string, or a name like
    'bohr'; an error names `key` (the option or config key) when given."""
    where = f"{key}: " if key else ""
    if isinstance(value, str):
        named = {k.lower(): v for k, v in NAMED_UNITS.items()}
        if value.lower() in named:
            return named[value.lower()]
        try:
            value = float(value)
        except ValueError:
            raise ValueError(f"{where}{value!r} is not a number or one of {sorted(NAMED_UNITS)}") from None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 and value != float("inf"):
        return float(value)
    raise ValueError(f"{where}{value!r} is not a positive number or one of {sorted(NAMED_UNITS)}")
