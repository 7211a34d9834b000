"""The extrapolation grade γ (models/grade.py): 1 on the active set, ≤ 1 + tolerance on every
training environment, invariant, above 1 outside the data, stored bit for bit, a damaged
active set refused; in the calculator, committees, MD and training runs."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from conftest import tiny_bpnn, water_cell, water_cluster
from forcefit.calculator import Calculator
from forcefit.models import Committee
from forcefit.models.grade import TOLERANCE, maxvol
from forcefit.models.saving import checksum, load_model, model_from_dict, save_model
from forcefit.workflows.md import MDLimits, MDRecording, MDSettings, run_md, summary


def training_structures():
    return [water_cluster(seed, n_molecules=4) for seed in range(8)] + [water_cell(seed) for seed in range(1, 9)]


def graded(model):
    model.fit_grade([model.graph(s) for s in training_structures()])
    return model


@pytest.fixture(scope="module")
def model():
    return graded(tiny_bpnn())


def gamma_of(model, structure) -> np.ndarray:
    atoms = structure.to_atoms()
    atoms.calc = Calculator(model)
    atoms.get_potential_energy()
    assert atoms.calc.results["max_gamma"] == pytest.approx(atoms.calc.results["gamma"].max())
    return atoms.calc.results["gamma"]


def test_maxvol_bounds_every_coefficient():
    rows = torch.from_numpy(np.random.default_rng(0).normal(size=(300, 12)))
    chosen = maxvol(rows)
    coefficients = torch.linalg.solve(rows[chosen].T, rows.T).T
    assert coefficients.abs().max() <= 1 + TOLERANCE
    assert torch.allclose(coefficients[chosen], torch.eye(12, dtype=rows.dtype), atol=1e-10)


def test_one_on_the_active_set_and_at_most_one_plus_tolerance_on_the_training_data(model):
    gammas = np.concatenate([gamma_of(model, s) for s in training_structures()])
    numbers = np.concatenate([s.numbers for s in training_structures()])
    assert gammas.max() <= 1 + TOLERANCE + 1e-9
    for z, element in enumerate(model.elements):
        rank = model.grade.shapes[z][1]
        on_active_set = np.isclose(gammas[numbers == (1 if element == "H" else 8)], 1.0, atol=1e-8).sum()
        assert on_active_set >= rank, (element, on_active_set, rank)


def test_invariant_under_rotation_translation_and_permutation(model):
    structure = water_cell(3)
    reference = gamma_of(model, structure)
    rng = np.random.default_rng(1)
    moved = copy.deepcopy(structure)
    rotation, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    moved.positions = structure.positions @ rotation.T + rng.normal(size=3)
    moved.cell = structure.cell @ rotation.T
    assert np.allclose(gamma_of(model, moved), reference, atol=1e-9)
    order = rng.permutation(len(structure.numbers))
    permuted = copy.deepcopy(structure)
    permuted.numbers, permuted.positions = structure.numbers[order], structure.positions[order]
    assert np.allclose(gamma_of(model, permuted), reference[order], atol=1e-9)


def test_above_one_outside_the_data(model):
    squeezed, stretched = water_cell(3), water_cell(3)
    squeezed.positions, squeezed.cell = 0.75 * squeezed.positions, 0.75 * squeezed.cell
    stretched.positions, stretched.cell = 1.6 * stretched.positions, 1.6 * stretched.cell
    assert gamma_of(model, squeezed).max() > 1.5
    assert gamma_of(model, stretched).max() > 1.5


def test_stored_bit_for_bit_and_a_damaged_active_set_refused(model, tmp_path):
    save_model(model, tmp_path / "m.ffm")
    loaded = load_model(tmp_path / "m.ffm")
    for name, value in model.grade.state_dict().items():
        assert torch.equal(value, loaded.grade.state_dict()[name]), name
    assert np.array_equal(gamma_of(loaded, water_cell(3)), gamma_of(model, water_cell(3)))
    data = torch.load(tmp_path / "m.ffm", weights_only=True)
    data["state"]["grade.inverse_1"][0, 0] += 0.1  # a consistent file (checksum redone) whose active set is wrong
    data["checksum"] = checksum(data)
    with pytest.raises(ValueError, match="active set of element 1 is damaged"):
        model_from_dict(data, "damaged.ffm")


def test_committee_grade_is_the_members_largest(model):
    other = graded(tiny_bpnn(seed=1))
    committee = Committee([model, other])
    structure = water_cell(5)
    assert np.allclose(gamma_of(committee, structure), np.maximum(gamma_of(model, structure), gamma_of(other, structure)))


def test_md_stops_above_max_gamma_and_records_frames(model):
    atoms = water_cluster(2, n_molecules=4).to_atoms()
    result = run_md(
        atoms, Calculator(model), MDSettings(40, 0.5, 3000.0), MDRecording(record_gamma=0.5, progress=False), MDLimits(max_gamma=1.05)
    )
    assert result.gamma is not None and len(result.high_gamma_frames) == int((result.gamma > 0.5).sum())
    assert result.unsafe and "extrapolation grade" in result.stopped and result.gamma[-1] > 1.05
    assert "of steps above --max-gamma 1.05" in summary(result, len(atoms), "nve", False)


def test_a_pair_closer_than_the_data_is_graded_by_its_distance():
    """The inner switch hides pairs closer than the data from the descriptors; the grade sees
    them: (r_d / r)³ of the closest, ≤ 1 on the training data."""
    from forcefit.models.base import shortest_distances
    from forcefit.models.repulsion import CoreRepulsion

    model = tiny_bpnn()
    model.core_repulsion = CoreRepulsion(model.elements)  # the hand-over at short range, as training sets it up
    shortest = shortest_distances(model, training_structures())
    model.set_short_range(shortest)
    graded(model)
    assert max(gamma_of(model, s).max() for s in training_structures()) <= 1 + TOLERANCE + 1e-9
    close = water_cluster(2, n_molecules=4)
    r_d = float(shortest[0, 1])  # H–O, model.elements = [H, O]
    close.positions[1] = close.positions[0] + [0.5 * r_d, 0.0, 0.0]  # the first O's first H at half the data's shortest O–H
    assert gamma_of(model, close)[[0, 1]].min() == pytest.approx(8.0, rel=1e-9)


def test_a_trained_model_has_its_grade(tmp_path):
    """`forcefit train` ends with the active set: the file has it, the calculator gives γ, and
    the training structures lie inside (γ ≤ 1 + tolerance)."""
    import yaml

    from forcefit.api import train
    from forcefit.io import read_structures
    from test_cli import DATA, tiny_config

    config = yaml.safe_load(tiny_config(tmp_path).read_text())
    result = train(config)
    loaded = load_model(result.run_dir / "model.ffm")
    assert loaded.has_grade
    structures = read_structures(DATA)[:5]
    assert all(np.isfinite(gamma_of(loaded, s)).all() for s in structures)


def test_gamma_selection_is_a_d_optimal_batch(model):
    """Three copies of one extrapolating frame and a different, less extrapolating one: the
    batch of two takes one copy and the other frame, not two copies."""
    from forcefit.workflows.active_learning import select_by_grade

    far = water_cell(3)
    far.positions, far.cell = 1.3 * far.positions, 1.3 * far.cell
    other = water_cluster(5, n_molecules=4)
    other.positions = 0.9 * other.positions
    frames = [far.to_atoms()] * 3 + [other.to_atoms()]
    gamma = np.array([gamma_of(model, far).max()] * 3 + [gamma_of(model, other).max()])
    assert gamma[0] > gamma[3] > 1
    assert select_by_grade(model, frames, gamma, 2, 1) == [0, 3]


def test_md_command_writes_the_frames_above_record_gamma(model, tmp_path):
    from ase.io import read, write

    from forcefit.cli import main

    save_model(model, tmp_path / "m.ffm")
    write(tmp_path / "start.extxyz", water_cluster(2, n_molecules=4).to_atoms())
    arguments = ["md", str(tmp_path / "m.ffm"), str(tmp_path / "start.extxyz"), "--steps", "6", "--timestep", "0.5"]
    assert main([*arguments, "--record-gamma", "0", "--max-gamma", "1000", "--log", str(tmp_path / "md.log")]) == 0
    frames = read(tmp_path / "md.gamma.extxyz", index=":")
    assert len(frames) == 7  # every recorded step (γ > 0), the start included
    assert main([*arguments, "--max-gamma", "0.01"]) == 1  # any atom beyond the limit stops the run as unsafe
