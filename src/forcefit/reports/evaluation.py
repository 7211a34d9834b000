"""Evaluation a person reads: error tables (per split, per element, per configuration
group, the worst structures), the per-structure predictions CSV, metrics.json and the
parity plots. `forcefit evaluate` and the end of `forcefit train` both come here."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from forcefit.files import atomic_write_text
from forcefit.models.saving import offset_note
from forcefit.reports import figures
from forcefit.training.metrics import collect, error_statistics, group_statistics


def error_tables(stats_by_split: dict, elements: list[str], groups_by_split: dict | None = None) -> list[Table]:
    """Errors per split (energy per atom and per structure, forces, stress, extrapolation,
    non-finite predictions), force errors per element, and errors per configuration group."""
    with_stress = any(s["stress_rmse"] == s["stress_rmse"] for s in stats_by_split.values())  # not NaN
    overall = Table(title="errors (energy per atom and per structure, force components" + (", stress components)" if with_stress else ")"))
    columns = ["split", "structures", "E MAE meV/atom", "E RMSE meV/atom", "E MAE meV", "F MAE meV/Å", "F RMSE meV/Å"]
    columns += ["σ MAE GPa", "σ RMSE GPa"] if with_stress else []
    columns += ["extrapolating", "non-finite"]
    for name in columns:
        overall.add_column(name, justify="left" if name == "split" else "right")
    per_element = Table(title="force errors per element")
    for name in ("split", "element", "F MAE meV/Å", "F RMSE meV/Å"):
        per_element.add_column(name, justify="left" if name in ("split", "element") else "right")
    for split, s in stats_by_split.items():
        row = [
            split,
            str(s["n_structures"]),
            f"{s['energy_mae']:.2f}",
            f"{s['energy_rmse']:.2f}",
            f"{s['energy_structure_mae']:.1f}",
            f"{s['forces_mae']:.1f}",
            f"{s['forces_rmse']:.1f}",
        ]
        row += [f"{s['stress_mae']:.3f}", f"{s['stress_rmse']:.3f}"] if with_stress else []
        row += [str(s["extrapolating_structures"]), str(s["n_nonfinite"])]
        overall.add_row(*row)
        for e in elements:
            per_element.add_row(split, e, f"{s[f'forces_{e}_mae']:.1f}", f"{s[f'forces_{e}_rmse']:.1f}")
    tables = [overall, per_element]
    if groups_by_split and any(groups_by_split.values()):
        per_group = Table(title="errors per configuration group (config_type / group)")
        for name in ("split", "group", "structures", "E MAE meV/atom", "F MAE meV/Å", "F RMSE meV/Å") + (
            ("σ RMSE GPa",) if with_stress else ()
        ):
            per_group.add_column(name, justify="left" if name in ("split", "group") else "right")
        for split, groups in groups_by_split.items():
            for group, s in groups.items():
                row = [split, group, str(s["n_structures"]), f"{s['energy_mae']:.2f}", f"{s['forces_mae']:.1f}", f"{s['forces_rmse']:.1f}"]
                per_group.add_row(*(row + ([f"{s['stress_rmse']:.3f}"] if with_stress else [])))
        tables.append(per_group)
    return tables


def write_predictions(path: Path, results: dict, structures: list) -> None:
    """One CSV row per structure: the model's (extensive) energy, the same on the
    reference's scale (Σ E_i − b) next to the reference, and the errors."""
    atom_structure = np.repeat(np.arange(len(structures)), results["n_atoms"])
    squared = ((results["forces"] - results["ref_forces"]) ** 2).sum(axis=1)
    force_rmse = np.sqrt(np.bincount(atom_structure, squared, len(structures)) / (3 * results["n_atoms"]))
    worst = np.zeros(len(structures))
    np.maximum.at(worst, atom_structure, np.sqrt(squared))
    rows = []
    for k, s in enumerate(structures):
        n = int(results["n_atoms"][k])
        rows.append(
            {
                "index": k + 1,
                "source": s.source,
                "group": s.group,
                "n_atoms": n,
                "reference_energy_eV": results["ref_energy"][k],
                "model_energy_eV": results["energy"][k],
                "model_energy_on_reference_scale_eV": results["reference_energy"][k],
                "energy_error_meV_per_atom": 1000.0 * (results["reference_energy"][k] - results["ref_energy"][k]) / n,
                "force_rmse_meV_per_A": 1000.0 * force_rmse[k],
                "max_atom_force_error_meV_per_A": 1000.0 * worst[k],
                "extrapolating_atoms": int(results["extrapolating_atoms"][k]),
            }
        )
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def worst_structures(results: dict, structures: list, count: int = 5) -> Table:
    """The `count` structures with the largest force RMSE (and their energy errors)."""
    atom_structure = np.repeat(np.arange(len(structures)), results["n_atoms"])
    squared = ((results["forces"] - results["ref_forces"]) ** 2).sum(axis=1)
    force_rmse = 1000.0 * np.sqrt(np.bincount(atom_structure, squared, len(structures)) / (3 * results["n_atoms"]))
    energy_error = 1000.0 * (results["reference_energy"] - results["ref_energy"]) / results["n_atoms"]
    table = Table(title=f"the {min(count, len(structures))} structures with the largest force errors")
    for name in ("structure", "group", "atoms", "F RMSE meV/Å", "ΔE meV/atom"):
        table.add_column(name, justify="left" if name in ("structure", "group") else "right")
    for k in np.argsort(-np.nan_to_num(force_rmse, nan=np.inf))[:count]:
        table.add_row(
            structures[k].source, structures[k].group, str(structures[k].n_atoms), f"{force_rmse[k]:.1f}", f"{energy_error[k]:+.2f}"
        )
    return table


