"""Evaluation cost against system size: n2p2's RPBE-D3 water potential on repeated copies of
its 1080-atom box, one thread, each size in its own process (so peak RSS is that size's).

    python benchmarks/engine_scaling.py [--repeats 1 2 3] [--memory-gb 1.0]

Repeats 1–5 are 1080, 8640, 29,160, 69,120 and 135,000 atoms. The graph holds pairs only
and the prediction builds triplets per chunk of centre atoms, as the ASE calculator does.
Prints and writes results/engine_scaling.md: neighbour-graph time, CPU time of one
energy+forces evaluation (µs/atom), RSS before the evaluation (graph held) and the peak.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "n2p2" / "H2O_RPBE-D3"

ONE_SIZE = r"""
import json, resource, sys, time
import torch
from ase import units
torch.set_num_threads(1)
from forcefit.interop.n2p2 import load_potential
from forcefit.io import read_input_data
from forcefit.models.forces import predict
from forcefit.structures import Structure
directory, repeat, memory_gb = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
model = load_potential(directory, length_unit=units.Bohr, energy_unit=units.Hartree)
(box,) = read_input_data(directory + "/input.data", length_unit=units.Bohr, energy_unit=units.Hartree)
structure = Structure.from_atoms(box.to_atoms().repeat((repeat,) * 3))
started = time.perf_counter()
graph = model.graph(structure, triplets=False)  # as the calculator: triplets per chunk
graph_s = time.perf_counter() - started
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
started = time.process_time()
predict(model, graph, memory_gb=memory_gb)
cpu = time.process_time() - started
print(json.dumps({"atoms": structure.n_atoms, "pairs": int(graph.pair_i.shape[0]), "graph_s": graph_s, "cpu_s": cpu,
                  "rss_before_gb": before, "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--memory-gb", type=float, default=1.0, help="evaluation chunk budget (FORCEFIT_MEMORY_GB)")
    args = parser.parse_args()
    rows = []
    for repeat in args.repeats:
        done = subprocess.run(
            [sys.executable, "-c", ONE_SIZE, str(SHARED), str(repeat), str(args.memory_gb)], capture_output=True, text=True, check=True
        )
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    lines = [
        f"Water box (n2p2 RPBE-D3), one thread, evaluation chunk budget {args.memory_gb} GB",
        "",
        "| atoms | pairs | graph (s) | energy+forces CPU (s) | µs/atom | RSS with graph (GB) | peak RSS (GB) |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['atoms']} | {r['pairs']:.3g} | {r['graph_s']:.1f} | {r['cpu_s']:.2f} | {1e6 * r['cpu_s'] / r['atoms']:.0f} | "
        f"{r['rss_before_gb']:.2f} | {r['peak_gb']:.2f} |"
        for r in rows
    ]
    table = "\n".join(lines)
    print(table)
    (Path(__file__).with_name("results") / "engine_scaling.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
