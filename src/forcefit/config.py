"""The YAML run configuration, loaded strictly into typed dataclasses.

An unknown or misspelt key is an error that names the key and the valid ones.

    data:     where the reference data are and how to read and split them
    model:    what to fit (kind, elements, symmetry functions, network)
    training: optimiser, schedule, loss weights, seed (see TrainingConfig)
    output:   the run directory
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from forcefit.io.extxyz import STRESS_FORMATS
from forcefit.units import unit_value

OUTLIER_POLICIES = ("error", "exclude", "keep")  # what training does with suspicious labels (training/screen.py)
CACHE_MODES = ("auto", "memory", "disk", "recompute")  # where training keeps cached descriptors (training/cache.py)


@dataclass
class DataConfig:
    train: str | list[str] = ""  # a file (extxyz, ASE .db, input.data) or a list of files
    validation: str | None = None  # a file of validation structures (default: the split of train)
    test: str | None = None  # a file of test structures, evaluated once at the end (default: the split of train)
    format: str | None = None  # extxyz | db | input.data; guessed from the name if omitted
    energy_key: str = "energy"  # extxyz/db: the key of the reference energy
    forces_key: str = "forces"  # extxyz/db: the per-atom array of reference forces
    stress_key: str | None = "stress"  # extxyz/db: read a reference stress under this key when present
    stress_format: str = "ase"  # ase (eV/Å³ in file units, ASE sign) | vasp-kbar (VASP's kB line, e.g. mlearn)
    length_unit: float | str = 1.0  # every format: Å per file length unit, or a name ('bohr')
    energy_unit: float | str = 1.0  # every format: eV per file energy unit, or a name ('hartree', 'kcal/mol')
    split: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])  # used for splits without a file
    split_seed: int = 0  # seed of the random train/validation/test split and of max_structures' sample
    max_structures: int | None = None  # use N structures of the training files, a random sample (split_seed) across them
    check_units: bool = True  # refuse files whose forces cannot be eV/Å after conversion (kcal/mol read as eV); training/screen.py
    min_distance: float = 0.1  # Å: atoms closer than this are an error in the data (0: no check)
    outliers: str = "error"  # labels far outside the set (training/screen.py): error | exclude | keep
    outlier_energy_z: float = 25.0  # robust z-score of the per-atom energy residual of the composition fit
    outlier_force_ratio: float = 30.0  # RMS force over the set's median RMS force

    def __post_init__(self) -> None:
        if not self.train:
            raise ValueError("data.train: the training data file is required")
        files = self.train if isinstance(self.train, list) else [self.train]
        if not all(isinstance(f, str) and f for f in files):
            raise ValueError(f"data.train: expected a file name or a list of file names, got {self.train!r}")
        unit_value(self.length_unit, "data.length_unit")
        unit_value(self.energy_unit, "data.energy_unit")

        if self.outliers not in OUTLIER_POLICIES:
            raise ValueError(f"data.outliers: {self.outliers!r}; expected one of {list(OUTLIER_POLICIES)}")
        if self.stress_format not in STRESS_FORMATS:
            raise ValueError(f"data.stress_format: {self.stress_format!r}; expected one of {list(STRESS_FORMATS)}")

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


@dataclass
class ModelConfig:
    kind: str = "bpnn"  # bpnn | linear | lj | morse | pair
    elements: list[str] | None = None  # default: the elements in the training data
    cutoff: float = 5.0  # Å
    # pair potentials (lj, morse, pair): starting parameters per element pair "A-B"
    # (or per element "A" with mixing: lorentz-berthelot), e.g. {"Ar-Ar": {"epsilon": 0.01, "sigma": 3.4}}
    parameters: dict | None = None
    cutoff_mode: str = "switch"  # shift | switch
    switch_on: float | None = None  # Å, start of the switching region (default 0.9 cutoff)
    mixing: str = "free"  # free | lorentz-berthelot
    function: str | None = None  # kind: pair — "module:function" computing φ(r, params)
    # symmetry functions' cutoff function: hard, cos, tanhu, tanh, exp, poly1–poly4 (n2p2's; descriptors/cutoff.py)
    cutoff_type: str = "tanh"
    cutoff_alpha: float = 0.0  # n2p2's inner cutoff fraction α: the cutoff function is 1 below α r_c
    n_radial: int = 8  # generated radial symmetry functions per centre and neighbour element (Gaussians on [r_min, cutoff))
    n_angular: int = 4  # generated angular radial windows per neighbour-element pair, each with λ = ±1 and every ζ
    angular_kind: str = "wide"  # wide (G5, n2p2 type 9) | narrow (G4, type 3)
    zetas: list[float] = field(default_factory=lambda: [1.0, 4.0])  # angular exponents ζ of the generated functions
    angular_grid: str = "centred"  # centred (r_s = 0, nested widths) | shifted (r_s on a grid, by neighbour shell)
    r_min: float = 0.8  # Å: the shortest distance the generated functions (and ACE's radial basis) resolve
    symmetry_functions: list[dict] | None = None  # explicit list instead of the generator
    descriptor: str = "symmetry_functions"  # symmetry_functions | ace (body-ordered invariants, descriptors/ace.py)
    # descriptor: ace — n_radial, l_max, body_order (2–5), n_radial_4, l_max_4, n_radial_5, l_max_5, cutoff_type (default poly2),
    # radial_power (0: Chebyshev in r; q > 0: in (1 + r)^−q, finer at short range);
    # embedding (E: per neighbour element, √ of E positive densities of decreasing range, Finnis–Sinclair-like; default 0);
    # degree_4, degree_5 (total-degree limits Σ (n + l) over the factors of order 4 / 5, within their n and l boxes; default none);
    # model.r_min and model.cutoff apply to it too
    ace: dict | None = None
    hidden: list[int] = field(default_factory=lambda: [25, 25])  # bpnn: widths of the hidden layers
    activation: str = "tanh"  # bpnn: hidden-layer activation (tanh, softplus, silu, gelu, relu, logistic, …; models/bpnn.py)
    scaling: str = "scalecenter"  # descriptor scaling: none | center | scale | scalecenter | scalesigma (descriptors/scaling.py)
    dtype: str = "float64"  # float64 | float32: the model's floating-point type
    # ZBL screened nuclear repulsion below the data's shortest distance per element pair (models/repulsion.py):
    # auto (zbl for bpnn and linear; none for pair potentials, whose form says what happens at short range) | zbl | none
    core_repulsion: str = "auto"

    def __post_init__(self) -> None:
        if self.core_repulsion not in ("auto", "zbl", "none"):
            raise ValueError(f"model.core_repulsion: {self.core_repulsion!r}; expected auto, zbl or none")
        if self.descriptor not in ("symmetry_functions", "ace"):
            raise ValueError(f"model.descriptor: {self.descriptor!r}; expected symmetry_functions or ace")
        if self.ace is not None and self.descriptor != "ace":
            raise ValueError("model.ace is read only with model.descriptor: ace")
        if self.dtype not in ("float64", "float32"):
            raise ValueError(f"model.dtype: {self.dtype!r}; expected float64 or float32")
        if not 0 < self.cutoff <= 30:
            raise ValueError(f"model.cutoff: {self.cutoff} Å; expected a distance in (0, 30] Å")
        if self.kind in ("bpnn", "linear") and not self.symmetry_functions and not 0 <= self.r_min < self.cutoff:
            raise ValueError(f"model.r_min: {self.r_min} Å; expected 0 ≤ r_min < model.cutoff ({self.cutoff} Å)")
        if self.n_radial < 0 or self.n_angular < 0 or any(h < 1 for h in self.hidden):
            raise ValueError("model.n_radial and model.n_angular must be ≥ 0 and every model.hidden width ≥ 1")


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


@dataclass
class TrainingConfig:
    epochs: int = 200  # passes over the training set (adam, lbfgs)
    batch_size: int = 16  # structures per optimizer step
    optimizer: str = "adam"  # adam | lbfgs | ridge (closed form, linear models only)
    learning_rate: float = 1e-3  # the optimizer's starting step size
    lr_factor: float = 0.5  # the learning rate is multiplied by this on a validation plateau
    lr_patience: int = 10  # epochs without validation improvement before the rate is cut
    min_learning_rate: float = 1e-6  # the rate is never cut below this
    early_stopping: int = 40  # epochs without validation improvement
    energy_weight: float = 1.0  # w_E of the loss
    force_weight: float = 1.0  # w_F of the loss
    stress_weight: float = 0.0  # weight of the stress term (eV/Å³, structures with a reference stress)
    energy_per_atom: bool = True  # the energy term compares energies per atom (else per structure)
    # where the reference data's zero goes: element (energies per element, on the reference's scale) |
    # global (also a per-structure offset b, for sets that mix reference zeros; energies are then Σ E_i, reference Σ E_i − b)
    energy_offset: str = "element"
    seed: int = 0  # seed of the weights' initialisation and of the batch order
    max_seconds: float | None = None  # wall-time budget for the whole run
    ridge: float = 1e-8  # λ of the ridge term λ|c|² (optimizer: ridge)
    ridge_smoothness: float = 0.0  # p: coefficient f pays λ (1 + d_f)^p, d_f its degree Σ(n + l) (descriptor: ace); 0: plain ridge
    # optimizer ridge: choose energy_weight, ridge and ridge_smoothness by k-fold cross-validation over the
    # training set, e.g. {folds: 5, energy_weights: [1e3, 1e4], ridges: [1e-8, 1e-6], smoothness: [0, 2]}
    # (a list left out is the single value above); repeats: r repeats the split with r seeds and pools
    # the errors; group_weights: [{}, {Surface: 3}] settings of
    # the group factors below (on top of them); with targets: [E meV/atom, F meV/Å] the setting
    # closest to meeting both is chosen, otherwise the best sum of relative errors; training/cross_validation.py
    cross_validation: dict | None = None
    # {group: factor}: the structures of a configuration group weigh factor × their own weight in
    # the loss (every family), e.g. {Surface: 3} for a kind of structure the data hold few of
    group_weights: dict | None = None
    committee: int = 1  # train this many models (seeds seed, seed+1, …) and save them as one committee
    committee_fraction: float = 1.0  # fraction of the training set each member sees (drawn per member)
    stage_two_epochs: int = 0  # extra epochs after the main stage (0: no stage two); max_seconds bounds the main stage only
    stage_two_energy_weight: float | None = None  # default: energy_weight
    stage_two_force_weight: float | None = None  # default: force_weight
    stage_two_learning_rate: float | None = None  # default: the rate the main stage ended with
    device: str = "cpu"  # cpu | cuda (under torchrun: each process's own GPU) | cuda:N | auto (a GPU if there is one)
    # GB for cached descriptors (training/cache.py); default: FORCEFIT_MEMORY_GB, else a quarter of RAM per node
    memory_gb: float | None = None
    cache: str = "auto"  # auto | memory | disk | recompute: where cached descriptors live (auto: memory if they fit)
    cache_dir: str | None = None  # disk cache directory; default $FORCEFIT_CACHE or ~/.cache/forcefit

    def __post_init__(self) -> None:
        if self.optimizer not in ("adam", "lbfgs", "ridge"):
            raise ValueError(f"training.optimizer: {self.optimizer!r}; expected 'adam', 'lbfgs' or 'ridge'")
        if self.energy_offset not in ("element", "global"):
            raise ValueError(f"training.energy_offset: {self.energy_offset!r}; expected 'element' or 'global'")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("training.epochs and training.batch_size must be at least 1")
        if self.committee < 1 or not 0 < self.committee_fraction <= 1:
            raise ValueError("training.committee must be ≥ 1 and training.committee_fraction in (0, 1]")
        if self.ridge < 0 or self.ridge_smoothness < 0:
            raise ValueError("training.ridge and training.ridge_smoothness must be ≥ 0")
        if self.cross_validation is not None:
            self.cross_validation = cross_validation_grid(self.cross_validation, self)
        if self.group_weights is not None:
            self.group_weights = group_weight_map(self.group_weights, "training.group_weights")
        if self.stage_two_epochs < 0:
            raise ValueError("training.stage_two_epochs must be ≥ 0")
        if self.cache not in CACHE_MODES:
            raise ValueError(f"training.cache: {self.cache!r}; expected one of {list(CACHE_MODES)}")
        if self.memory_gb is not None and self.memory_gb <= 0:
            raise ValueError(f"training.memory_gb: {self.memory_gb}; expected a positive number of GB")
        if not (self.device in ("cpu", "cuda", "auto") or self.device.startswith("cuda:")):
            raise ValueError(f"training.device: {self.device!r}; expected cpu, cuda, cuda:N or auto")


@dataclass
class LearnConfig:
    """`forcefit learn`: query-by-committee active learning (workflows/active_learning.py)."""

    dataset: str = ""  # extxyz with energies and forces; grows by `select` frames per round
    test: str | None = None  # held-out extxyz for the per-round errors
    reference: str = "gfn2-xtb"  # gfn2-xtb, gfn1-xtb, emt or module:Class
    rounds: int = 3  # rounds of train → MD → select → label
    select: int = 10  # new structures per round
    min_spacing: int = 20  # MD steps between two selected frames
    md_steps: int = 2000  # MD steps per round
    timestep: float = 0.5  # fs
    temperature: float = 500.0  # K, Langevin
    seed: int = 0  # seed of the starting frames and of the MD velocities
    selection: str = "committee"  # committee: largest force disagreement; gamma: one model per round, largest extrapolation grade

    def __post_init__(self) -> None:
        if not self.dataset:
            raise ValueError("dataset: the starting labelled dataset (extxyz) is required")
        if self.selection not in ("committee", "gamma"):
            raise ValueError(f"selection: 'committee' or 'gamma', not {self.selection!r}")
        if self.rounds < 1 or self.select < 1 or self.min_spacing < 1:
            raise ValueError("rounds, select and min_spacing must be at least 1")


@dataclass
class Config:
    data: DataConfig
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    output: str = "runs/run"
    learn: LearnConfig | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


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


def _number(value, kind: type, where: str):
    """An int or float from YAML. PyYAML reads `1e-3` (no dot) as a string, so numeric
    strings are accepted; anything else is an error naming the key."""
    if isinstance(value, bool):
        raise ValueError(f"{where}: expected a number, got {value!r}")
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ValueError(f"{where}: expected a number, got {value!r}") from None
    if not isinstance(value, (int, float)):
        raise ValueError(f"{where}: expected a number, got {value!r}")
    if kind is int:
        if float(value) != int(value):
            raise ValueError(f"{where}: expected a whole number, got {value!r}")
        return int(value)
    return float(value)


def _coerce(value, annotation: str, where: str):
    """Check a config value against its field's annotation (a string such as
    'float', 'int | None', 'list[float]' or 'float | str'); numbers are converted."""
    options = [option.strip() for option in annotation.split("|")]
    if value is None:
        if "None" in options:
            return None
        raise ValueError(f"{where}: a value is required")
    if options[0] in ("int", "float"):
        if isinstance(value, str) and "str" in options:
            try:
                return _number(value, float, where)
            except ValueError:
                return value
        return _number(value, int if options[0] == "int" else float, where)
    if options[0] in ("list[int]", "list[float]"):
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{where}: expected a list of numbers, got {value!r}")
        kind = int if options[0] == "list[int]" else float
        return [_number(v, kind, f"{where}[{n}]") for n, v in enumerate(value)]
    if options[0] == "bool" and not isinstance(value, bool):
        raise ValueError(f"{where}: expected true or false, got {value!r}")
    return value


def _build(cls, values, where: str):
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ValueError(f"{where}: expected a mapping of keys to values, got {type(values).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; valid keys are {sorted(fields)}")
    values = {key: _coerce(value, str(fields[key].type), f"{where}.{key}") for key, value in values.items()}
    try:
        return cls(**values)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: {err}") from None


def config_from_dict(values: dict, where: str = "config") -> Config:
    if not isinstance(values, dict):
        raise ValueError(f"{where}: expected a YAML mapping at the top level")
    sections = {"data": DataConfig, "model": ModelConfig, "training": TrainingConfig, "learn": LearnConfig}
    unknown = sorted(set(values) - set(sections) - {"output"})
    if unknown:
        raise ValueError(f"{where}: unknown section(s) {unknown}; valid are {sorted(sections) + ['output']}")
    if values.get("learn", "absent") is None:  # as written by Config.to_dict
        values = {k: v for k, v in values.items() if k != "learn"}
    if "learn" in values and isinstance(values["learn"], dict):  # the loop trains on its own dataset
        values = {**values, "data": {"train": values["learn"].get("dataset", ""), **(values.get("data") or {})}}
    if "data" not in values:
        raise ValueError(f"{where}: the 'data' section (with data.train) is required")
    built = {name: _build(cls, values.get(name), f"{where}: {name}") for name, cls in sections.items() if name in values}
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
