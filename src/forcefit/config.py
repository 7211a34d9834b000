"""The YAML run configuration, loaded strictly into typed settings (forcefit/settings.py).

An unknown or misspelt key is an error that names the key and the valid ones; every key's
type, default and meaning is in its class, and docs/config.md is generated from them.

    data:     where the reference data are and how to read and split them (DataConfig)
    model:    what to fit: `kind` picks the class that checks the rest (`model_settings`,
              each kind's own `Settings` in its module under forcefit/models)
    training: optimiser, schedule, loss weights, seed (TrainingConfig)
    learn:    `forcefit learn`'s active-learning loop (LearnConfig)
    output:   the run directory
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

import yaml
from pydantic import Field, StrictBool, ValidationInfo, field_validator, model_validator

from forcefit.io.extxyz import STRESS_FORMATS
from forcefit.models.registry import MODELS
from forcefit.settings import ModelSettings, Settings
from forcefit.units import unit_value

OUTLIER_POLICIES = ("error", "exclude", "keep")  # what training does with suspicious labels (training/screen.py)
CACHE_MODES = ("auto", "memory", "disk", "recompute")  # where training keeps cached descriptors (training/cache.py)


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
    def _unit(cls, value, info: ValidationInfo):
        unit_value(value, f"data.{info.field_name}")
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


def model_settings(values: dict | None = None, where: str = "model", **keys) -> ModelSettings:
    """The `model` section checked by its kind's own class (`Potential.Settings`): a key that kind
    does not read is an error naming the keys it does. `model_settings(kind="linear", cutoff=5.0)`
    builds one in Python."""
    if isinstance(values, ModelSettings):
        return values
    values = {**(values or {}), **keys}
    kind = values.get("kind", ModelSettings.model_fields["kind"].default)
    kinds = sorted(name for name, cls in MODELS.items() if cls.Settings is not None)
    if kind not in kinds:
        raise ValueError(f"{where}.kind: {kind!r}; a config builds one of {kinds}")
    try:
        return MODELS[kind].Settings.parse(values, where)
    except ValueError as err:
        raise ValueError(f"{err} (model.kind {kind!r})" if "unknown key" in str(err) else str(err)) from None


CROSS_VALIDATION_KEYS = {
    "folds": "int ≥ 2",
    "energy_weights": "list of numbers > 0",
    "ridges": "list of numbers ≥ 0",
    "smoothness": "list of numbers ≥ 0",
    "seed": "int",
    "repeats": "int ≥ 1 (the k-fold split repeated with seeds seed, seed + 1, …; errors pooled)",
    "targets": "[energy meV/atom, forces meV/Å], both > 0",
    "group_weights": "list of {group: factor > 0} maps (each a setting; {} weighs every group alike)",
}


def group_weight_map(values, where: str) -> dict[str, float]:
    """{group: factor} checked: group names, factors > 0."""
    try:
        weights = {str(name): float(factor) for name, factor in values.items()}
    except (AttributeError, TypeError, ValueError):
        weights = {"": -1.0}
    if any(not name or not factor > 0 for name, factor in weights.items()):
        raise ValueError(f"{where}: {values!r}; expected a map of configuration group names to factors > 0, e.g. {{Surface: 3}}")
    return weights


def cross_validation_grid(values, training) -> dict:
    """training.cross_validation completed: every key present, lists of floats (checked)."""
    if not isinstance(values, dict) or set(values) - set(CROSS_VALIDATION_KEYS):
        unknown = sorted(set(values) - set(CROSS_VALIDATION_KEYS)) if isinstance(values, dict) else values
        raise ValueError(f"training.cross_validation: unknown {unknown!r}; expected keys {', '.join(CROSS_VALIDATION_KEYS)}")
    if training.optimizer != "ridge":
        raise ValueError("training.cross_validation chooses the closed-form fit's settings: it needs training.optimizer: ridge")
    grid = {
        "folds": values.get("folds", 5),
        "seed": values.get("seed", training.seed),
        "repeats": values.get("repeats", 1),
        "energy_weights": values.get("energy_weights", [training.energy_weight]),
        "ridges": values.get("ridges", [training.ridge]),
        "smoothness": values.get("smoothness", [training.ridge_smoothness]),
    }
    for key in ("energy_weights", "ridges", "smoothness"):
        entries = grid[key] if isinstance(grid[key], list) else [grid[key]]
        try:
            grid[key] = [float(x) for x in entries]
        except (TypeError, ValueError):
            raise ValueError(f"training.cross_validation.{key}: {grid[key]!r}; expected {CROSS_VALIDATION_KEYS[key]}") from None
        if not grid[key] or (key != "energy_weights" and min(grid[key]) < 0) or (key == "energy_weights" and min(grid[key]) <= 0):
            raise ValueError(f"training.cross_validation.{key}: {grid[key]!r}; expected {CROSS_VALIDATION_KEYS[key]}")
    if "group_weights" in values:
        entries = values["group_weights"]
        if not isinstance(entries, list) or not entries:
            raise ValueError(f"training.cross_validation.group_weights: {entries!r}; expected {CROSS_VALIDATION_KEYS['group_weights']}")
        grid["group_weights"] = [group_weight_map(e, "training.cross_validation.group_weights") for e in entries]
    if "targets" in values:
        targets = values["targets"]
        try:
            grid["targets"] = [float(x) for x in targets]
        except (TypeError, ValueError):
            grid["targets"] = []
        if len(grid["targets"]) != 2 or min(grid["targets"]) <= 0:
            raise ValueError(f"training.cross_validation.targets: {targets!r}; expected {CROSS_VALIDATION_KEYS['targets']}")
    if not isinstance(grid["repeats"], int) or isinstance(grid["repeats"], bool) or grid["repeats"] < 1:
        raise ValueError(f"training.cross_validation.repeats: {grid['repeats']!r}; expected {CROSS_VALIDATION_KEYS['repeats']}")
    if not isinstance(grid["folds"], int) or grid["folds"] < 2 or not isinstance(grid["seed"], int):
        raise ValueError(f"training.cross_validation: folds {grid['folds']!r}, seed {grid['seed']!r}; expected an int ≥ 2 and an int")
    return grid


class TrainingConfig(Settings):
    """`training`: optimiser, schedule, loss weights, seed, where the work runs."""

    section: ClassVar[str] = "training"

    epochs: int = Field(200, ge=1, description="passes over the training set (adam, lbfgs)")
    batch_size: int = Field(16, ge=1, description="structures per optimizer step")
    optimizer: Literal["adam", "lbfgs", "ridge"] = Field("adam", description="adam | lbfgs | ridge (closed form, linear models only)")
    learning_rate: float = Field(1e-3, description="the optimizer's starting step size")
    lr_factor: float = Field(0.5, description="the learning rate is multiplied by this on a validation plateau")
    lr_patience: int = Field(10, description="epochs without validation improvement before the rate is cut")
    min_learning_rate: float = Field(1e-6, description="the rate is never cut below this")
    early_stopping: int = Field(40, description="epochs without validation improvement")
    energy_weight: float = Field(1.0, description="w_E of the loss")
    force_weight: float = Field(1.0, description="w_F of the loss")
    stress_weight: float = Field(0.0, description="weight of the stress term (eV/Å³, structures with a reference stress)")
    energy_per_atom: StrictBool = Field(True, description="the energy term compares energies per atom (else per structure)")
    energy_offset: Literal["element", "global"] = Field(
        "element",
        description="where the reference data's zero goes: element (energies per element, on the reference's scale) | "
        "global (also a per-structure offset b, for sets that mix reference zeros; energies are then Σ E_i, reference Σ E_i − b)",
    )
    seed: int = Field(0, description="seed of the weights' initialisation and of the batch order")
    max_seconds: float | None = Field(None, description="wall-time budget for the whole run")
    ridge: float = Field(1e-8, ge=0, description="λ of the ridge term λ|c|² (optimizer: ridge)")
    ridge_smoothness: float = Field(
        0.0, ge=0, description="p: coefficient f pays λ (1 + d_f)^p, d_f its degree Σ(n + l) (descriptor: ace); 0: plain ridge"
    )
    cross_validation: dict | None = Field(
        None,
        description="optimizer ridge: choose energy_weight, ridge and ridge_smoothness by k-fold cross-validation over the "
        "training set, e.g. {folds: 5, energy_weights: [1e3, 1e4], ridges: [1e-8, 1e-6], smoothness: [0, 2]} (a list left "
        "out is the single value above); repeats: r repeats the split with r seeds and pools the errors; group_weights: "
        "[{}, {Surface: 3}] settings of the group factors below (on top of them); with targets: [E meV/atom, F meV/Å] the "
        "setting closest to meeting both is chosen, otherwise the best sum of relative errors; training/cross_validation.py",
    )
    group_weights: dict | None = Field(
        None,
        description="{group: factor}: the structures of a configuration group weigh factor × their own weight in the loss "
        "(every family), e.g. {Surface: 3} for a kind of structure the data hold few of",
    )
    committee: int = Field(1, ge=1, description="train this many models (seeds seed, seed+1, …) and save them as one committee")
    committee_fraction: float = Field(1.0, gt=0, le=1, description="fraction of the training set each member sees (drawn per member)")
    stage_two_epochs: int = Field(
        0, ge=0, description="extra epochs after the main stage (0: no stage two); max_seconds bounds the main stage only"
    )
    stage_two_energy_weight: float | None = Field(None, description="stage two's w_E; default: energy_weight")
    stage_two_force_weight: float | None = Field(None, description="stage two's w_F; default: force_weight")
    stage_two_learning_rate: float | None = Field(None, description="stage two's step size; default: the rate the main stage ended with")
    device: str = Field("cpu", description="cpu | cuda (under torchrun: each process's own GPU) | cuda:N | auto (a GPU if there is one)")
    memory_gb: float | None = Field(
        None, gt=0, description="GB for cached descriptors (training/cache.py); default: FORCEFIT_MEMORY_GB, else a quarter of RAM per node"
    )
    cache: Literal[CACHE_MODES] = Field(
        "auto", description="auto | memory | disk | recompute: where cached descriptors live (auto: memory if they fit)"
    )
    cache_dir: str | None = Field(None, description="disk cache directory; default $FORCEFIT_CACHE or ~/.cache/forcefit")

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if not (value in ("cpu", "cuda", "auto") or value.startswith("cuda:")):
            raise ValueError(f"{value!r}; expected cpu, cuda, cuda:N or auto")
        return value

    @field_validator("group_weights")
    @classmethod
    def _group_weights(cls, value):
        return None if value is None else group_weight_map(value, "training.group_weights")

    @model_validator(mode="after")
    def _grid(self) -> TrainingConfig:
        if self.cross_validation is not None:
            self.cross_validation = cross_validation_grid(self.cross_validation, self)
        return self


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
        built = {name: cls.parse(values.get(name), name) for name, cls in SECTIONS.items() if name in values}
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
