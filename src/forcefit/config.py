"""The YAML run configuration, loaded strictly into typed settings (forcefit/settings.py).

An unknown or misspelt key is an error that names the key and the valid ones; every key's
type, default and meaning is in its class, and docs/config.md is generated from them.

    data:     where the reference data are and how to read and split them (DataConfig)
    model:    what to fit: `kind` picks the class that checks the rest (`model_settings`,
              each kind's own `Settings` in its module under forcefit/models)
    training: optimiser, schedule, loss weights, seed: the trainer's own parameters
              (TrainingConfig, forcefit/training/settings.py)
    learn:    `forcefit learn`'s active-learning loop (LearnConfig)
    output:   the run directory
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

import yaml
from pydantic import Field, StrictBool, field_validator

from forcefit.io.extxyz import STRESS_FORMATS
from forcefit.models.registry import MODELS
from forcefit.settings import ModelSettings, Settings
from forcefit.training.screen import OUTLIER_POLICIES
from forcefit.training.settings import TrainingConfig
from forcefit.units import unit_value


class DataConfig(Settings):
    """`data`: where the reference data are and how to read and split them."""

    section: ClassVar[str] = "data"

    train: str | list[str] = Field(description="a file (extxyz, ASE .db, input.data) or a list of files")
    validation: str | None = Field(None, description="a file of validation structures (default: the split of train)")
    test: str | None = Field(None, description="a file of test structures, evaluated once at the end (default: the split of train)")
    format: str | None = Field(None, description="extxyz | db | input.data; guessed from the name if omitted")
    energy_key: str = Field("energy", description="extxyz/db: the key of the reference energy")
    forces_key: str = Field("forces", description="extxyz/db: the per-atom array of reference forces")
    stress_key: str | None = Field("stress", description="extxyz/db: read a reference stress under this key when present")
    stress_format: Literal[STRESS_FORMATS] = Field(
        "ase", description="ase (eV/Å³ in file units, ASE sign) | vasp-kbar (VASP's kB line, e.g. mlearn)"
    )
    length_unit: float | str = Field(1.0, description="every format: Å per file length unit, or a name ('bohr')")
    energy_unit: float | str = Field(1.0, description="every format: eV per file energy unit, or a name ('hartree', 'kcal/mol')")
    split: list[float] = Field([0.8, 0.1, 0.1], description="train, validation, test fractions, used for splits without a file")
    split_seed: int = Field(0, description="seed of the random train/validation/test split and of max_structures' sample")
    max_structures: int | None = Field(None, description="use N structures of the training files, a random sample (split_seed) across them")
    check_units: StrictBool = Field(
        True, description="refuse files whose forces cannot be eV/Å after conversion (kcal/mol read as eV); training/screen.py"
    )
    min_distance: float = Field(0.1, description="Å: atoms closer than this are an error in the data (0: no check)")
    outliers: Literal[OUTLIER_POLICIES] = Field(
        "error", description="labels far outside the set (training/screen.py): error | exclude | keep"
    )
    outlier_energy_z: float = Field(25.0, description="robust z-score of the per-atom energy residual of the composition fit")
    outlier_force_ratio: float = Field(30.0, description="RMS force over the set's median RMS force")

    @field_validator("train")
    @classmethod
    def _train(cls, value):
        files = value if isinstance(value, list) else [value]
        if not files or not all(files):
            raise ValueError(f"expected a file name or a list of file names, got {value!r}")
        return value

    @field_validator("length_unit", "energy_unit")
    @classmethod
    def _unit(cls, value):
        unit_value(value)
        return value

    @property
    def train_files(self) -> list[str]:
        return self.train if isinstance(self.train, list) else [self.train]

    def reader_options(self) -> dict:
        """Keyword arguments of `forcefit.io.read_structures` for every data file."""
        return {
            "format": self.format,
            "energy_key": self.energy_key,
            "forces_key": self.forces_key,
            "stress_key": self.stress_key,
            "stress_format": self.stress_format,
            "length_unit": unit_value(self.length_unit, "data.length_unit"),
            "energy_unit": unit_value(self.energy_unit, "data.energy_unit"),
            "min_distance": self.min_distance,
        }


def model_settings(values: dict | None = None, **keys) -> ModelSettings:
    """The `model` section checked by its kind's own class (`Potential.Settings`): a key that kind
    does not read is an error naming the keys it does. `model_settings(kind="linear", cutoff=5.0)`
    builds one in Python."""
    if values is not None and not isinstance(values, dict):
        raise ValueError(f"model: expected a mapping of keys to values, got {type(values).__name__}")
    values = {**(values or {}), **keys}
    kind = values.get("kind", ModelSettings.model_fields["kind"].default)
    kinds = sorted(name for name, cls in MODELS.items() if cls.Settings is not None)
    if kind not in kinds:
        raise ValueError(f"model.kind: {kind!r}; a config builds one of {kinds}")
    return MODELS[kind].Settings.parse(values)


class LearnConfig(Settings):
    """`learn`: `forcefit learn`'s active learning (workflows/active_learning.py)."""

    section: ClassVar[str] = "learn"

    dataset: str = Field(min_length=1, description="extxyz with energies and forces; grows by `select` frames per round")
    test: str | None = Field(None, description="held-out extxyz for the per-round errors")
    reference: str = Field("gfn2-xtb", description="gfn2-xtb, gfn1-xtb, emt or module:Class")
    rounds: int = Field(3, ge=1, description="rounds of train → MD → select → label")
    select: int = Field(10, ge=1, description="new structures per round")
    min_spacing: int = Field(20, ge=1, description="MD steps between two selected frames")
    md_steps: int = Field(2000, description="MD steps per round")
    timestep: float = Field(0.5, description="fs")
    temperature: float = Field(500.0, description="K, Langevin")
    seed: int = Field(0, description="seed of the starting frames and of the MD velocities")
    selection: Literal["committee", "gamma"] = Field(
        "committee", description="committee: largest force disagreement; gamma: one model per round, largest extrapolation grade"
    )


