"""A training run from a `Config`: read, split, build, fit, report, save.

The run directory receives: config.yaml (resolved), checkpoint.pt, model.ffm,
history.csv, metrics.json, errors.txt, parity_energy.png, parity_forces.png,
learning_curve.png.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import yaml
from ase.data import atomic_numbers
from rich.console import Console

from forcefit.config import Config, config_from_dict, fingerprint
from forcefit.data import split_indices
from forcefit.files import atomic_write_text
from forcefit.io import read_structures
from forcefit.models import MODELS, Committee
from forcefit.models.base import Potential, shortest_distances
from forcefit.models.saving import save_model
from forcefit.reports.evaluation import evaluate_splits, write_history
from forcefit.structures import Structure
from forcefit.training.cache import select, training_data, without_jacobians
from forcefit.training.cross_validation import choose_and_fit
from forcefit.training.distributed import Group, resolve_device
from forcefit.training.loss import loss_weights, weigh_groups
from forcefit.training.screen import check_units, screen
from forcefit.training.trainer import Trainer, refuse_changed_settings


def read_split(config: Config, console: Console | None = None):
    """(train, validation, test) structure lists, from files or a seeded random split; the
    training pool and a validation file pass the label screen (training/screen.py)."""
    data = config.data
    options = data.reader_options()

    def read(path):
        structures = read_structures(path, **options)
        return check_units(structures, path, console) if data.check_units else structures

    checked = lambda structures: screen(structures, data.outliers, data.outlier_energy_z, data.outlier_force_ratio, console)  # noqa: E731
    pool = [s for path in data.train_files for s in read(path)]
    if data.max_structures and data.max_structures < len(pool):
        chosen = np.sort(np.random.default_rng(data.split_seed).choice(len(pool), data.max_structures, replace=False))
        if console is not None:
            console.print(
                f"data: {data.max_structures} of {len(pool)} training structures, drawn at random across the file(s) (seed {data.split_seed})"
            )
        pool = [pool[i] for i in chosen]
    pool = checked(pool)
    if data.validation and data.test:
        return pool, checked(read(data.validation)), read(data.test)
    fractions = list(data.split)
    if data.validation:
        fractions = [fractions[0] + fractions[1], 0.0, fractions[2]]
    if data.test:
        fractions = [fractions[0] + fractions[2], fractions[1], 0.0]
    total = sum(fractions)
    train_i, val_i, test_i = split_indices(len(pool), tuple(f / total for f in fractions), data.split_seed)
    train = [pool[i] for i in train_i]
    validation = checked(read(data.validation)) if data.validation else [pool[i] for i in val_i]
    test = read(data.test) if data.test else [pool[i] for i in test_i]
    return train, validation, test


def build_model(config: Config, structures: list[Structure]) -> Potential:
    m = config.model
    if m.kind not in MODELS:
        raise ValueError(f"model.kind: {m.kind!r}; available: {sorted(MODELS)}")
    present = {sym for s in structures for sym in s.symbols}
    elements = m.elements or sorted(present, key=lambda e: atomic_numbers[e])
    missing = present - set(elements)
    if missing:
        raise ValueError(f"model.elements {elements} does not cover elements in the data: {sorted(missing)}")
    return MODELS[m.kind].from_settings(m, elements).to(getattr(torch, m.dtype))


def train_from_config(config: Config, resume: bool = False, console: Console | None = None, group: Group | None = None):
    """Run (or resume) training; returns (model, stats by split; None on ranks other than 0).
    With `training.committee: N` the N members train one after another, each in
    member_k/ with its own checkpoint, and are saved together as one model. Under
    torchrun every rank runs this; only rank 0 writes the run directory."""
    group = group or Group()
    console = console or Console()
    if not group.main:
        console = Console(quiet=True)
    run_dir = Path(config.output)
    if not resume and (run_dir / "config.yaml").exists():
        raise FileExistsError(f"{run_dir} already holds a run; use --resume to continue it or choose another output")
    if resume and (run_dir / "config.yaml").exists():
        stored = config_from_dict(yaml.safe_load((run_dir / "config.yaml").read_text()), str(run_dir / "config.yaml"))
        refuse_changed_settings(fingerprint(stored), fingerprint(config), str(run_dir))
    # everything that can fail on the config or the data fails before the run directory exists
    train, validation, test = read_split(config, console)
    if config.training.group_weights:
        train, validation = (weigh_groups(s, config.training.group_weights, train) for s in (train, validation))
    build_model(config, train + validation + test)
    device = resolve_device(config.training.device, group.local_rank)
    console.print(f"data: {len(train)} train, {len(validation)} validation, {len(test)} test structures; device {device}")
    group.barrier()  # every rank has checked the run directory before rank 0 writes into it
    created = not run_dir.exists()
    if group.main:
        run_dir.mkdir(parents=True, exist_ok=True)
    try:
        return _train_and_report(config, train, validation, test, run_dir, resume, console, group, device)
    except BaseException:
        if group.main and created and not any(run_dir.rglob("checkpoint.pt")):  # nothing to resume: leave no half run behind
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def _train_and_report(config: Config, train, validation, test, run_dir: Path, resume: bool, console: Console, group: Group, device: str):
    if group.main:
        atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(config.to_dict(), sort_keys=False))
    t = config.training
    members, histories, graphs, shortest = [], [], None, None
    for k in range(t.committee):
        torch.manual_seed(t.seed + k)
        model = build_model(config, train + validation + test)
        if shortest is None:
            shortest = shortest_distances(model, train)
        model.set_short_range(shortest)  # where the data begin (every member alike): the core repulsion and inner cutoffs
        if graphs is None:  # neighbours and descriptors once, shared by all members
            console.print(model.summary(), soft_wrap=True)
            graphs = training_data(model, {"train": train, "validation": validation, "test": test}, t, console, group)
            if device != "cpu":  # graphs held in memory move to the device once
                graphs = {name: [g.to(device=device) for g in gs] if isinstance(gs, list) else gs for name, gs in graphs.items()}
        chosen = np.arange(len(train))
        if t.committee > 1 and t.committee_fraction < 1:
            chosen = np.sort(
                np.random.default_rng([t.seed, k]).choice(len(train), int(round(t.committee_fraction * len(train))), replace=False)
            )
        member_graphs = select(graphs["train"], chosen)
        member_dir = run_dir if t.committee == 1 else run_dir / f"member_{k}"
        if t.committee > 1:
            console.print(f"committee member {k + 1}/{t.committee}: seed {t.seed + k}, {len(member_graphs)} training structures")
        data = MemberData(member_graphs, graphs["validation"], [train[i].source for i in chosen], [train[i].group_label for i in chosen])
        histories.append(_fit_one(model, data, config, member_dir, resume, console, group, device))
        model.cpu()
        if model.uses_descriptors:  # the extrapolation grade's active set, from what this member trained on
            model.fit_grade(without_jacobians(member_graphs))
        members.append(model)
    if not group.main:
        return model, None
    model = members[0] if t.committee == 1 else Committee(members)
    save_model(model, run_dir / "model.ffm", metadata={"config": config.to_dict()})
    write_history(histories[0], run_dir)
    # predictions need no cached Jacobians: recomputed graphs are evaluated from the structures
    evaluated = {name: without_jacobians(split) for name, split in graphs.items()}
    stats = evaluate_splits(model, evaluated, run_dir, console, {"train": train, "validation": validation, "test": test})
    console.print(f"model written to {run_dir / 'model.ffm'}")
    return model, stats


class MemberData(NamedTuple):
    """What one model (a committee member) trains on: its training graphs (with their source
    names and group labels) and the validation graphs."""

    train: list
    validation: list
    names: list[str]
    groups: list[str]


def _fit_one(model, data: MemberData, config: Config, run_dir: Path, resume: bool, console, group, device) -> list[dict]:
    """Initialise (on the CPU) and fit one model (closed form or trainer on `device`); returns its history."""
    t, train_graphs = config.training, data.train
    model.use_global_offset(t.energy_offset == "global")
    model.initialise(without_jacobians(train_graphs))
    if t.optimizer == "ridge":
        if not model.closed_form:
            raise ValueError(f"training.optimizer 'ridge' solves linear models only, not {model.kind!r}")
        if t.cross_validation:
            report = choose_and_fit(model, train_graphs, data.groups, loss_weights(t, 1), t.cross_validation, console)
            if group.main:
                run_dir.mkdir(parents=True, exist_ok=True)
                atomic_write_text(run_dir / "cross_validation.json", json.dumps(report, indent=1))
            return []
        model.fit_ridge(train_graphs, loss_weights(t, 1), t.ridge, t.ridge_smoothness)
        prior = f", smoothness prior p = {t.ridge_smoothness:g}" if t.ridge_smoothness else ""
        console.print(f"closed-form ridge solution (λ = {t.ridge:g}{prior})")
        return []
    if group.main:
        run_dir.mkdir(parents=True, exist_ok=True)
    model.to(device)
    trainer = Trainer(
        model, train_graphs, data.validation, t, run_dir, names=data.names, console=console, fingerprint=fingerprint(config), group=group
    )
    resume_this = resume and trainer.checkpoint_path.exists()
    return trainer.fit(resume=resume_this)
