"""Data-parallel training: `torchrun --nproc_per_node 2 -m forcefit train` on two CPU
processes (gloo) follows the one-process run with the same global batch, writes its
files from rank 0 only, and resumes exactly."""

import os
import subprocess
import sys

import torch
import yaml
from rich.console import Console

from conftest import ROOT
from forcefit.config import load_config
from forcefit.run import train_from_config


def write_config(tmp_path, epochs: int):
    config = {
        "data": {"train": str(ROOT / "data" / "ethanol_gfn2xtb_500K.extxyz"), "max_structures": 40, "split": [0.8, 0.1, 0.1]},
        "model": {"kind": "bpnn", "cutoff": 4.0, "n_radial": 4, "n_angular": 2, "hidden": [8]},
        "training": {"epochs": epochs, "batch_size": 8, "learning_rate": 0.003, "energy_weight": 100.0, "seed": 3},
    }
    path = tmp_path / f"config_{epochs}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def torchrun(config, output, *extra):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    command += ["-m", "forcefit", "train", str(config), "--output", str(output), "--threads", "1", *extra]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def parameters(run_dir):
    return torch.load(run_dir / "checkpoint.pt", weights_only=True)["model"]


def test_two_ranks_follow_one_rank_and_resume_exactly(tmp_path):
    four = write_config(tmp_path, 4)
    config = load_config(four)
    config.output = str(tmp_path / "one")
    torch.set_num_threads(1)
    train_from_config(config, console=Console(quiet=True))

    log = torchrun(four, tmp_path / "two")
    assert log.count("epoch    4") == 1  # one rank prints: the log is not doubled
    one, two = parameters(tmp_path / "one"), parameters(tmp_path / "two")
    for name, value in one.items():
        scale = value.abs().max().clamp(min=1e-300)
        assert float((value - two[name]).abs().max() / scale) <= 1e-10, name
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(p.name for p in (tmp_path / "one").iterdir())

    torchrun(write_config(tmp_path, 2), tmp_path / "split")
    assert torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=True)["epoch"] == 2
    torchrun(four, tmp_path / "split", "--resume")
    resumed = parameters(tmp_path / "split")
    for name, value in two.items():
        assert torch.equal(value, resumed[name]), name
