"""Committees: mean and spread of members, one file, trained by `training.committee`."""

import numpy as np
import pytest
import torch
import yaml

from conftest import tiny_bpnn, tiny_functions, water_cell, water_cluster
from forcefit.calculator import Calculator
from forcefit.cli import main
from forcefit.models import Committee
from forcefit.models import committee as committee_module
from forcefit.models.saving import load_model, save_model
from test_cli import DATA


def members():
    a, b, c = tiny_bpnn(seed=0), tiny_bpnn(seed=1), tiny_bpnn(seed=2)
    with torch.no_grad():
        b.energy_offset.fill_(-0.4)
    return [a, b, c]


def descriptor_members(kind: str) -> list:
    """Three models of one kind on one descriptor: linear models on symmetry functions (their
    one-row weights against the engine's Jacobian), and both families on ACE (the committee's
    path without a Jacobian)."""
    from forcefit.descriptors import AceBasis, AtomicClusterExpansion, SymmetryFunctions
    from forcefit.models import BPNN, LinearModel

    if kind == "sf-linear":
        descriptor = SymmetryFunctions(["H", "O"], tiny_functions(), "cos")
    else:
        descriptor = AtomicClusterExpansion(["H", "O"], 3.5, AceBasis(n_radial=3, l_max=2, n_radial_4=2, l_max_4=1), r_min=0.5)
    kind = kind.split("-")[1]
    models = []
    for seed in range(3):
        torch.manual_seed(seed)
        model = LinearModel(descriptor) if kind == "linear" else BPNN(descriptor, hidden=[6])
        model.initialise([model.graph(s) for s in (water_cluster(1), water_cell())])
        if kind == "linear":
            with torch.no_grad():
                model.coefficients.normal_(std=0.05)
        models.append(model)
    return models


@pytest.mark.parametrize("kind", ["bpnn", "sf-linear", "ace-linear", "ace-bpnn"])
def test_committee_mean_and_spread_match_its_members(tmp_path, monkeypatch, kind):
    models = members() if kind == "bpnn" else descriptor_members(kind)
    committee = Committee(models)
    atoms = water_cluster(2).to_atoms()
    singles = []
    for m in models:
        atoms.calc = Calculator(m)
        singles.append((atoms.get_potential_energy(), atoms.get_forces()))
    atoms.calc = Calculator(committee)
    energy, forces = atoms.get_potential_energy(), atoms.get_forces()
    energies = np.array([e for e, _ in singles])
    member_forces = np.array([f for _, f in singles])
    assert np.isclose(energy, energies.mean(), rtol=1e-12)
    assert np.allclose(forces, member_forces.mean(axis=0), atol=1e-12)
    results = atoms.calc.results
    # the spread is over what each member predicts for the reference (Σ E_i − b_m)
    offsets = np.array([float(m.energy_offset) for m in models])
    assert np.isclose(results["energy_std"], (energies - offsets).std(), rtol=1e-10)
    expected = np.sqrt(((member_forces - member_forces.mean(axis=0)) ** 2).sum(axis=2).mean(axis=0))
    assert np.allclose(results["forces_std"], expected, atol=1e-12)
    assert np.isclose(results["max_force_std"], expected.max(), rtol=1e-12) and expected.max() > 0
    monkeypatch.setattr(committee_module, "memory_budget_gb", lambda: 1e-9)  # one atom per block: blocks of one element
    atoms.calc = Calculator(committee)
    assert np.isclose(atoms.get_potential_energy(), energy, rtol=1e-12) and np.allclose(atoms.get_forces(), forces, atol=1e-12)
    monkeypatch.undo()
    save_model(committee, tmp_path / "c.ffm")
    atoms.calc = Calculator.load(tmp_path / "c.ffm")
    assert atoms.get_potential_energy() == energy


def test_train_a_committee_from_yaml_and_resume(tmp_path):
    config = {
        "data": {"train": DATA, "max_structures": 40},
        "model": {"cutoff": 4.0, "n_radial": 3, "n_angular": 1, "hidden": [6]},
        "training": {"epochs": 2, "batch_size": 8, "committee": 3, "committee_fraction": 0.8},
        "output": str(tmp_path / "run"),
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["train", str(path)]) == 0
    committee = load_model(tmp_path / "run" / "model.ffm")
    assert isinstance(committee, Committee) and len(committee.members) == 3
    weights = [m.networks[0][0].weight for m in committee.members]
    assert not torch.equal(weights[0], weights[1])  # different seeds, different members
    for k in range(3):
        assert (tmp_path / "run" / f"member_{k}" / "checkpoint.pt").is_file()
    config["training"]["epochs"] = 3
    path.write_text(yaml.safe_dump(config))
    assert main(["train", str(path), "--resume"]) == 0
    assert (tmp_path / "run" / "parity_forces.png").is_file()


def test_md_summarises_extrapolation_and_stops_on_disagreement():
    from forcefit.workflows.md import MDLimits, MDRecording, MDSettings, run_md

    committee = Committee(members())
    atoms = water_cluster(1).to_atoms()
    quiet = MDRecording(progress=False)
    toy = dict(max_extrapolating_fraction=None)  # random toy members: their "training range" is tiny
    result = run_md(atoms, Calculator(committee), MDSettings(40, 0.25, 300), quiet, MDLimits(**toy))
    assert not result.stopped and result.max_force_std > 0
    stopped = run_md(atoms, Calculator(committee), MDSettings(40, 0.25), quiet, MDLimits(max_force_std=0.5 * result.max_force_std, **toy))
    assert "committee force disagreement" in stopped.stopped and len(stopped.times_ps) < 41
    squeezed = atoms.copy()
    squeezed.positions *= 0.6  # far outside the training range
    out = run_md(squeezed, Calculator(committee), MDSettings(10, 0.1), quiet, MDLimits(max_extrapolation=0, **toy))
    assert out.extrapolating_steps >= 1 and "outside the training range" in out.stopped


def test_committee_stress_is_the_members_mean():
    models = members()
    cell = water_cell(3).to_atoms()
    stresses = []
    for m in models:
        cell.calc = Calculator(m)
        stresses.append(cell.get_stress())
    cell.calc = Calculator(Committee(models))
    assert np.allclose(cell.get_stress(), np.mean(stresses, axis=0), rtol=1e-12, atol=1e-14)
    assert cell.calc.results["max_force_std"] > 0


def test_committee_evaluates_descriptors_once_per_step_and_reports_its_spread(monkeypatch):
    committee = Committee(members())
    calls = []
    original = type(committee.descriptor).evaluate
    monkeypatch.setattr(type(committee.descriptor), "evaluate", lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    cell = water_cell(3).to_atoms()
    cell.calc = Calculator(committee)
    cell.get_stress()
    assert len(calls) == 1, "energy, forces, stress and the spread come from one descriptor evaluation"
    assert cell.calc.get_property("energy_std") >= 0 and cell.calc.get_property("forces_std").shape == (len(cell),)
    assert cell.calc.get_property("extrapolating_atoms").shape == (len(cell),)
