"""Evaluation cost against system size: n2p2's RPBE-D3 water potential on repeated copies of
its 1080-atom box, one thread, each size in its own process (so peak RSS is that size's).

    python benchmarks/engine_scaling.py [--repeats 1 2 3 4 5] [--memory-gb 1.0] [--peer-repeats 1 2 3]

Repeats 1–5 are 1080, 8640, 29,160, 69,120 and 135,000 atoms. The graph holds pairs only
and the engine enumerates triplets per centre atom, by blocks of centres within the
budget, as in the ASE calculator.
Prints and writes results/engine_scaling.md: neighbour-graph time, CPU time of one
energy+forces evaluation (the median of 5, or of 3 from 10,000 atoms on; µs/atom), RSS before the evaluation (graph held) and the peak.
With `--peer-repeats`, n2p2's compute on the same boxes in the same run (nnp-bench: its
evaluation minus its stand-alone O(N²) neighbour list), each size limited to 10 minutes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from n2p2_peer import build_n2p2

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
predict(model, model.graph(box, triplets=False), memory_gb=memory_gb)  # warm-up: loads the compiled engine
started = time.perf_counter()
graph = model.graph(structure, triplets=False)  # as the calculator: pairs only
graph_s = time.perf_counter() - started
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
times = []
for _ in range(5 if structure.n_atoms < 10000 else 3):  # the median of a few evaluations
    started = time.process_time()
    predict(model, graph, memory_gb=memory_gb)
    times.append(time.process_time() - started)
cpu = sorted(times)[len(times) // 2]
print(json.dumps({"atoms": structure.n_atoms, "pairs": int(graph.pair_i.shape[0]), "graph_s": graph_s, "cpu_s": cpu,
                  "rss_before_gb": before, "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}))
"""


def n2p2_compute(repeat: int) -> dict:
    """n2p2's µs/atom on the repeated box: nnp-bench's CPU median minus its neighbour-list time."""
    import re
    import shutil
    import tempfile

    from ase import units

    from forcefit.io import read_input_data, write_input_data
    from forcefit.structures import Structure

    bin_folder, why = build_n2p2()
    if bin_folder is None:
        return {"note": f"n2p2 could not be built here: {why[-300:]}"}
    bench = bin_folder / "nnp-bench"
    (box,) = read_input_data(SHARED / "input.data", length_unit=units.Bohr, energy_unit=units.Hartree)
    big = Structure.from_atoms(box.to_atoms().repeat((repeat,) * 3))
    with tempfile.TemporaryDirectory() as work:
        for name in ("input.nn", "scaling.data", "weights.001.data", "weights.008.data"):
            shutil.copy(SHARED / name, work)
        write_input_data(Path(work) / "input.data", [big], length_unit=units.Bohr, energy_unit=units.Hartree)
        try:
            out = subprocess.run(
                [str(bench), "input.data", "1", "both"], cwd=work, capture_output=True, text=True, timeout=600, check=True
            ).stdout
        except subprocess.TimeoutExpired:
            return {"atoms": big.n_atoms, "note": "did not finish in 10 minutes"}
    cpu = float(re.search(r"cpu median ([0-9.]+) s", out).group(1))
    nl = float(re.search(r"neighbour-list-only [0-9.]+ s wall ([0-9.]+) s cpu", out).group(1))
    return {"atoms": big.n_atoms, "us_per_atom": 1e6 * (cpu - nl) / big.n_atoms, "nl_s": nl}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--memory-gb", type=float, default=1.0, help="evaluation chunk budget (FORCEFIT_MEMORY_GB)")
    parser.add_argument("--peer-repeats", type=int, nargs="*", default=[], help="also time n2p2's compute on these sizes")
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
    peer = {repeat: n2p2_compute(repeat) for repeat in args.peer_repeats}
    if peer:
        ours = {r["atoms"]: 1e6 * r["cpu_s"] / r["atoms"] for r in rows}
        lines += [
            "",
            "n2p2 on the same boxes, same run (compute: evaluation minus its O(N²) stand-alone neighbour list)",
            "",
            "| atoms | n2p2 µs/atom | forcefit µs/atom | forcefit / n2p2 |",
            "|---|---|---|---|",
        ]
        for result in peer.values():
            if "us_per_atom" in result:
                mine = ours.get(result["atoms"])
                ratio = f"{mine / result['us_per_atom']:.2f}" if mine else "–"
                lines.append(f"| {result['atoms']} | {result['us_per_atom']:.0f} | {f'{mine:.0f}' if mine else '–'} | {ratio} |")
            else:
                lines.append(f"| {result.get('atoms', '–')} | {result['note']} | | |")
    table = "\n".join(lines)
    print(table)
    (Path(__file__).with_name("results") / "engine_scaling.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
