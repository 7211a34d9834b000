"""Evaluation cost against system size for the models of an mlearn Si run, and for a committee
of two linear-ACE models: energy and forces through the ASE calculator, one thread, on rattled
diamond Si cells of 64, 512, 1728 … atoms (`cell_timing.si_cell`), the models interleaved call
by call (`cell_timing.median_ms`). A cost per atom that stays flat is the O(N) locality
promises. The committee's members are the trained linear model and a copy of it with its
coefficients × 1.01 (weights do not change the cost): it should cost one descriptor pass plus a
gradient pass per member, not a Jacobian of n_features × pairs.

    python benchmarks/mlearn.py --elements Si --families bpnn ace-linear ace-bpnn
    python benchmarks/ace_scaling.py [--results results/mlearn_Si_bpnn_ace-linear_ace-bpnn.json] [--repeats 2 4 6] [--samples 10]

Writes results/ace_scaling.md.
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import torch

from cell_timing import median_ms, si_cell
from forcefit.calculator import Calculator
from forcefit.models import Committee
from forcefit.models.saving import load_model

HERE = Path(__file__).resolve().parent


def models_of(results: list[dict]) -> dict:
    """label → model: each Si model of the run, and a committee of two linear-ACE members."""
    models = {}
    for r in results:
        models[r["family"]] = load_model(HERE.parent / r["model_file"])  # model_file is relative to the repository
    if "ace-linear" in models:
        other = copy.deepcopy(models["ace-linear"])
        with torch.no_grad():
            other.coefficients.mul_(1.01)
        models["ace-linear committee of 2"] = Committee([models["ace-linear"], other])
    return models


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--results", nargs="+", default=[str(HERE / "results" / "mlearn_Si_bpnn_ace-linear_ace-bpnn.json")])
    parser.add_argument("--repeats", type=int, nargs="+", default=[2, 4, 6], help="cells of 8 · k³ atoms (2: 64, 4: 512, 6: 1728)")
    parser.add_argument("--samples", type=int, default=10, help="timed calls per model and size (after three warm-ups)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = [r for path in args.results for r in json.loads(Path(path).read_text())["results"].values() if r["element"] == "Si"]
    models = models_of(results)
    rows = []
    for k in args.repeats:
        cells = []
        for model in models.values():
            atoms = si_cell(k)
            atoms.calc = Calculator(model)
            cells.append(atoms)
        times = median_ms(cells, args.samples)
        n = len(cells[0])
        rows.append((n, times))
        print(f"{n} atoms: " + ", ".join(f"{label} {ms:.1f} ms" for label, ms in zip(models, times)))
    lines = [
        f"Energy + forces through the ASE calculator, one thread, median of {args.samples} calls, models interleaved: "
        f"`python benchmarks/ace_scaling.py --repeats {' '.join(map(str, args.repeats))} --samples {args.samples}`",
        "",
        "| atoms | " + " | ".join(f"{label} ms (µs/atom)" for label in models) + " |",
        "|---|" + "---|" * len(models),
    ]
    for n, times in rows:
        lines.append(f"| {n} | " + " | ".join(f"{ms:.1f} ({1000 * ms / n:.0f})" for ms in times) + " |")
    (HERE / "results" / "ace_scaling.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
