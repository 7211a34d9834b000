"""Training at a scale whose descriptor cache does not fit in memory.

    python benchmarks/training_scale.py [--structures 20000] [--held-out 120] [--memory-gb 1.0] [--epochs 3]
                                        [--recompute-epochs 1] [--subset 200] [--subset-epochs 30]
                                        [--targets 300 200 150] [--threads 1] [--workdir runs/scale]

Data: `--structures` periodic fcc Cu cells of 72 atoms (71 with a vacancy), each with its
own lattice constant, shear strain and thermal-like displacements, labelled by ASE's EMT
(energies, forces, stresses), plus a validation and a test set of `--held-out` cells
drawn the same way; generated once into the work directory (two processes).

Runs, each a fresh `forcefit train` process with `training.memory_gb = --memory-gb`:
  full set, cache: auto       auto finds that the dense cache exceeds the budget → disk
  full set, cache: recompute  descriptors rebuilt by the engine for every batch
                              (`--recompute-epochs`: its path is the disk run's, bit for
                              bit, which the script checks on the validation errors)
  `--subset` training cells, cache: auto   fits in the budget → memory (today's mode)
All three share the validation and test sets and every setting but the data mode and
the epoch count. Reported: the mode chosen and why, peak RSS, setup time (reading,
neighbours, cache, final evaluation), mean epoch time, training time to reach each
validation force RMSE of `--targets` meV/Å (fixed before the run), and the test errors
at the end. Writes results/training_scale.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import yaml

HERE = Path(__file__).resolve().parent
VALIDATION_SEED, TEST_SEED = 10**6, 2 * 10**6

ONE_RUN = r"""
import json, resource, sys, time
import torch
torch.set_num_threads(int(sys.argv[2]))
from rich.console import Console
from forcefit.config import load_config
from forcefit.run import train_from_config
started = time.perf_counter()
console = Console(record=True, width=220)
_, stats = train_from_config(load_config(sys.argv[1]), console=console)
print(json.dumps({"wall": time.perf_counter() - started, "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
                  "test": stats["test"], "log": console.export_text()}))