def evaluate_splits(
    model, graphs_by_split: dict, run_dir: Path | None, console: Console, structures_by_split: dict | None = None, worst: int = 0
) -> dict:
    """Error tables for each split (and its `worst` structures); with a run directory also
    errors.txt, metrics.json, predictions_<split>.csv and parity plots. Returns the
    statistics by split."""
    results = {name: collect(model, graphs) for name, graphs in graphs_by_split.items() if graphs}
    stats = {name: error_statistics(res, model.elements) for name, res in results.items()}
    structures_by_split = structures_by_split or {}
    groups = {}
    for name, res in results.items():
        labels = [s.group for s in structures_by_split.get(name, [])]
        if labels and any(labels):
            groups[name] = group_statistics(res, [s.group_label for s in structures_by_split[name]], model.elements)
    tables = error_tables(stats, model.elements, groups)
    if worst:
        tables += [worst_structures(res, structures_by_split[name], worst) for name, res in results.items() if name in structures_by_split]
    for table in tables:
        console.print(table)
    console.print(offset_note(model), soft_wrap=True)
    if run_dir is not None:
        buffer = io.StringIO()
        for table in tables:
            Console(file=buffer, width=10_000).print(table)  # a file: every number whole, never cut to fit
        atomic_write_text(run_dir / "errors.txt", buffer.getvalue())
        atomic_write_text(
            run_dir / "metrics.json",
            json.dumps({**stats, "groups": groups, "energy_offset_eV": float(model.energy_offset.detach())}, indent=2),
        )
        for name, res in results.items():
            if name in structures_by_split:
                write_predictions(run_dir / f"predictions_{name}.csv", res, structures_by_split[name])
        figures.parity_plots(results, run_dir / "parity_energy.png", run_dir / "parity_forces.png")
    return stats


def write_history(history: list[dict], run_dir: Path) -> None:
    """A training run's history, one row per epoch: history.csv and learning_curve.png."""
    buffer = io.StringIO()
    if history:
        writer = csv.DictWriter(buffer, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
    atomic_write_text(run_dir / "history.csv", buffer.getvalue())
    figures.learning_curve_plot(history, run_dir / "learning_curve.png")
