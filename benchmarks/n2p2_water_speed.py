"""Time one energy+forces evaluation of n2p2's 1080-atom water box with the imported
RPBE-D3 potential (median of repeats after a warm-up), on 1 and 2 threads.
Neighbour lists are included (as in one MD step); file reading is not.

    python benchmarks/n2p2_water_speed.py [--repeats 5]

n2p2 v2.3.0 on the same kind of machine, one thread: 0.51 s (../shared/README.md).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from ase import units

from forcefit.interop.n2p2 import load_potential
from forcefit.io import read_input_data
from forcefit.models.forces import predict

DIRECTORY = Path(__file__).resolve().parents[2] / "shared" / "data" / "n2p2" / "H2O_RPBE-D3"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    model = load_potential(DIRECTORY, length_unit=units.Bohr, energy_unit=units.Hartree)
    (box,) = read_input_data(DIRECTORY / "input.data", length_unit=units.Bohr, energy_unit=units.Hartree)
    lines = ["| threads | atoms | energy+forces (median) | n2p2 (1 thread) |", "|---|---|---|---|"]
    for threads in (1, 2):
        torch.set_num_threads(threads)
        predict(model, model.graph(box))  # warm-up
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            predict(model, model.graph(box))
            times.append(time.perf_counter() - start)
        lines.append(f"| {threads} | {box.n_atoms} | {statistics.median(times):.2f} s | 0.51 s |")
    table = "\n".join(lines)
    print(table)
    out = Path(__file__).with_name("results")
    out.mkdir(exist_ok=True)
    (out / "n2p2_water_speed.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