"""


def cell(seed: int):
    """One labelled Cu cell: lattice constant, shear, displacements and vacancies drawn from `seed`."""
    from ase.build import bulk
    from ase.calculators.emt import EMT

    rng = np.random.default_rng(seed)
    atoms = bulk("Cu", "fcc", a=3.61 * (1 + rng.uniform(-0.03, 0.04)), cubic=True) * (3, 3, 2)
    strain = np.eye(3) + rng.uniform(-0.02, 0.02, (3, 3))
    atoms.set_cell(atoms.cell @ (0.5 * (strain + strain.T)), scale_atoms=True)
    if rng.random() < 0.15:
        del atoms[int(rng.integers(len(atoms)))]
    atoms.positions += rng.normal(0.0, rng.uniform(0.02, 0.15), atoms.positions.shape)
    atoms.calc = EMT()
    energy, forces, stress = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress(voigt=False)
    atoms.calc = None
    atoms.info.update(energy=energy, stress=stress)
    atoms.arrays["forces"] = forces
    return atoms


def generate(path: Path, seeds: range) -> None:
    from ase.io import write

    if path.exists():
        return
    started = time.perf_counter()
    with Pool(2) as pool:
        frames = pool.map(cell, seeds, chunksize=200)
    write(path.with_suffix(".partial.extxyz"), frames, format="extxyz")
    path.with_suffix(".partial.extxyz").rename(path)
    print(f"{path}: {len(frames)} cells labelled by EMT in {time.perf_counter() - started:.0f} s", flush=True)


def config(args, name: str, train: Path, validation: Path, test: Path, cache: str, max_structures: int | None, epochs: int) -> Path:
    values = {
        "data": {"train": str(train), "validation": str(validation), "test": str(test), "max_structures": max_structures},
        "model": {"kind": "bpnn", "cutoff": 5.0, "r_min": 2.0, "n_radial": 8, "n_angular": 4, "hidden": [24, 24]},
        "training": {
            "epochs": epochs,
            "batch_size": 32,
            "learning_rate": 0.003,
            "energy_weight": 100.0,
            "early_stopping": 100,
            "memory_gb": args.memory_gb,
            "cache": cache,
            "cache_dir": str(args.workdir / "cache"),
            "seed": 0,
        },
        "output": str(args.workdir / name),
    }
    path = args.workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    return path


def run(args, path: Path) -> dict:
    import shutil

    shutil.rmtree(yaml.safe_load(path.read_text())["output"], ignore_errors=True)
    done = subprocess.run([sys.executable, "-c", ONE_RUN, str(path), str(args.threads)], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{path}: {done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    history = list(csvrows(Path(yaml.safe_load(path.read_text())["output"]) / "history.csv"))
    log = result.pop("log")
    result["mode"] = re.search(r"training data: (.*)", log).group(1).strip()
    result["epochs"] = [float(h["seconds"]) for h in history]
    result["validation_forces_rmse"] = [float(h["validation_forces_rmse"]) for h in history]
    result["train_seconds"] = result["epochs"][-1]
    result["setup_seconds"] = result["wall"] - result["train_seconds"]  # reading, neighbours, cache, final evaluation
    result["seconds_to_target"] = {}
    for target in args.targets:
        reached = [t for t, f in zip(result["epochs"], result["validation_forces_rmse"]) if f <= target]
        result["seconds_to_target"][str(target)] = reached[0] if reached else None
    written = re.search(r"streamed from \S+ \(([\d.]+) GB\)", log)
    result["disk_cache_gb"] = float(written.group(1)) if written else None
    dense = re.search(r"([\d.]+) GB of descriptors", log)
    result["dense_cache_gb"] = float(dense.group(1)) if dense else None
    print(json.dumps({k: v for k, v in result.items() if k != "test"}), flush=True)
    return result


def csvrows(path: Path):
    import csv

    with path.open() as handle:
        yield from csv.DictReader(handle)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--structures", type=int, default=20000)
    parser.add_argument("--held-out", type=int, default=120, help="validation and test cells each")
    parser.add_argument("--memory-gb", type=float, default=1.0)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--recompute-epochs", type=int, default=1)
    parser.add_argument("--subset", type=int, default=200)
    parser.add_argument("--subset-epochs", type=int, default=30)
    parser.add_argument("--targets", type=float, nargs="+", default=[300.0, 200.0, 150.0], help="validation force RMSEs, meV/Å")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=Path("runs/scale"))
    parser.add_argument("--modes", nargs="+", default=["disk", "recompute", "memory"])
    args = parser.parse_args()
    args.workdir = args.workdir.resolve()
    args.workdir.mkdir(parents=True, exist_ok=True)
    train, validation, test = (args.workdir / f"cu_emt_{n}.extxyz" for n in (f"train{args.structures}", "validation", "test"))
    generate(train, range(args.structures))
    generate(validation, range(VALIDATION_SEED, VALIDATION_SEED + args.held_out))
    generate(test, range(TEST_SEED, TEST_SEED + args.held_out))
    runs = {
        "disk": (f"{args.structures} cells, cache: auto", "auto", None, args.epochs),
        "recompute": (f"{args.structures} cells, cache: recompute", "recompute", None, args.recompute_epochs),
        "memory": (f"{args.subset} cells, cache: auto", "auto", args.subset, args.subset_epochs),
    }
    results = {}
    for mode in args.modes:
        label, cache, limit, epochs = runs[mode]
        print(f"== {label}", flush=True)
        results[mode] = {"label": label, **run(args, config(args, mode, train, validation, test, cache, limit, epochs))}
    if "disk" in results and "recompute" in results:
        n = min(len(results["disk"]["validation_forces_rmse"]), len(results["recompute"]["validation_forces_rmse"]))
        same = results["disk"]["validation_forces_rmse"][:n] == results["recompute"]["validation_forces_rmse"][:n]
        results["recompute"]["same_path_as_disk"] = same
        print(f"recompute and disk: the same validation errors over {n} epoch(s): {same}", flush=True)
    write_report(args, results)


def write_report(args, results: dict) -> None:
    targets = " / ".join(f"{t:g}" for t in args.targets)
    lines = [
        f"Training beyond memory: {args.structures} EMT Cu cells of 71–72 atoms (validation and test: {args.held_out} each), "
        f"training.memory_gb = {args.memory_gb}, batch 32, {args.threads} thread(s), one process;",
        f"`python benchmarks/training_scale.py --structures {args.structures} --held-out {args.held_out} --memory-gb {args.memory_gb} "
        f"--epochs {args.epochs} --recompute-epochs {args.recompute_epochs} --subset {args.subset} --subset-epochs {args.subset_epochs}`",
        "",
        f"| run | mode chosen | dense cache, all splits (GB) | peak RSS (GB) | setup (s) | epochs | s/epoch | training s to val F RMSE ≤ {targets} meV/Å "
        "| val F RMSE per epoch (meV/Å) | test E MAE (meV/atom) | test F MAE (meV/Å) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results.values():
        per_epoch = np.diff([0.0] + r["epochs"]).mean()
        dense = "" if r["dense_cache_gb"] is None else f"{r['dense_cache_gb']:.2f}"
        reached = " / ".join("–" if t is None else f"{t:.0f}" for t in r["seconds_to_target"].values())
        rmse = ", ".join(f"{f:.0f}" for f in r["validation_forces_rmse"][:6]) + (" …" if len(r["epochs"]) > 6 else "")
        lines.append(
            f"| {r['label']} | {r['mode']} | {dense} | {r['peak_gb']:.2f} | {r['setup_seconds']:.0f} | {len(r['epochs'])} | {per_epoch:.0f} | "
            f"{reached} | {rmse} | {r['test']['energy_mae']:.2f} | {r['test']['forces_mae']:.1f} |"
        )
    lines += [
        "",
        f"Peak RSS bound asked for: training.memory_gb + 1.5 GB = {args.memory_gb + 1.5:.1f} GB. Setup: reading the data, the neighbour "
        "lists, writing the disk cache when it is new, and the final evaluation of every split (for recompute, one more pass "
        "over the training set). – : not reached in the epochs run.",
    ]
    if "same_path_as_disk" in results.get("recompute", {}):
        lines.append(
            f"Recompute followed the disk run's path (identical validation errors per epoch): {results['recompute']['same_path_as_disk']}."
        )
    (HERE / "results" / "training_scale.md").write_text("\n".join(lines) + "\n")
    (HERE / "results" / "training_scale.json").write_text(json.dumps(results, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
