"""The active-learning loop: selection rule, labelling, appending, resuming."""

import json

import numpy as np
import yaml
from ase.io import read

from al_reference import CountingLJ
from forcefit.cli import main
from forcefit.io import write_extxyz
from forcefit.models import LennardJones
from forcefit.workflows.active_learning import select_frames
from test_pair import argon_data


def test_selection_takes_the_largest_disagreements_with_spacing():
    values = np.array([0.1, 0.9, 0.8, 0.2, 0.7, 0.05, 0.95, 0.3])
    assert select_frames(values, 3, 1) == [1, 2, 6]
    assert select_frames(values, 3, 2) == [1, 4, 6]  # 2 is too close to 1
    assert select_frames(values, 10, 3) == [1, 6]  # greedy: 0.95 and 0.9 block every other frame


def argon_loop(tmp_path, **learn) -> dict:
    """A learn config on 8 LJ argon frames labelled by CountingLJ (the reference); `learn` overrides."""
    truth = LennardJones(["Ar"], 7.0, {"Ar-Ar": {"epsilon": 0.0104, "sigma": 3.40}})
    write_extxyz(tmp_path / "start.extxyz", argon_data(truth, 8))
    return {
        "learn": {
            "dataset": str(tmp_path / "start.extxyz"),
            "reference": "al_reference:CountingLJ",
            "rounds": 1,
            "select": 3,
            "min_spacing": 5,
            "md_steps": 30,
            "timestep": 2.0,
            "temperature": 80.0,
            **learn,
        },
        "data": {"split": [0.75, 0.25, 0.0]},
        "model": {"kind": "lj", "cutoff": 7.0, "parameters": {"Ar-Ar": {"epsilon": 0.02, "sigma": 3.3}}},
        "training": {"optimizer": "lbfgs", "learning_rate": 1.0, "epochs": 3, "batch_size": 8, "committee": 2, "committee_fraction": 0.6},
        "output": str(tmp_path / "al"),
    }


def test_loop_appends_labels_and_resumes_without_relabelling(tmp_path):
    config = argon_loop(tmp_path)
    path = tmp_path / "learn.yaml"
    path.write_text(yaml.safe_dump(config))
    CountingLJ.calls = 0
    original = (tmp_path / "start.extxyz").read_bytes()
    assert main(["learn", str(path)]) == 0
    assert CountingLJ.calls == 3
    assert (tmp_path / "start.extxyz").read_bytes() == original, "the user's dataset is never edited"
    frames = read(tmp_path / "al" / "dataset.extxyz", index=":")
    assert len(frames) == 11 and [a.info.get("al_round") for a in frames[-3:]] == [1, 1, 1]
    # the new labels are the reference's, not the model's
    check = frames[-1].copy()
    check.calc = CountingLJ()
    assert np.allclose(check.get_forces(), frames[-1].get_forces(), atol=1e-6)
    CountingLJ.calls = 0
    config["learn"]["rounds"] = 2
    path.write_text(yaml.safe_dump(config))
    assert main(["learn", str(path)]) == 0
    assert CountingLJ.calls == 3  # round 1 is not labelled again
    report = json.loads((tmp_path / "al" / "learn_report.json").read_text())
    assert [r["round"] for r in report] == [1, 2, "final"] and report[1]["dataset_size"] == 14
    assert all(r["max_force_std_md"] >= max(r["selected_force_std"]) for r in report[:2])
    # the final model is trained on every label, the last round's included
    final = yaml.safe_load((tmp_path / "al" / "final" / "config.yaml").read_text())
    assert final["data"]["train"] == str(tmp_path / "al" / "dataset.extxyz") and report[-1]["dataset_size"] == 14
    assert report[-1]["labelled_rounds"] == 2 and (tmp_path / "al" / "final" / "model.ffm").is_file()


def test_gamma_selection_trains_one_model_per_round(tmp_path):
    """`selection: gamma`: one linear model per round (no committee), frames chosen by γ."""
    config = argon_loop(tmp_path, select=2, selection="gamma")
    config["model"] = {"kind": "linear", "cutoff": 6.0, "n_radial": 4, "n_angular": 2}
    config["training"] = {"optimizer": "ridge"}
    (tmp_path / "learn.yaml").write_text(yaml.safe_dump(config))
    CountingLJ.calls = 0
    assert main(["learn", str(tmp_path / "learn.yaml")]) == 0
    assert CountingLJ.calls == 2
    assert not (tmp_path / "al" / "round_1" / "member_0").exists()  # one model, no committee
    report = json.loads((tmp_path / "al" / "learn_report.json").read_text())
    assert report[0]["selection"] == "gamma" and len(report[0]["selected_gamma"]) == 2
    assert len(read(tmp_path / "al" / "dataset.extxyz", index=":")) == 10
