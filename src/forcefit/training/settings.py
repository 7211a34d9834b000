"""The trainer's own parameters (`TrainingConfig`, a run config's `training` section):
optimiser, schedule, loss weights, seed, where the work runs; and the checks of the
cross-validation grid and the group weights."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, StrictBool, field_validator, model_validator

from forcefit.settings import Settings

CACHE_MODES = ("auto", "memory", "disk", "recompute")  # where training keeps cached descriptors (training/cache.py)

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
