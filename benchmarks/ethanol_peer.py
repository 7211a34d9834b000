"""forcefit against MACE, trained side by side on the bundled ethanol data (GFN2-xTB, 500 K):
the demo's 800/100/100 split (seed 0), one thread each, the same wall time.

    python benchmarks/ethanol_peer.py [--config examples/molecule.yaml] [--mace-epochs 36] [--threads 1]

The peer runs first: a small MACE (`mace-torch` from PyPI, in its own virtual environment
under benchmarks/.peers/mace, made on first use: mace-torch pins an older e3nn than
forcefit's) for a fixed number of epochs, with its own validation set for its learning-rate
schedule and best-epoch choice. Its training wall time is then forcefit's budget
(`training.max_seconds` of the main stage; a closed-form fit takes what it needs). Both
are evaluated once on the test frames; the table gives test energy MAE (meV/atom and
meV per molecule) and force MAE (meV/Å) with the wall times. Writes
results/ethanol_peer.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from ase.io import read, write
from rich.console import Console

from forcefit.config import load_config
from forcefit.run import read_split, train_from_config

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = ROOT / "data" / "ethanol_gfn2xtb_500K.extxyz"
PEER_VENV = HERE / ".peers" / "mace"
MACE_VERSION = "0.3.16"
# a small MACE: 32 invariant channels (max_L 0), two interactions of correlation order 3
MACE_MODEL = ["--model", "MACE", "--num_channels", "32", "--max_L", "0", "--correlation", "3", "--num_interactions", "2"]
MACE_TRAINING = ["--batch_size", "10", "--lr", "0.01", "--energy_weight", "1", "--forces_weight", "100", "--ema", "--ema_decay", "0.99"]


def peer_python(console: Console) -> Path | None:
    """The peer environment's python, made on first use; None (with the reason) when it cannot be."""
    python = PEER_VENV / "bin" / "python"
    if (PEER_VENV / ".installed").exists():
        return python
    torch_pin = f"torch=={torch.__version__.split('+')[0]}"
    console.print(f"making the MACE environment in {PEER_VENV} ({torch_pin}, mace-torch=={MACE_VERSION})")
    steps = [
        [sys.executable, "-m", "venv", str(PEER_VENV)],
        [str(python), "-m", "pip", "install", "-q", torch_pin],
        [str(python), "-m", "pip", "install", "-q", f"mace-torch=={MACE_VERSION}"],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            console.print(f"[red]the MACE peer cannot be installed here[/red]: {' '.join(step)} failed:\n{done.stderr[-2000:]}")
            return None
    (PEER_VENV / ".installed").touch()
    return python


def write_split(config, work: Path) -> dict[str, Path]:
    """The split forcefit trains on, written as extxyz with MACE's REF_ keys."""
    paths = {}
    for name, structures in zip(("train", "valid", "test"), read_split(config)):
        frames = []
        for s in structures:
            atoms = s.to_atoms()
            atoms.info["REF_energy"] = s.energy
            atoms.arrays["REF_forces"] = np.asarray(s.forces)
            frames.append(atoms)
        paths[name] = work / f"{name}.xyz"
        write(paths[name], frames, format="extxyz")
    return paths


def mace_env(threads: int) -> dict:
    """The environment MACE's commands run in: `threads` threads."""
    return dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1")


def train_mace(python: Path, train: Path, valid: Path, work: Path, r_max: float, epochs: int, threads: int, extra=()) -> Path:
    """`mace_run_train` of the small MACE (MACE_MODEL, MACE_TRAINING) on extxyz files with REF_
    keys, float64 on the CPU; returns the model file."""
    command = [
        str(python.parent / "mace_run_train"),
        "--name", "mace", "--work_dir", str(work), "--seed", "0", "--device", "cpu", "--default_dtype", "float64",
        "--train_file", str(train), "--valid_file", str(valid),
        "--energy_key", "REF_energy", "--forces_key", "REF_forces", "--E0s", "average",
        "--r_max", f"{r_max:g}", "--max_num_epochs", str(epochs), *extra, *MACE_MODEL, *MACE_TRAINING,
    ]  # fmt: skip
    done = subprocess.run(command, env=mace_env(threads), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"mace_run_train failed:\n{done.stderr[-3000:]}")
    return work / "mace.model"


def run_mace(python: Path, paths: dict[str, Path], work: Path, epochs: int, threads: int, console: Console) -> dict:
    env = mace_env(threads)
    bin_dir = python.parent
    console.print(f"MACE: {' '.join(MACE_MODEL + MACE_TRAINING)}, r_max 4.0 Å, {epochs} epochs")
    started = time.perf_counter()
    model = train_mace(
        python, paths["train"], paths["valid"], work / "mace", 4.0, epochs, threads, ["--eval_interval", "1", "--error_table", "PerAtomMAE"]
    )
    wall = time.perf_counter() - started
    predicted = work / "mace_test.xyz"
    evaluate = [str(bin_dir / "mace_eval_configs"), "--configs", str(paths["test"]), "--model", str(model), "--output", str(predicted),
                "--default_dtype", "float64", "--device", "cpu"]  # fmt: skip
    done = subprocess.run(evaluate, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"mace_eval_configs failed:\n{done.stderr[-3000:]}")
    reference = read(paths["test"], index=":")
    frames = read(predicted, index=":")
    e_err = [(f.info["MACE_energy"] - r.info["REF_energy"]) / len(r) for f, r in zip(frames, reference)]
    f_err = np.concatenate([(f.arrays["MACE_forces"] - r.arrays["REF_forces"]).ravel() for f, r in zip(frames, reference)])
    count = "import sys, torch; print(sum(p.numel() for p in torch.load(sys.argv[1], weights_only=False).parameters()))"
    counted = subprocess.run([str(python), "-c", count, str(model)], env=env, capture_output=True, text=True)
    return {
        "wall_s": wall,
        "energy_mae": 1000.0 * float(np.mean(np.abs(e_err))),
        "forces_mae": 1000.0 * float(np.mean(np.abs(f_err))),
        "n_atoms": len(reference[0]),
        "epochs": epochs,
        "parameters": int(counted.stdout.split()[-1]) if counted.returncode == 0 else None,
    }


def run_forcefit(config, budget: float | None, n_atoms: int) -> dict:
    config.training.max_seconds = budget
    started = time.perf_counter()
    model, stats = train_from_config(config, console=Console(quiet=True))
    return {
        "wall_s": time.perf_counter() - started,
        "energy_mae": stats["test"]["energy_mae"],
        "forces_mae": stats["test"]["forces_mae"],
        "n_atoms": n_atoms,
        "parameters": sum(p.numel() for p in model.parameters()),
        "model": model.summary(),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--config", default=str(ROOT / "examples" / "molecule.yaml"), help="forcefit's setting (its data paths are replaced)"
    )
    parser.add_argument("--mace-epochs", type=int, default=36)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    console = Console()
    work = ROOT / "runs" / "ethanol_peer"
    work.mkdir(parents=True, exist_ok=True)
    config = load_config(args.config)
    config.data.train, config.data.validation, config.data.test = [str(DATA)], None, None
    config.data.split, config.data.split_seed = [0.8, 0.1, 0.1], 0
    config.output = str(work / "forcefit")
    paths = write_split(config, work)
    results = {}
    python = peer_python(console)
    if python is None:
        budget = None
    else:
        results["MACE"] = run_mace(python, paths, work, args.mace_epochs, args.threads, console)
        budget = results["MACE"]["wall_s"]
        console.print(f"MACE: {results['MACE']}")
    shutil.rmtree(config.output, ignore_errors=True)
    results["forcefit"] = run_forcefit(config, budget, len(read(paths["test"], index=0)))
    console.print(f"forcefit: {results['forcefit']}")
    rows = [
        "| model | parameters | training wall (s) | test E MAE (meV/atom) | test E MAE (meV/molecule) | test F MAE (meV/Å) |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        rows.append(
            f"| {name} | {r['parameters'] or ''} | {r['wall_s']:.0f} | {r['energy_mae']:.3f} | {r['energy_mae'] * r['n_atoms']:.2f} | {r['forces_mae']:.1f} |"
        )
    header = (
        f"Ethanol (GFN2-xTB, 500 K), 800/100/100 frames (seed 0), {args.threads} thread(s), one run: "
        f"`python benchmarks/ethanol_peer.py --config {os.path.relpath(args.config, ROOT)} --mace-epochs {args.mace_epochs}`\n\n"
        f"MACE {MACE_VERSION}: {' '.join(MACE_MODEL + MACE_TRAINING)}, r_max 4.0 Å, {args.mace_epochs} epochs; "
        f"forcefit: {results['forcefit']['model']}, budget = MACE's training wall time"
        + ("" if python else " (MACE could not be installed here: no peer figure)")
    )
    table = header + "\n\n" + "\n".join(rows) + "\n"
    console.print(table)
    (HERE / "results" / "ethanol_peer.md").write_text(table)
    (HERE / "results" / "ethanol_peer.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
