"""Accuracy against cost, as the mlearn paper plots them: each model of an mlearn Si run
(`benchmarks/mlearn.py --families ...`) is timed on the 64-atom diamond Si cell (energy and
forces through the ASE calculator, one thread, median of repeats, the models interleaved) and placed by its test
force MAE. A small MACE (`mace-torch`, the architecture of `ethanol_peer.py`'s race, r_max 5.2 Å,
its own environment under benchmarks/.peers/) is timed on the same cell in the same run, after
one epoch of training on 20 mlearn Si cells (its weights do not change its cost); the
ANI-style figure (20 ms, one thread) is quoted from issue 14.

    python benchmarks/mlearn.py --elements Si --families bpnn ace-linear ace-bpnn --max-seconds 1200
    python benchmarks/pareto.py [--results results/mlearn_Si_bpnn_ace-linear_ace-bpnn.json ...] [--repeats 30] [--no-mace]

Writes results/pareto.{png,md}.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
from pathlib import Path

import torch
from ase.io import read, write
from rich.console import Console

from cell_timing import median_ms, si_cell
from ethanol_peer import MACE_MODEL, mace_env, peer_python, train_mace
from forcefit.calculator import Calculator
from forcefit.models.saving import load_model

HERE = Path(__file__).resolve().parent
QUOTED_MS = {"ANI-style (peer, one thread, quoted)": 20.0}  # measured on this cell, quoted in issue 14
PUBLISHED = {"MTP (mlearn)": 0.06, "n2p2 NNP (mlearn)": 0.109}  # test F MAE eV/Å, no timing on this machine
MLEARN_SI = HERE.parents[1] / "shared" / "data" / "mlearn" / "Si_train.extxyz"


def time_models(paths: list[Path], repeats: int) -> list[float]:
    """Median ms of one energy + forces evaluation of the rattled 64-atom Si cell per model
    (`cell_timing.median_ms`: the models interleaved call by call)."""
    cells = []
    for path in paths:
        atoms = si_cell()
        atoms.calc = Calculator(load_model(path))
        cells.append(atoms)
    return median_ms(cells, repeats)


def time_mace(repeats: int, work: Path, console: Console) -> float | None:
    """MACE's median ms on the same cell, in its own environment; None where it cannot be made."""
    python = peer_python(console)
    if python is None:
        return None
    work.mkdir(parents=True, exist_ok=True)
    frames = read(MLEARN_SI, index=":20")
    for atoms in frames:  # MACE's REF_ keys
        atoms.info["REF_energy"] = atoms.get_potential_energy()
        atoms.arrays["REF_forces"] = atoms.get_forces()
        atoms.calc = None
    write(work / "train.xyz", frames[:16], format="extxyz")
    write(work / "valid.xyz", frames[16:], format="extxyz")
    model = train_mace(python, work / "train.xyz", work / "valid.xyz", work, 5.2, 1, threads=1)
    timed = subprocess.run(
        [str(python), str(HERE / "cell_timing.py"), "mace", str(model), str(repeats)], env=mace_env(1), capture_output=True, text=True
    )
    if timed.returncode != 0:
        raise RuntimeError(f"timing MACE failed:\n{timed.stderr[-3000:]}")
    return float(timed.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--results",
        nargs="+",
        default=[str(HERE / "results" / "mlearn_Si_bpnn_ace-linear_ace-bpnn.json")],
        help="result files of benchmarks/mlearn.py runs on Si (their model files must still be there)",
    )
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--no-mace", action="store_true", help="leave MACE out (no peer environment)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    console = Console()
    results = [r for path in args.results for r in json.loads(Path(path).read_text())["results"].values()]
    results = [r for r in results if r["element"] == "Si"]
    rows = []
    for r, ms in zip(results, time_models([Path(r["model_file"]) for r in results], args.repeats)):
        rows.append({"family": r["family"], "model": r["model"], "ms": ms, "forces_mae": r["forces_mae"], "energy_mae": r["energy_mae"]})
        print(f"{r['family']}: {ms:.1f} ms per evaluation, test F MAE {r['forces_mae']:.3f} eV/Å")
    peers = dict(QUOTED_MS)
    mace_ms = None if args.no_mace else time_mace(args.repeats, HERE.parent / "runs" / "pareto_mace", console)
    if mace_ms is not None:
        peers = {"MACE (peer, one thread, this run)": mace_ms, **peers}
        print(f"MACE: {mace_ms:.1f} ms per evaluation")

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
    for name, ms in peers.items():
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
        f"MACE (mace-torch, its own environment): {' '.join(MACE_MODEL[2:])}, r_max 5.2 Å, float64"
        if mace_ms is not None
        else "MACE: not timed (--no-mace, or its environment could not be made)",
        "",
        "| model | ms per evaluation | µs/atom | test E MAE (meV/atom) | test F MAE (eV/Å) |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['model']} | {r['ms']:.1f} | {1000 * r['ms'] / 64:.0f} | {r['energy_mae']:.2f} | {r['forces_mae']:.3f} |"
        for r in sorted(rows, key=lambda r: r["ms"])
    ]
    lines += [f"| {name} | {ms:.1f} | {1000 * ms / 64:.0f} | | |" for name, ms in peers.items()]
    (HERE / "results" / "pareto.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
