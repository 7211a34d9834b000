"""Energies a user reads are on the reference data's scale: the reference's arbitrary zero is
carried by the energies per element, so a calculator's energy of a held-out frame can be set
beside the user's own DFT number, for one composition (a molecule), many, or one element."""

import json

import numpy as np
import pytest

from conftest import ROOT, shared_path
from forcefit.calculator import Calculator
from forcefit.config import Config, DataConfig, TrainingConfig, model_settings
from forcefit.io import read_extxyz
from forcefit.run import train_from_config

ETHANOL = ROOT / "data" / "ethanol_gfn2xtb_500K.extxyz"
SMALL_SF = dict(cutoff=4.0, cutoff_type="tanh", n_radial=5, n_angular=2)


def molecule_config(tmp_path, kind: str, name: str = "run") -> Config:
    if kind == "bpnn":
        model = model_settings(kind="bpnn", hidden=[16, 16], **SMALL_SF)
        training = TrainingConfig(epochs=30, batch_size=16, learning_rate=3e-3, energy_weight=100.0, seed=0)
    else:
        model = model_settings(kind="linear", **SMALL_SF)
        training = TrainingConfig(optimizer="ridge", ridge=1e-6, energy_weight=1000.0)
    return Config(
        data=DataConfig(train=str(ETHANOL), max_structures=200, split=[0.7, 0.15, 0.15], split_seed=0),
        model=model,
        training=training,
        output=str(tmp_path / name),
    )


def held_out_frames(config: Config, n: int = 20):
    from forcefit.run import read_split

    _, _, test = read_split(config)
    return test[:n]


@pytest.mark.parametrize("kind", ["bpnn", "linear"])
def test_one_molecule_lands_on_the_reference_scale(tmp_path, kind):
    """One composition cannot tell a per-structure constant from energies per element; the
    element energies take it, so held-out frames' calculator energies (about −309 eV for
    GFN2-xTB ethanol) match their reference energies within 3× the test MAE."""
    config = molecule_config(tmp_path, kind)
    model, stats = train_from_config(config)
    assert float(model.energy_offset.detach()) == 0.0
    tolerance = 3.0 * stats["test"]["energy_structure_mae"] / 1000.0  # eV per structure
    calculator = Calculator(model)
    for frame in held_out_frames(config):
        atoms = frame.to_atoms()
        atoms.calc = calculator
        assert abs(atoms.get_potential_energy() - frame.energy) < tolerance, (atoms.get_potential_energy(), frame.energy, tolerance)


def test_two_identical_runs_give_the_same_energies(tmp_path):
    """The closed-form fit of one composition has collinear element energies: the answer is
    the same to 1e-8 relative from run to run."""
    energies = []
    for name in ("first", "second"):
        config = molecule_config(tmp_path, "linear", name)
        model, _ = train_from_config(config)
        calculator = Calculator(model)
        frames = [f.to_atoms() for f in held_out_frames(config, 5)]
        for atoms in frames:
            atoms.calc = calculator
        energies.append(np.array([a.get_potential_energy() for a in frames]))
    np.testing.assert_allclose(energies[0], energies[1], rtol=1e-8, atol=0)


def test_crystal_calculator_error_equals_the_reported_error(tmp_path):
    """On an elemental crystal set the energy MAE a user computes with the calculator over the
    test file equals the MAE `train`/`evaluate` report (metrics.json)."""
    test_file = shared_path("data", "mlearn", "Si_test.extxyz")
    config = Config(
        data=DataConfig(train=str(shared_path("data", "mlearn", "Si_train.extxyz")), test=str(test_file), split=[1.0, 0.0, 0.0]),
        model=model_settings(kind="linear", cutoff=5.0, n_radial=8, n_angular=4, r_min=1.8),
        training=TrainingConfig(optimizer="ridge", energy_weight=1000.0, ridge=1e-6),
        output=str(tmp_path / "si"),
    )
    model, _ = train_from_config(config)
    reported = json.loads((tmp_path / "si" / "metrics.json").read_text())["test"]["energy_mae"]
    calculator = Calculator(model)
    errors = []
    for frame in read_extxyz(test_file):
        atoms = frame.to_atoms()
        atoms.calc = calculator
        errors.append(abs(atoms.get_potential_energy() - frame.energy) / len(atoms))
    assert np.isclose(1000.0 * np.mean(errors), reported, rtol=1e-9), (1000.0 * np.mean(errors), reported)
    assert reported < 40.0, f"a working fit ({reported:.2f} meV/atom)"


def test_global_offset_is_opt_in_and_stays_out_of_the_energies(tmp_path):
    """`training.energy_offset: global` fits b as well; the calculator's energy stays the model's
    extensive Σ E_i and the reference's energy is Σ E_i − b."""
    config = molecule_config(tmp_path, "linear")
    config.training.energy_offset = "global"
    model, stats = train_from_config(config)
    b = float(model.energy_offset.detach())
    frame = held_out_frames(config, 1)[0]
    atoms = frame.to_atoms()
    atoms.calc = Calculator(model)
    assert abs(atoms.get_potential_energy() - b - frame.energy) < 3.0 * stats["test"]["energy_structure_mae"] / 1000.0


def test_pair_potential_carries_element_energies(tmp_path):
    """A Lennard-Jones fit to copper EMT data: its energies per element put the calculator on
    the reference's scale too."""
    from forcefit.io import write_extxyz
    from forcefit.structures import Structure

    rng = np.random.default_rng(0)
    from ase.build import bulk
    from ase.calculators.emt import EMT

    frames = []
    for k in range(12):
        atoms = bulk("Cu", "fcc", a=3.6 + 0.02 * (k % 4)).repeat((2, 2, 2))
        atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape)
        atoms.calc = EMT()
        structure = Structure.from_atoms(atoms)
        structure.energy = atoms.get_potential_energy() - 100.0  # an arbitrary zero
        structure.forces = atoms.get_forces()
        frames.append(structure)
    write_extxyz(tmp_path / "cu.extxyz", frames)
    config = Config(
        data=DataConfig(train=str(tmp_path / "cu.extxyz"), split=[0.75, 0.25, 0.0]),
        model=model_settings(kind="lj", cutoff=5.0, parameters={"Cu-Cu": {"epsilon": 0.4, "sigma": 2.3}}),
        training=TrainingConfig(optimizer="lbfgs", epochs=20, learning_rate=1.0),
        output=str(tmp_path / "lj"),
    )
    model, stats = train_from_config(config)
    calculator = Calculator(model)
    for frame in frames[-3:]:
        atoms = frame.to_atoms()
        atoms.calc = calculator
        assert abs(atoms.get_potential_energy() - frame.energy) < 0.05 * len(atoms), (atoms.get_potential_energy(), frame.energy)
