"""Race n2p2 in one run: one energy+forces evaluation (neighbour list included, file reading
and start-up excluded) of n2p2's 1080-atom water box with its RPBE-D3 potential, forcefit
and n2p2's in-process timer (`nnp-bench`, ../shared/peers/n2p2) interleaved round by round.

    python benchmarks/n2p2_water_speed.py [--rounds 5]

The peer is built on first use (../shared/peers/n2p2/build.sh, cached in ~/.cache); where it
cannot be built the table says so instead of a ratio. CPU times, one thread unless stated;
the ratio is forcefit / n2p2 per round, reported as median (min–max).
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import torch
from ase import units

from forcefit.calculator import Calculator
from forcefit.interop.n2p2 import load_potential
from forcefit.io import read_input_data
from forcefit.models.forces import predict
from n2p2_peer import build_n2p2

SHARED = Path(__file__).resolve().parents[2] / "shared"
DIRECTORY = SHARED / "data" / "n2p2" / "H2O_RPBE-D3"


def n2p2_bench() -> Path | None:
    """nnp-bench, built if needed; None (with the reason printed) where it cannot be built."""
    bin_folder, why = build_n2p2()
    if bin_folder is None:
        print(f"n2p2 could not be built here: {why[-500:]}")
        return None
    return bin_folder / "nnp-bench"


def n2p2_cpu_seconds(bench: Path, workdir: Path) -> float:
    out = subprocess.run([str(bench), "input.data", "1", "both"], cwd=workdir, capture_output=True, text=True, check=True).stdout
    return float(re.search(r"cpu median ([0-9.]+) s", out).group(1))


def forcefit_cpu_seconds(model, box) -> float:
    """One evaluation as the calculator makes it: pairs only (triplets enumerated by the engine)."""
    started = time.process_time()
    predict(model, model.graph(box, triplets=False))
    return time.process_time() - started


def calculator_cpu_seconds(atoms) -> float:
    """The same through the ASE calculator (a new position each call, so nothing is cached)."""
    atoms.positions[0, 0] += 1e-6
    started = time.process_time()
    atoms.get_forces()
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    model = load_potential(DIRECTORY, length_unit=units.Bohr, energy_unit=units.Hartree)
    (box,) = read_input_data(DIRECTORY / "input.data", length_unit=units.Bohr, energy_unit=units.Hartree)
    bench = n2p2_bench()
    torch.set_num_threads(1)
    forcefit_cpu_seconds(model, box)  # warm-up (and the engine's compilation, when not cached)
    atoms = box.to_atoms()
    atoms.calc = Calculator(model)
    ours, theirs, calculator = [], [], []
    with tempfile.TemporaryDirectory() as work:
        for name in ("input.nn", "scaling.data", "weights.001.data", "weights.008.data", "input.data"):
            shutil.copy(DIRECTORY / name, work)
        for _ in range(args.rounds):
            ours.append(forcefit_cpu_seconds(model, box))
            calculator.append(calculator_cpu_seconds(atoms))
            if bench is not None:
                theirs.append(n2p2_cpu_seconds(bench, Path(work)))
    torch.set_num_threads(2)
    forcefit_cpu_seconds(model, box)
    two = []
    for _ in range(args.rounds):
        started = time.perf_counter()
        predict(model, model.graph(box, triplets=False))
        two.append(time.perf_counter() - started)
    lines = [
        f"n2p2 water box, {box.n_atoms} atoms, {args.rounds} interleaved rounds",
        "",
        "| | per evaluation (median, min–max) |",
        "|---|---|",
        f"| forcefit, 1 thread, CPU | {statistics.median(ours):.3f} s ({min(ours):.3f}–{max(ours):.3f}) |",
        f"| forcefit through the ASE calculator, 1 thread, CPU | {statistics.median(calculator):.3f} s "
        f"({min(calculator):.3f}–{max(calculator):.3f}) |",
    ]
    if theirs:
        ratios = [a / b for a, b in zip(ours, theirs)]
        lines += [
            f"| n2p2 (nnp-bench), 1 thread, CPU | {statistics.median(theirs):.3f} s ({min(theirs):.3f}–{max(theirs):.3f}) |",
            f"| ratio forcefit / n2p2 | {statistics.median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f}) |",
        ]
    else:
        lines.append("| n2p2 | could not be built on this machine: no ratio |")
    lines.append(f"| forcefit, 2 threads, wall | {statistics.median(two):.3f} s ({min(two):.3f}–{max(two):.3f}) |")
    table = "\n".join(lines)
    print(table)
    (Path(__file__).with_name("results") / "n2p2_water_speed.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
