"""Pair potentials (LJ, Morse, user forms): cutoff treatment, fitting, the exact two-point LJ."""

import math

import numpy as np
import pytest

from forcefit.cli import main
from forcefit.config import TrainingConfig
from forcefit.data import make_graph
from forcefit.models import LennardJones
from forcefit.models.pair import lj_from_two_points
from forcefit.structures import Structure
from forcefit.testing import evaluate
from forcefit.training.trainer import Trainer
from test_contracts import HO_LJ


def test_shifted_cutoff_keeps_energy_continuous():
    model = LennardJones(["H", "O"], 3.5, HO_LJ, cutoff_mode="shift")
    inside = evaluate(model, Structure(numbers=[8, 8], positions=[[0, 0, 0], [3.5 - 1e-9, 0, 0]]))[0]
    outside = evaluate(model, Structure(numbers=[8, 8], positions=[[0, 0, 0], [3.5 + 1e-9, 0, 0]]))[0]
    assert abs(inside - outside) < 1e-9


def argon_data(truth, n_structures=12, seed=0):
    """Random dense argon cells labelled with a known LJ."""
    rng = np.random.default_rng(seed)
    structures = []
    while len(structures) < n_structures:
        cell = np.diag([7.5, 7.8, 8.1]) + rng.normal(scale=0.2, size=(3, 3))
        positions = rng.uniform(size=(6, 3)) @ cell
        s = Structure(numbers=[18] * 6, positions=positions, cell=cell, pbc=True)
        if s.to_atoms().get_all_distances(mic=True)[np.triu_indices(6, 1)].min() < 3.0:
            continue
        energy, forces, _ = evaluate(truth, s)
        s.energy, s.forces = energy, forces
        structures.append(s)
    return structures


def test_lj_fit_recovers_its_parameters():
    truth = LennardJones(["Ar"], 7.0, {"Ar-Ar": {"epsilon": 0.0104, "sigma": 3.40}})
    data = argon_data(truth)
    model = LennardJones(["Ar"], 7.0, {"Ar-Ar": {"epsilon": 0.02, "sigma": 3.2}})
    graphs = [make_graph(s, model.cutoff, 0.0) for s in data]
    model.initialise(graphs)
    config = TrainingConfig(epochs=30, optimizer="lbfgs", learning_rate=1.0, batch_size=len(graphs), early_stopping=30, energy_weight=100.0)
    Trainer(model, graphs, [], config).fit()
    fitted = model.parameters_by_key()["Ar-Ar"]
    assert math.isclose(fitted["epsilon"], 0.0104, rel_tol=1e-6)
    assert math.isclose(fitted["sigma"], 3.40, rel_tol=1e-6)
    assert abs(float(model.energy_offset)) < 1e-8


def test_two_point_lj_is_exact_and_refuses_unphysical_points():
    A, B, r0 = 1.5e5, 90.0, 3.6
    U = A / r0**12 - B / r0**6
    F = 12 * A / r0**13 - 6 * B / r0**7
    p = lj_from_two_points(r0, U, F)
    assert math.isclose(p["A"], A, rel_tol=1e-12) and math.isclose(p["B"], B, rel_tol=1e-12)
    assert math.isclose(4 * p["epsilon"] * p["sigma"] ** 12, A, rel_tol=1e-12)
    with pytest.raises(ValueError, match="no physical Lennard-Jones"):
        lj_from_two_points(3.0, 0.5, -0.1)  # repulsive energy with an attractive force


def test_cli_lj_two_point(capsys):
    assert main(["lj-two-point", "--r0", "3.8", "--energy", "-0.0104", "--force", "0.0"]) == 0
    out = capsys.readouterr().out
    assert "ε = 0.0104 eV" in out and "σ = 3.385" in out
    assert main(["lj-two-point", "--r0", "3.0", "--energy", "0.5", "--force", "-0.1"]) == 1
