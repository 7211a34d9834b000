"""Readers and writers. Units are converted here, at the edge; inside forcefit
everything is eV, Å, eV/Å."""
from pathlib import Path

from forcefit.io.extxyz import read_extxyz, write_extxyz
from forcefit.io.inputdata import read_input_data, write_input_data


def guess_format(path, format: str | None = None) -> str:
    """'input.data' for n2p2 datasets (named *input.data or *.data), else 'extxyz'."""
    if format is not None:
        return "input.data" if format in ("input.data", "n2p2") else format
    name = Path(path).name
    return "input.data" if name.endswith("input.data") or name.endswith(".data") else "extxyz"


def read_structures(path, *, format: str | None = None, **options):
    """Read a dataset, choosing the reader from `format` or the file name.

    `format` is "extxyz" or "input.data"; options go to the reader (energy/forces
    keys for extxyz, length/energy units for input.data).
    """
    path = Path(path)
    fmt = guess_format(path, format)
    if fmt == "extxyz":
        return read_extxyz(path, **options)
    if fmt == "input.data":
        return read_input_data(path, **options)
    raise ValueError(f"{path}: unknown format {fmt!r}; expected 'extxyz' or 'input.data'")


__all__ = ["guess_format", "read_structures", "read_extxyz", "write_extxyz", "read_input_data", "write_input_data"]
