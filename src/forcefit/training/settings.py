"""The trainer's own parameters (`TrainingConfig`, a run config's `training` section):
optimiser, schedule, loss weights, seed, where the work runs; and the grid cross-validation
chooses the closed-form fit's settings from (`CrossValidationSettings`)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, StrictBool, field_validator, model_validator

from forcefit.settings import Settings

CACHE_MODES = ("auto", "memory", "disk", "recompute")  # where training keeps cached descriptors (training/cache.py)

GroupWeights = dict[Annotated[str, Field(min_length=1)], Annotated[float, Field(gt=0)]]  # {configuration group: factor > 0}


class CrossValidationSettings(Settings):
    """`training.cross_validation` (optimizer: ridge): the grid of settings k-fold cross-validation
    over the training set chooses from (training/cross_validation.py). A list left out is the
    training section's own value; the config completes it."""

    section: ClassVar[str] = "training.cross_validation"

    folds: int = Field(5, ge=2, description="k of the k-fold split")
    energy_weights: list[Annotated[float, Field(gt=0)]] | None = Field(
        None, min_length=1, description="w_E to try (w_F = training.force_weight); default: [training.energy_weight]"
    )
    ridges: list[Annotated[float, Field(ge=0)]] | None = Field(None, min_length=1, description="λ to try; default: [training.ridge]")
    smoothness: list[Annotated[float, Field(ge=0)]] | None = Field(
        None, min_length=1, description="smoothness-prior exponents p to try; default: [training.ridge_smoothness]"
    )
    seed: int | None = Field(None, description="seed of the split; default: training.seed")
    repeats: int = Field(1, ge=1, description="the k-fold split repeated with seeds seed, seed + 1, …; the errors pooled")
    targets: list[Annotated[float, Field(gt=0)]] | None = Field(
        None,
        min_length=2,
        max_length=2,
        description="[E meV/atom, F meV/Å]: the setting closest to meeting both is chosen; default: the best sum of relative errors",
    )
    group_weights: list[GroupWeights] | None = Field(
        None, min_length=1, description="settings of the group factors to try, on top of training.group_weights, e.g. [{}, {Surface: 3}]"
    )


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
    cross_validation: CrossValidationSettings | None = Field(
        None, description="optimizer ridge: choose energy_weight, ridge and ridge_smoothness by k-fold cross-validation (the table below)"
    )
    group_weights: GroupWeights | None = Field(
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

    @model_validator(mode="after")
    def _grid(self) -> TrainingConfig:
        cv = self.cross_validation
        if cv is not None:
            if self.optimizer != "ridge":
                raise ValueError("training.cross_validation chooses the closed-form fit's settings: it needs training.optimizer: ridge")
            self.cross_validation = cv.model_copy(
                update={
                    "energy_weights": cv.energy_weights or [self.energy_weight],
                    "ridges": cv.ridges or [self.ridge],
                    "smoothness": cv.smoothness or [self.ridge_smoothness],
                    "seed": self.seed if cv.seed is None else cv.seed,
                }
            )
        return self
