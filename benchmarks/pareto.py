"""Accuracy against cost, as the mlearn paper plots them: each model of an mlearn Si run
(`benchmarks/mlearn.py --families ...`) is timed on the 64-atom diamond Si cell (energy and
forces through the ASE calculator, one thread, median of repeats, the models interleaved) and placed by its test
force MAE; the peers' evaluation times on the same cell (issue 14: an ANI-style model 20 ms,
MACE 85 ms, one thread) are marked beside them.

    python benchmarks/mlearn.py --elements Si --families bpnn ace-linear ace-bpnn --max-seconds 1200
    python benchmarks/pareto.py [--results results/mlearn_Si_bpnn_ace-linear_ace-bpnn.json ...] [--repeats 30]

Writes results/pareto.{png,md}.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from pathlib import Path

import torch
from ase.build import bulk

from forcefit.calculator import Calculator
from forcefit.models.saving import load_model

HERE = Path(__file__).resolve().parent
PEER_MS = {"ANI-style (peer, one thread)": 20.0, "MACE (peer, one thread)": 85.0}  # measured on this cell, quoted in issue 14
PUBLISHED = {"MTP (mlearn)": 0.06, "n2p2 NNP (mlearn)": 0.109}  # test F MAE eV/Å, no timing on this machine


def time_models(paths: list[Path], repeats: int) -> list[float]:
    """Median ms of one energy + forces evaluation of a rattled 64-atom diamond Si cell, per
    model, the models interleaved call by call (this machine's speed drifts between runs; a
    drift then moves every model alike, not the one timed last)."""
    cells = []
    for path in paths:
        atoms = bulk("Si", "diamond", a=5.43, cubic=True).repeat(2)
        atoms.rattle(0.05, seed=0)
        atoms.calc = Calculator(load_model(path))
        cells.append(atoms)
    times = [[] for _ in paths]
    for n in range(repeats + 3):
        for atoms, spent in zip(cells, times):
            atoms.positions[0, 0] += 1e-4  # a new geometry each call: nothing is reused
            started = time.perf_counter()
            atoms.get_potential_energy(), atoms.get_forces()
            if n >= 3:  # the first calls warm up (compilation, caches)
                spent.append(time.perf_counter() - started)
    return [1000.0 * statistics.median(spent) for spent in times]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--results",
        nargs="+",
        default=[str(HERE / "results" / "mlearn_Si_bpnn_ace-linear_ace-bpnn.json")],
        help="result files of benchmarks/mlearn.py runs on Si (their model files must still be there)",
    )
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = [r for path in args.results for r in json.loads(Path(path).read_text())["results"].values()]
    results = [r for r in results if r["element"] == "Si"]
    rows = []
    for r, ms in zip(results, time_models([Path(r["model_file"]) for r in results], args.repeats)):
        rows.append({"family": r["family"], "model": r["model"], "ms": ms, "forces_mae": r["forces_mae"], "energy_mae": r["energy_mae"]})
        print(f"{r['family']}: {ms:.1f} ms per evaluation, test F MAE {r['forces_mae']:.3f} eV/Å")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    ax.set_xscale("log")
    ax.set_xlim(1.0, 1000.0)
    values = [r["forces_mae"] for r in rows] + list(PUBLISHED.values())
    ax.set_ylim(0.9 * min(values), 1.1 * max(values))
    for row in rows:
        ax.scatter(row["ms"], row["forces_mae"], s=40, zorder=3)
        size = re.search(r"\[?(\d+)\]? (?:body-ordered invariants|symmetry functions)", row["model"])
        label = f"forcefit {row['family']}" + (f", {size.group(1)} features" if size else "")
        ax.annotate(label, (row["ms"], row["forces_mae"]), textcoords="offset points", xytext=(6, 4), fontsize=8)
    for name, ms in PEER_MS.items():
        ax.axvline(ms, color="grey", ls="--", lw=0.8)
        ax.text(ms * 1.05, ax.get_ylim()[1], name, rotation=90, va="top", ha="left", fontsize=7, color="grey")
    for name, f in PUBLISHED.items():
        ax.axhline(f, color="tab:red", ls=":", lw=0.8)
        ax.text(1.1, f, name, va="bottom", fontsize=7, color="tab:red")
    ax.set_xlabel("energy + forces, 64-atom Si cell, one thread (ms)")
    ax.set_ylabel("test force MAE, mlearn Si (eV/Å)")
    ax.set_title("accuracy and cost")
    fig.tight_layout()
    fig.savefig(HERE / "results" / "pareto.png", dpi=150)
    lines = [
        f"Accuracy and cost on the 64-atom diamond Si cell, one thread, median of {args.repeats}: `python benchmarks/pareto.py`",
        "",
        "| model | ms per evaluation | µs/atom | test E MAE (meV/atom) | test F MAE (eV/Å) |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['model']} | {r['ms']:.1f} | {1000 * r['ms'] / 64:.0f} | {r['energy_mae']:.2f} | {r['forces_mae']:.3f} |"
        for r in sorted(rows, key=lambda r: r["ms"])
    ]
    lines += [f"| {name} | {ms:g} (quoted) | {1000 * ms / 64:.0f} | | |" for name, ms in PEER_MS.items()]
    (HERE / "results" / "pareto.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
