"""Never a silent wrong answer: broken training data, outliers, resumes with other settings,
resource blow-ups, unsafe MD, and messages that name the file and the cause."""

import numpy as np
import pytest
import torch
import yaml
from ase.io import read, write

from conftest import tiny_bpnn, water_cluster
from forcefit.calculator import Calculator
from forcefit.cli import main
from forcefit.data import make_graph
from forcefit.models.saving import save_model
from forcefit.training.metrics import collect, error_statistics
from forcefit.workflows.md import MDRecording, MDSettings, run_md
from test_cli import DATA, tiny_config


def config_with(tmp_path, frames, **data):
    write(tmp_path / "data.extxyz", frames)
    config = yaml.safe_load(tiny_config(tmp_path).read_text())
    config["data"].update(train=str(tmp_path / "data.extxyz"), max_structures=None, **data)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_overlapping_atoms_stop_training_naming_the_structure(tmp_path, capsys):
    """Two atoms at one position (with the distance check switched off): the descriptors are
    NaN; training stops naming the frame, writes no model and leaves no run directory."""
    frames = read(DATA, index=":30")
    frames[7].positions[2] = frames[7].positions[1]
    assert main(["train", str(config_with(tmp_path, frames))]) == 1  # by default the reader refuses it
    assert "data.extxyz frame 8" in capsys.readouterr().err
    assert main(["train", str(config_with(tmp_path, frames, min_distance=0.0))]) == 1
    err = capsys.readouterr().err
    assert "are not finite" in err and "data.extxyz frame 8" in err
    assert not (tmp_path / "run").exists()


def test_non_finite_predictions_are_counted_refused_and_never_saved(tmp_path):
    model = tiny_bpnn()
    with torch.no_grad():
        model.networks[0][0].bias[0] = float("nan")  # H atoms get NaN energies
    graphs = [model.graph(s) for s in (water_cluster(0), water_cluster(1))]
    stats = error_statistics(collect(model, graphs), model.elements)
    assert stats["n_nonfinite"] == 2 and np.isnan(stats["forces_mae"]), "NaN predictions are reported, not dropped"
    atoms = water_cluster(0).to_atoms()
    atoms.calc = Calculator(model)
    with pytest.raises(FloatingPointError, match="non-finite energy and forces"):
        atoms.get_potential_energy()
    with pytest.raises(FloatingPointError, match=r"not writing .*m.ffm: the model's networks.0.0.bias hold NaN"):
        save_model(model, tmp_path / "m.ffm")
    assert not (tmp_path / "m.ffm").exists()


@pytest.mark.parametrize("corrupt, reason", [("forces", "RMS force"), ("energy", "energy")])
def test_corrupted_labels_are_named_before_training(tmp_path, capsys, corrupt, reason):
    frames = read(DATA, index=":40")
    if corrupt == "forces":
        frames[11].calc.results["forces"] *= 1e6
    else:
        frames[11].calc.results["energy"] += 1e6
    assert main(["train", str(config_with(tmp_path, frames))]) == 1
    err = capsys.readouterr().err
    assert "data.extxyz frame 12" in err and reason in err and "data.outliers: exclude" in err
    assert main(["train", str(config_with(tmp_path, frames, outliers="exclude"))]) == 0
    out = capsys.readouterr().out
    assert "excluded from training" in out and "data: 27 train, 6 validation, 6 test" in out  # 39 of the 40 frames


def test_neighbour_lists_that_cannot_fit_are_refused_with_the_numbers():
    from ase.build import bulk

    from forcefit.structures import Structure

    silicon = Structure.from_atoms(bulk("Si", "diamond", a=5.43, cubic=True).repeat((2, 2, 2)))
    with pytest.raises(ValueError, match=r"a cutoff of 29 Å .* on 64 atoms would give about .* triplets .* FORCEFIT_MAX_TRIPLETS"):
        make_graph(silicon, 29.0, 29.0)
    from forcefit.config import config_from_dict

    with pytest.raises(ValueError, match=r"model.cutoff: -4.0 Å; expected a distance in \(0, 30\] Å"):
        config_from_dict({"data": {"train": "x"}, "model": {"cutoff": -4.0}})
    with pytest.raises(ValueError, match=r"model.r_min: 0.8 Å; expected 0 ≤ r_min < model.cutoff \(0.5 Å\)"):
        config_from_dict({"data": {"train": "x"}, "model": {"cutoff": 0.5}})


