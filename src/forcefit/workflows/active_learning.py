"""Active learning, by committee (query by committee; Schran et al. 2020) or by the
extrapolation grade γ (models/grade.py; `learn.selection: gamma`).

The user's dataset is copied once into the run directory (`dataset.extxyz`) and
never edited. Each round: train a committee (or, with γ, one model) on the copy → run
Langevin MD with it from a dataset structure → rank the visited frames by the largest
per-atom force disagreement σ_F (or the largest γ), keep the top `select` that are at
least `min_spacing` MD steps apart (with γ: from three times as many such candidates, a
D-optimal batch: each next frame the one whose most extrapolating environment adds the
most volume to those already chosen) → label them with the reference calculator → append
them to the copy, tagged `al_round=k`. After the last round a final committee (`final/model.ffm`, the loop's
result) is trained on everything, the last round's labels included. The copy is the
loop's memory: an interrupted loop resumes after the last round whose frames are
in it, and nothing is labelled twice.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import numpy as np
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read, write
from rich.console import Console
from rich.table import Table

from forcefit.calculator import Calculator
from forcefit.models.forces import predict
from forcefit.run import train_from_config
from forcefit.structures import Structure
from forcefit.workflows.md import MDLimits, MDRecording, MDSettings, run_md
from forcefit.workflows.reference import reference_calculator


def select_frames(disagreement: np.ndarray, count: int, min_spacing: int) -> list[int]:
    """Indices of the `count` largest values, greedily, no two closer than `min_spacing`."""
    chosen: list[int] = []
    for index in np.argsort(-disagreement, kind="stable"):
        if all(abs(int(index) - c) >= min_spacing for c in chosen):
            chosen.append(int(index))
        if len(chosen) == count:
            break
    return sorted(chosen)


def select_by_grade(model, frames: list, gamma: np.ndarray, count: int, min_spacing: int) -> list[int]:
    """`count` frames spaced at least `min_spacing` recorded steps apart, as a D-optimal batch:
    among the 3 × count highest-γ such frames, greedily the one whose most extrapolating atom's
    coefficients on the active set (models/grade.py) keep the largest part after removing what
    the frames chosen before already span (per element): Gram–Schmidt volume, so that two frames
    that extrapolate the same way are not both labelled."""

    single = model.members[0] if model.has_members else model
    slope, intercept = (t.detach() for t in single.input_map())
    candidates = select_frames(gamma, 3 * count, min_spacing)
    vectors = []
    for index in candidates:
        graph = single.graph(Structure.from_atoms(frames[index]), triplets=False)
        features = predict(single, graph, forces=False).features
        species = single.species(graph.numbers)
        parts = single.grade.coefficients(features, species, slope, intercept)
        z, atoms, c = max(parts, key=lambda part: float(part[2].abs().max()))
        vectors.append((z, c[int(c.abs().amax(dim=1).argmax())]))
    chosen, bases = [], {}
    while len(chosen) < min(count, len(candidates)):

        def remaining(k):
            z, v = vectors[k]
            for u in bases.get(z, []):
                v = v - (v @ u) * u
            return v

        best = max((k for k in range(len(candidates)) if k not in chosen), key=lambda k: float(remaining(k).norm()))
        z, v = vectors[best][0], remaining(best)
        if float(v.norm()) > 0:
            bases.setdefault(z, []).append(v / v.norm())
        chosen.append(best)
    return sorted(candidates[k] for k in chosen)


def completed_rounds(dataset: Path) -> int:
    frames = read(dataset, index=":")
    rounds = [int(a.info.get("al_round", 0)) for a in frames]
    return max(rounds) if rounds else 0


def label(frames, reference) -> list:
    labelled = []
    for atoms in frames:
        atoms = atoms.copy()
        atoms.calc = reference
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
        labelled.append(atoms)
    return labelled


def _train(config, dataset: Path, name: str, console: Console):
    """One round's training on the loop's dataset, in its own run directory (resumed if there)."""
    lc, out = config.learn, Path(config.output)
    round_config = copy.deepcopy(config)
    round_config.data.train = str(dataset)
    round_config.data.test = lc.test
    round_config.output = str(out / name)
    if lc.selection == "committee":
        round_config.training.committee = max(config.training.committee, 2)
    return train_from_config(round_config, resume=(out / name / "config.yaml").exists(), console=console)


def _explore(config, model, round_: int, start_frame):
    """MD with the round's model from `start_frame`; the frames, each frame's disagreement
    (committee σ_F or the grade γ) and the chosen frames."""
    lc = config.learn
    result = run_md(
        start_frame,
        Calculator(model),
        MDSettings(lc.md_steps, lc.timestep, lc.temperature, "nvt", seed=lc.seed + round_),
        MDRecording(trajectory=str(Path(config.output) / f"round_{round_}" / "md.traj"), keep_frames=True),
        MDLimits(max_gamma=None),  # extrapolating frames are what the loop looks for
    )
    if lc.selection == "committee":
        return result.frames, result.force_std, select_frames(result.force_std, lc.select, lc.min_spacing)
    if result.gamma is None:
        raise ValueError(f"learn.selection: gamma needs a model with an extrapolation grade, not a {model.kind} model")
    return result.frames, result.gamma, select_by_grade(model, result.frames, result.gamma, lc.select, lc.min_spacing)


def _final(config, dataset: Path, records: list[dict], console: Console) -> list[dict]:
    """The final model on every labelled structure, trained again when the loop has grown since."""
    out, labelled_rounds = Path(config.output), completed_rounds(dataset)
    if any(r["round"] == "final" and r.get("labelled_rounds") == labelled_rounds for r in records):
        return records
    if any(r["round"] == "final" for r in records):  # a longer loop than last time: the old final model is stale
        records = [r for r in records if r["round"] != "final"]
        shutil.rmtree(out / "final")
    size = len(read(dataset, index=":"))
    console.rule(f"final committee on all {size} labelled structures")
    _, stats = _train(config, dataset, "final", console)
    test = stats.get("test", {})
    final = {"round": "final", "labelled_rounds": labelled_rounds, "dataset_size": size}
    records.append(
        final
        | {
            "test_energy_mae": test.get("energy_mae"),
            "test_forces_mae": test.get("forces_mae"),
            "max_force_std_md": None,
            "selected_force_std": [],
        }
    )
    (out / "learn_report.json").write_text(json.dumps(records, indent=2))
    return records


def learn(config, console: Console | None = None) -> list[dict]:
    """Run (or resume) the loop described by `config.learn`; returns per-round records."""
    console = console or Console()
    lc = config.learn
    out = Path(config.output)
    out.mkdir(parents=True, exist_ok=True)
    dataset = out / "dataset.extxyz"
    if not dataset.exists():  # the user's file stays as it is; the loop grows its own copy
        read(lc.dataset, index=0)  # a clear error before copying when it is not a dataset
        shutil.copyfile(lc.dataset, out / "dataset.extxyz.tmp")
        (out / "dataset.extxyz.tmp").replace(dataset)
    report_path = out / "learn_report.json"
    records = json.loads(report_path.read_text()) if report_path.exists() else []
    reference = reference_calculator(lc.reference)
    rng = np.random.default_rng(lc.seed)
    start = completed_rounds(dataset)
    if start:
        console.print(f"resuming: {dataset} already holds rounds 1–{start}; nothing is relabelled")
    committee = lc.selection == "committee"
    for round_ in range(start + 1, lc.rounds + 1):
        console.rule(f"round {round_}: training {'a committee' if committee else 'a model'} on {len(read(dataset, index=':'))} structures")
        model, stats = _train(config, dataset, f"round_{round_}", console)
        pool = read(dataset, index=":")
        frames, disagreement, chosen = _explore(config, model, round_, pool[int(rng.integers(len(pool)))])
        new = label([frames[i] for i in chosen], reference)
        for atoms in new:
            atoms.info["al_round"] = round_
        write(dataset, new, format="extxyz", append=True)
        test = stats.get("test", {})
        records.append(
            {
                "round": round_,
                "dataset_size": len(pool) + len(new),
                "test_energy_mae": test.get("energy_mae"),
                "test_forces_mae": test.get("forces_mae"),
                "selection": lc.selection,
                "max_force_std_md" if committee else "max_gamma_md": float(disagreement.max()),
                "selected_force_std" if committee else "selected_gamma": [float(disagreement[i]) for i in chosen],
            }
        )
        report_path.write_text(json.dumps(records, indent=2))
    records = _final(config, dataset, records, console)
    _print(records, console)
    console.print(f"the loop's model: {out / 'final' / 'model.ffm'}; its dataset: {dataset}")
    return records


def _print(records: list[dict], console: Console) -> None:
    table = Table(title="active learning")
    for name in ("round", "dataset", "test E MAE meV/atom", "test F MAE meV/Å", "max σ_F (eV/Å) or γ in MD"):
        table.add_column(name, justify="right")
    for r in records:
        e, f = r["test_energy_mae"], r["test_forces_mae"]
        spread = r.get("max_force_std_md", r.get("max_gamma_md"))
        table.add_row(
            str(r["round"]),
            str(r["dataset_size"]),
            "—" if e is None else f"{e:.2f}",
            "—" if f is None else f"{f:.1f}",
            "—" if spread is None else f"{spread:.3f}",
        )
    console.print(table)


__all__ = ["learn", "select_frames", "completed_rounds"]