SECTIONS = {"data": DataConfig, "training": TrainingConfig, "learn": LearnConfig}  # and model: by its kind (model_settings)


@dataclass
class Config:
    """A run: its sections and the run directory (`output`)."""

    data: DataConfig
    model: ModelSettings = field(default_factory=model_settings)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    output: str = "runs/run"
    learn: LearnConfig | None = None

    def to_dict(self) -> dict:
        sections = {"data": self.data, "model": self.model, "training": self.training, "learn": self.learn}
        return {**{name: s.model_dump() if s is not None else None for name, s in sections.items()}, "output": self.output}


# what a resume may change: how long to train, and where data and computation live (not what is computed)
RESUMABLE_CHANGES = {
    "training.epochs",
    "training.max_seconds",
    "training.early_stopping",
    "training.stage_two_epochs",
    "training.device",
    "training.memory_gb",
    "training.cache",
    "training.cache_dir",
    "output",
}


def fingerprint(config: Config) -> dict:
    """The settings a resumed run must share with the run it continues, flat as
    {"section.key": value}: everything but epoch counts, time budgets and the output."""
    flat = {}
    for section, values in config.to_dict().items():
        if isinstance(values, dict):
            flat.update({f"{section}.{key}": value for key, value in values.items()})
        else:
            flat[section] = values
    return {key: value for key, value in flat.items() if key not in RESUMABLE_CHANGES}


def config_from_dict(values: dict, where: str = "config") -> Config:
    """The run config from a YAML mapping; errors begin with `where` (the file)."""
    if not isinstance(values, dict):
        raise ValueError(f"{where}: expected a YAML mapping at the top level")
    unknown = sorted(set(values) - {*SECTIONS, "model", "output"})
    if unknown:
        raise ValueError(f"{where}: unknown section(s) {unknown}; valid are {sorted([*SECTIONS, 'model', 'output'])}")
    if values.get("learn", "absent") is None:  # as written by Config.to_dict
        values = {k: v for k, v in values.items() if k != "learn"}
    if "learn" in values and isinstance(values["learn"], dict):  # the loop trains on its own dataset
        values = {**values, "data": {"train": values["learn"].get("dataset", ""), **(values.get("data") or {})}}
    if "data" not in values:
        raise ValueError(f"{where}: the 'data' section (with data.train) is required")
    try:
        built = {name: cls.parse(values.get(name)) for name, cls in SECTIONS.items() if name in values}
        built["model"] = model_settings(values.get("model"))
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
    return Config(**built, output=str(values.get("output", "runs/run")))


def load_config(path) -> Config:
    """Read a YAML config; relative data paths are taken relative to the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such config file")
    with path.open() as handle:
        try:
            values = yaml.safe_load(handle)
        except yaml.YAMLError as err:
            raise ValueError(f"{path}: not valid YAML: {err}") from None
    config = config_from_dict(values, str(path))

    def resolve(value: str) -> str:
        return value if Path(value).is_absolute() else str((path.parent / value).resolve())

    for section, key in (("data", "train"), ("data", "validation"), ("data", "test"), ("learn", "dataset"), ("learn", "test")):
        holder = getattr(config, section)
        value = getattr(holder, key) if holder is not None else None
        if value:
            setattr(holder, key, [resolve(v) for v in value] if isinstance(value, list) else resolve(value))
    return config
