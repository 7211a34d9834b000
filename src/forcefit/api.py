"""The Python API: train, evaluate and load models without the command line.

    import forcefit
    result = forcefit.train("examples/ethanol.yaml")          # or a dict, or a Config
    result.model, result.metrics["test"]["forces_mae"]       # meV/Å
    model = forcefit.load("runs/ethanol/model.ffm")
    metrics = forcefit.evaluate(model, "held_out.extxyz")    # error statistics, as `forcefit evaluate`
    atoms.calc = forcefit.Calculator(model)                  # ASE

Each call does what the command of the same name does (same files, same tables).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from forcefit.config import Config, config_from_dict, load_config
from forcefit.io import read_structures
from forcefit.models.saving import load_model
from forcefit.reports.evaluation import evaluate_splits
from forcefit.run import train_from_config
from forcefit.training.cache import RecomputedGraphs
from forcefit.units import unit_value


@dataclass
class TrainResult:
    model: object  # the trained Potential (or Committee), on the CPU
    metrics: dict  # error statistics by split ("train", "validation", "test"): metrics.json's numbers
    run_dir: Path  # where model.ffm, metrics.json, errors.txt and the plots are


def train(
    config: str | Path | dict | Config, *, output: str | None = None, resume: bool = False, console: Console | None = None
) -> TrainResult:
    """Train from a YAML file (relative paths taken from its folder), a dict with the YAML's
    sections, or a Config; `output` overrides the run directory. Writes the run directory
    as `forcefit train` does; progress and tables go to `console` (Console(quiet=True): none)."""
    if isinstance(config, (str, Path)):
        config = load_config(config)
    elif isinstance(config, dict):
        config = config_from_dict(config)
    if output is not None:
        config.output = str(output)
    model, metrics = train_from_config(config, resume=resume, console=console)
    return TrainResult(model, metrics, Path(config.output))


def load(path, trust_code: bool = False):
    """A model from its .ffm file (checksum and fields verified; see forcefit.models.saving)."""
    return load_model(path, trust_code=trust_code)


def evaluate(
    model,
    data,
    *,
    output=None,
    energy_unit: float | str = 1.0,
    length_unit: float | str = 1.0,
    worst: int = 0,
    console: Console | None = None,
    **reader_options,
) -> dict:
    """Error statistics of `model` (a model or a model file) on a data file, as `forcefit
    evaluate` prints them (energy MAE meV/atom, force MAE meV/Å, per element and group);
    with `output` also errors.txt, metrics.json, predictions and parity plots there; the
    tables go to `console` (default: standard output; Console(quiet=True): none).
    `reader_options`: energy_key, forces_key, stress_key, stress_format, format."""
    if isinstance(model, (str, Path)):
        model = load_model(model)
    structures = read_structures(
        data, energy_unit=unit_value(energy_unit, "energy_unit"), length_unit=unit_value(length_unit, "length_unit"), **reader_options
    )
    run_dir = Path(output) if output else None
    if run_dir:
        run_dir.mkdir(parents=True, exist_ok=True)
    name = Path(data).name
    graphs = RecomputedGraphs(model, structures, descriptors=False)  # built a batch at a time: any number of structures
    return evaluate_splits(model, {name: graphs}, run_dir, console or Console(), {name: structures}, worst=worst)[name]
