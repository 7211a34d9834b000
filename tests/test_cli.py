"""The command line: strict config, a full tiny training run, evaluate, resume, md."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from conftest import ROOT
from forcefit.cli import main
from forcefit.config import config_from_dict

DATA = str(ROOT / "data" / "ethanol_gfn2xtb_500K.extxyz")


def tiny_config(tmp_path: Path, epochs=2) -> Path:
    config = {
        "data": {"train": DATA, "max_structures": 60, "split": [0.7, 0.15, 0.15]},
        "model": {"cutoff": 4.0, "n_radial": 4, "n_angular": 2, "hidden": [8, 8]},
        "training": {"epochs": epochs, "batch_size": 8},
        "output": str(tmp_path / "run"),
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_misspelt_key_is_an_error_naming_valid_keys():
    with pytest.raises(ValueError, match=r"training: unknown key\(s\) \['learnin_rate'\]; valid keys are .*'learning_rate'"):
        config_from_dict({"data": {"train": "x"}, "training": {"learnin_rate": 1e-3}})
    with pytest.raises(ValueError, match=r"unknown section\(s\) \['modle'\]"):
        config_from_dict({"data": {"train": "x"}, "modle": {}})


def test_numbers_from_yaml_are_checked_and_converted():
    # PyYAML reads 1e-3 and 2e4 (no dot) as strings; they must still be numbers
    text = "data: {train: x}\nmodel: {hidden: [64, 64.0], zetas: [1, 4]}\ntraining: {learning_rate: 1e-3, energy_weight: 2e4, epochs: 10.0, stage_two_learning_rate: 2e-4}\n"
    config = config_from_dict(yaml.safe_load(text))
    assert config.training.learning_rate == 1e-3 and isinstance(config.training.learning_rate, float)
    assert config.training.energy_weight == 2e4 and config.training.stage_two_learning_rate == 2e-4
    assert config.training.epochs == 10 and isinstance(config.training.epochs, int)
    assert config.model.hidden == [64, 64] and config.model.zetas == [1.0, 4.0]
    assert config_from_dict(config.to_dict()) == config  # the resolved config saved in a run reads back
    assert config_from_dict({"data": {"train": "x", "length_unit": "bohr"}}).data.length_unit == "bohr"
    with pytest.raises(ValueError, match=r"training.epochs: expected a number, got 'ten'"):
        config_from_dict({"data": {"train": "x"}, "training": {"epochs": "ten"}})
    with pytest.raises(ValueError, match=r"training.batch_size: expected a whole number, got 2.5"):
        config_from_dict({"data": {"train": "x"}, "training": {"batch_size": 2.5}})
    with pytest.raises(ValueError, match=r"model.hidden\[1\]: expected a number"):
        config_from_dict({"data": {"train": "x"}, "model": {"hidden": [64, "wide"]}})
    with pytest.raises(ValueError, match=r"training.energy_per_atom: expected true or false"):
        config_from_dict({"data": {"train": "x"}, "training": {"energy_per_atom": "yes please"}})
    with pytest.raises(ValueError, match=r"training.epochs: expected int, got True"):  # not read as 1
        config_from_dict({"data": {"train": "x"}, "training": {"epochs": True}})


def test_train_evaluate_resume_and_md(tmp_path, capsys):
    config = tiny_config(tmp_path)
    assert main(["train", str(config)]) == 0
    run = tmp_path / "run"
    for name in (
        "model.ffm",
        "checkpoint.pt",
        "config.yaml",
        "errors.txt",
        "metrics.json",
        "history.csv",
        "parity_energy.png",
        "parity_forces.png",
        "learning_curve.png",
    ):
        assert (run / name).is_file(), name
    out = capsys.readouterr().out
    assert "epoch    2" in out and "meV/atom" in out and "test" in out
    # a second run into the same directory must not silently overwrite it
    assert main(["train", str(config)]) == 1
    # resume continues to the new epoch count
    text = config.read_text().replace("epochs: 2", "epochs: 3")
    config.write_text(text)
    assert main(["train", str(config), "--resume"]) == 0
    assert "resumed from" in capsys.readouterr().out
    assert len((run / "history.csv").read_text().strip().splitlines()) == 1 + 3
    assert main(["evaluate", str(run / "model.ffm"), DATA, "--output", str(tmp_path / "eval"), "--device", "cpu"]) == 0
    assert (tmp_path / "eval" / "parity_forces.png").is_file()
    if not torch.cuda.is_available():  # asking for a GPU that is not there: said, not a traceback
        assert main(["evaluate", str(run / "model.ffm"), DATA, "--device", "cuda"]) == 1
        assert "torch sees no GPU here" in capsys.readouterr().err
    threads = torch.get_num_threads()
    try:
        assert main(["md", str(run / "model.ffm"), DATA, "--steps", "20", "--timestep", "0.25", "--threads", "1"]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    assert "energy drift" in capsys.readouterr().out
    assert main(["md", str(run / "model.ffm"), DATA, "--threads", "0"]) == 1
    assert "--threads 0: expected a positive number" in capsys.readouterr().err


def test_missing_file_is_reported_not_a_traceback(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "none.ffm"), DATA]) == 1
    assert "none.ffm: no such model file" in capsys.readouterr().err


def test_every_model_kind_trains_from_yaml_and_runs_in_ase(tmp_path):
    from forcefit.calculator import Calculator
    from forcefit.io import read_extxyz, write_extxyz
    from forcefit.models import LennardJones
    from forcefit.testing import evaluate
    from test_pair import argon_data

    truth = LennardJones(["Ar"], 7.0, {"Ar-Ar": {"epsilon": 0.0104, "sigma": 3.40}})
    write_extxyz(tmp_path / "argon.extxyz", argon_data(truth, 10))
    configs = {
        "lj": {
            "data": {"train": str(tmp_path / "argon.extxyz"), "split": [0.8, 0.2, 0.0]},
            "model": {"kind": "lj", "cutoff": 7.0, "parameters": {"Ar-Ar": {"epsilon": 0.02, "sigma": 3.2}}},
            "training": {"optimizer": "lbfgs", "learning_rate": 1.0, "epochs": 10, "batch_size": 8},
        },
        "linear": {
            "data": {"train": DATA, "max_structures": 40},
            "model": {"kind": "linear", "cutoff": 4.0, "n_radial": 3, "n_angular": 1},
            "training": {"optimizer": "ridge", "energy_weight": 10.0},
        },
    }
    for kind, config in configs.items():
        config["output"] = str(tmp_path / kind)
        path = tmp_path / f"{kind}.yaml"
        path.write_text(yaml.safe_dump(config))
        assert main(["train", str(path)]) == 0, kind
        calc = Calculator.load(tmp_path / kind / "model.ffm")
        atoms = read_extxyz(config["data"]["train"])[0].to_atoms()
        atoms.calc = calc
        assert np.isfinite(atoms.get_potential_energy()) and np.isfinite(atoms.get_forces()).all()
    fitted = read_extxyz(tmp_path / "argon.extxyz")[0]
    _, forces, _ = evaluate(truth, fitted)
    atoms = fitted.to_atoms()
    atoms.calc = Calculator.load(tmp_path / "lj" / "model.ffm")
    assert np.allclose(atoms.get_forces(), forces, atol=1e-6)
    assert main(["export-lammps", str(tmp_path / "lj" / "model.ffm"), str(tmp_path / "native"), "--table"]) == 0
    assert "pair_style" in (tmp_path / "native" / "pair.lammps").read_text()


@pytest.mark.parametrize(("example", "family", "element"), [("mlearn_mo.yaml", "bpnn", "Mo"), ("crystal.yaml", "ace-linear", "Si")])
def test_example_config_is_the_benchmark_setting(example, family, element):
    """The crystal recipes must train what benchmarks/mlearn.py measured."""
    import importlib.util

    from conftest import shared_path
    from forcefit.config import load_config

    root = Path(__file__).resolve().parents[1]
    shared_path(f"data/mlearn/{element}_train.extxyz")
    config = load_config(root / "examples" / example)
    assert Path(config.data.train).is_file() and Path(config.data.test).is_file()
    spec = importlib.util.spec_from_file_location("mlearn_benchmark", root / "benchmarks" / "mlearn.py")
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    measured = benchmark.config_for(family, element, None, Path("runs"))
    assert config.model == measured.model
    assert config.training == measured.training
    assert config.data.split == measured.data.split


def test_molecule_example_trains_and_predicts(tmp_path):
    """examples/molecule.yaml (the setting benchmarks/ethanol_peer.py races) as a user runs it,
    on a few frames of its own data: a closed-form fit, a model file, a calculator."""
    from ase.io import read

    from forcefit.calculator import Calculator
    from forcefit.config import load_config

    root = Path(__file__).resolve().parents[1]
    values = yaml.safe_load((root / "examples" / "molecule.yaml").read_text())
    values["data"]["train"] = str((root / "examples" / values["data"]["train"]).resolve())
    values["data"]["max_structures"] = 40
    values["model"]["ace"].update(n_radial=3, l_max=2, n_radial_4=2, l_max_4=1)  # the recipe's kind and solver, a smaller basis
    values["output"] = str(tmp_path / "molecule")
    (tmp_path / "molecule.yaml").write_text(yaml.safe_dump(values))
    assert load_config(tmp_path / "molecule.yaml").model.descriptor == "ace"
    assert main(["train", str(tmp_path / "molecule.yaml")]) == 0
    atoms = read(values["data"]["train"], index=0)
    atoms.calc = Calculator.load(tmp_path / "molecule" / "model.ffm")
    assert np.isfinite(atoms.get_potential_energy()) and abs(atoms.get_forces().sum(axis=0)).max() < 1e-9


def test_evaluate_reports_per_structure_and_per_group(tmp_path, capsys):
    """evaluate on an ASE database with config_type labels: predictions CSV (extensive model
    energy and the same on the reference's scale), tables per group, extrapolation counts,
    the worst structures; the same data as an extxyz gives the same numbers."""
    import csv
    import json

    import ase.db
    from ase.io import read

    assert main(["train", str(tiny_config(tmp_path))]) == 0
    frames = read(DATA, index=":12")
    with ase.db.connect(str(tmp_path / "data.db")) as database:
        for k, atoms in enumerate(frames):
            database.write(atoms, config_type="warm" if k % 3 else "hot")
    model = str(tmp_path / "run" / "model.ffm")
    assert main(["evaluate", model, str(tmp_path / "data.db"), "--output", str(tmp_path / "eval"), "--worst", "3"]) == 0
    out = capsys.readouterr().out
    assert "errors per configuration group" in out and "hot" in out and "largest force errors" in out
    rows = list(csv.DictReader((tmp_path / "eval" / "predictions_data.db.csv").open()))
    assert len(rows) == 12 and {r["group"] for r in rows} == {"hot", "warm"}
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    b = metrics["energy_offset_eV"]
    for row, atoms in zip(rows, frames):
        assert np.isclose(float(row["model_energy_on_reference_scale_eV"]), float(row["model_energy_eV"]) - b)
        assert np.isclose(float(row["reference_energy_eV"]), atoms.get_potential_energy())
    assert set(metrics["groups"]["data.db"]) == {"hot", "warm"} and metrics["data.db"]["n_structures"] == 12
    assert "extrapolating_structures" in metrics["data.db"] and "energy_structure_mae" in metrics["data.db"]


def test_units_apply_to_every_format(tmp_path, capsys):
    """kcal/mol in an extxyz is converted (it was silently read as eV), and md/relax read an
    n2p2 input.data in the units the user states (ASE assumed Bohr: Å files shrank to 53 %)."""
    from ase import units

    from forcefit.io import read_structures, write_extxyz, write_input_data

    structures = read_structures(DATA)[:5]
    kcal = units.kcal / units.mol
    scaled = [type(s)(numbers=s.numbers, positions=s.positions, energy=s.energy / kcal, forces=s.forces / kcal) for s in structures]
    write_extxyz(tmp_path / "kcal.extxyz", scaled)
    config = yaml.safe_load(tiny_config(tmp_path).read_text())
    config["data"].update(train=str(tmp_path / "kcal.extxyz"), energy_unit="kcal/mol", max_structures=None)
    from forcefit.config import config_from_dict
    from forcefit.run import read_split

    train, validation, test = read_split(config_from_dict(config))
    energies = sorted(s.energy for s in train + validation + test)
    assert np.allclose(energies, sorted(s.energy for s in structures), rtol=1e-8)
    with pytest.raises(ValueError, match=r"data.energy_unit: 'kcal' is not a number or one of"):
        config_from_dict({"data": {"train": "x", "energy_unit": "kcal"}})

    assert main(["train", str(tiny_config(tmp_path))]) == 0
    model = str(tmp_path / "run" / "model.ffm")
    write_input_data(tmp_path / "input.data", structures[:1], length_unit=1.0, energy_unit=1.0)  # in Å
    assert main(["relax", model, str(tmp_path / "input.data"), "--fmax", "10"]) == 1
    assert "carries no units" in capsys.readouterr().err
    assert (
        main(["relax", model, str(tmp_path / "input.data"), "--length-unit", "angstrom", "--fmax", "10", "--output", str(tmp_path / "r")])
        == 0
    )
    from ase.io import read

    relaxed = read(tmp_path / "r" / "relaxed.extxyz")  # --output is a report directory, as for eos, elastic, phonons
    assert json.loads((tmp_path / "r" / "relax.json").read_text())["max_force_eV_A"] < 10
    bond = np.linalg.norm(relaxed.positions[0] - relaxed.positions[1])
    original = np.linalg.norm(structures[0].positions[0] - structures[0].positions[1])
    assert abs(bond - original) < 0.05 * original, "the molecule keeps its size"


def test_config_errors_leave_no_run_directory_and_info_describes_a_model(tmp_path, capsys):
    config = yaml.safe_load(tiny_config(tmp_path).read_text())
    config["model"]["elements"] = ["C", "H"]  # the data also hold O
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(config))
    assert main(["train", str(tmp_path / "bad.yaml")]) == 1
    assert "does not cover elements" in capsys.readouterr().err and not (tmp_path / "run").exists()
    config["model"]["elements"] = None
    config["data"]["train"] = [DATA, DATA]  # a list of files
    (tmp_path / "two.yaml").write_text(yaml.safe_dump(config))
    assert main(["train", str(tmp_path / "two.yaml")]) == 0
    assert main(["info", str(tmp_path / "run" / "model.ffm")]) == 0
    out = capsys.readouterr().out
    import forcefit

    assert (
        f"written by forcefit {forcefit.__version__}" in out
        and "elements ['H', 'C', 'O']" in out
        and "energies on the reference data's scale" in out
    )


def test_keys_of_another_model_kind_are_refused_not_ignored(tmp_path):
    from forcefit.io import read_structures
    from forcefit.run import build_model

    structures = read_structures(DATA)[:2]
    for model, message in (
        (
            {"kind": "bpnn", "cutoff_mode": "smooth"},
            r"model: unknown key\(s\) \['cutoff_mode'\] for kind 'bpnn'; valid keys are \[.*'hidden'.*\]",
        ),
        ({"kind": "bpnn", "parameters": [1, 2]}, r"unknown key\(s\) \['parameters'\] for kind 'bpnn'"),
        (
            {"kind": "lj", "hidden": [4], "parameters": {"H-H": {"epsilon": 1, "sigma": 1}}},
            r"unknown key\(s\) \['hidden'\] for kind 'lj'; valid keys are \[.*'parameters'.*\]",
        ),
        ({"kind": "lj", "parameters": [1, 2]}, r"model.parameters: expected a mapping, got \[1, 2\]"),
        (
            {"kind": "lj", "cutoff_mode": "smooth", "parameters": {"H-H": {"epsilon": 1, "sigma": 1}}},
            r"model.cutoff_mode: expected 'shift' or 'switch', got 'smooth'",
        ),
        ({"kind": "morse", "parameters": {"H-H": {"D": 1, "alpha": 1, "r0": 1, "eps": 2}}}, r"unknown parameter\(s\) \['H-H.eps'\]"),
    ):
        with pytest.raises(ValueError, match=message):
            build_model(config_from_dict({"data": {"train": DATA}, "model": model}), structures)