def test_resume_refuses_other_settings_and_damaged_checkpoints(tmp_path, capsys):
    config = tiny_config(tmp_path)
    assert main(["train", str(config)]) == 0
    original = yaml.safe_load(config.read_text())
    for section, key, value, shown in (
        ("training", "learning_rate", 0.01, "training.learning_rate: 0.001 → 0.01"),
        ("data", "split_seed", 3, "data.split_seed: 0 → 3"),
        ("model", "hidden", [16, 16], "model.hidden: [8, 8] → [16, 16]"),
    ):
        changed = yaml.safe_load(config.read_text())
        changed[section][key] = value
        (tmp_path / "changed.yaml").write_text(yaml.safe_dump(changed))
        assert main(["train", str(tmp_path / "changed.yaml"), "--resume"]) == 1
        assert shown in capsys.readouterr().err
    original["training"]["epochs"] = 3  # more epochs is what --resume is for
    (tmp_path / "more.yaml").write_text(yaml.safe_dump(original))
    (tmp_path / "run" / "checkpoint.pt").write_bytes(b"")
    assert main(["train", str(tmp_path / "more.yaml"), "--resume"]) == 1
    assert "checkpoint.pt: the checkpoint cannot be read (empty, truncated or damaged" in capsys.readouterr().err


def test_a_full_disk_is_named(tmp_path, monkeypatch):
    from forcefit.models import saving

    def full(obj, path):
        raise RuntimeError("[enforce fail at inline_container.cc] . unexpected pos 227072 vs 226960")

    monkeypatch.setattr(saving.torch, "save", full)
    with pytest.raises(OSError, match=r"cannot write .*m.ffm: .* \(is the disk full or the folder read-only\?\)"):
        save_model(tiny_bpnn(), tmp_path / "m.ffm")
    assert not list(tmp_path.iterdir()), "no half-written file is left"


def test_md_stops_when_it_leaves_the_model_or_heats_up(tmp_path, capsys):
    from ase.calculators.emt import EMT

    squeezed = water_cluster(0).to_atoms()
    squeezed.positions *= 0.7  # every atom's environment is outside the training range
    result = run_md(squeezed, Calculator(tiny_bpnn()), MDSettings(50, 0.25), MDRecording(progress=False))
    assert result.unsafe and "atoms outside the training range" in result.stopped and len(result.times_ps) == 1

    class Violent(EMT):
        def calculate(self, *args, **kwargs):
            super().calculate(*args, **kwargs)
            self.results["forces"] = self.results["forces"] * 200.0

    result = run_md(read(DATA, index=0), Violent(), MDSettings(400, 0.5, 300), MDRecording(progress=False))
    assert result.unsafe and "temperature" in result.stopped and len(result.times_ps) < 401
    save_model(tiny_bpnn(), tmp_path / "m.ffm")
    write(tmp_path / "s.xyz", squeezed)
    assert main(["md", str(tmp_path / "m.ffm"), str(tmp_path / "s.xyz"), "--steps", "10"]) == 1
    err = capsys.readouterr().err
    assert "MD stopped" in err and "outside the training range" in err


def test_nan_predictions_stop_training_naming_the_structure():
    """Missing labels are masked, but a NaN prediction (e.g. from NaN descriptors) is not
    turned into a zero error: the loss becomes NaN and training stops naming the frame."""
    from forcefit.config import TrainingConfig
    from forcefit.training.trainer import Trainer
    from test_training import ethanol, ethanol_model

    model, graphs = ethanol_model(ethanol(16))
    graphs[5].features[0, 0] = float("nan")
    graphs[2].ref_energy[0] = float("nan")  # an unlabelled energy is fine
    trainer = Trainer(model, graphs, [], TrainingConfig(epochs=1, batch_size=16), names=[f"frame {n + 1}" for n in range(16)])
    with pytest.raises(FloatingPointError, match=r"loss became nan on structure\(s\) frame 6;"):
        trainer.fit()
