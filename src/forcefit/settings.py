"""Typed settings: the base of every section of a run config, of each model kind's keys and of
the body-ordered descriptor's basis.

pydantic checks the types, fills the defaults and holds each key's meaning (its `description`),
from which docs/config.md is generated (forcefit/config_reference.py). What this module adds is
forcefit's error text: the key, what was expected and what was given, and for a key that does
not exist the keys that do.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

# pydantic's error types, said the way a config's reader needs them
EXPECTED = {
    "int_parsing": "expected a number",
    "int_type": "expected a number",
    "float_parsing": "expected a number",
    "float_type": "expected a number",
    "int_from_float": "expected a whole number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "string_type": "expected text",
    "list_type": "expected a list",
    "dict_type": "expected a mapping",
}


class Settings(BaseModel):
    """Keys checked against the class: an unknown or misspelt one is an error naming the valid ones."""

    model_config = ConfigDict(extra="forbid")
    section: ClassVar[str] = ""  # where the keys sit in a config file, for errors: "training", "model.ace"

    def __init__(self, /, **values):
        """Built in Python (`TrainingConfig(epochs=10)`): the same checks and error text as a file's."""
        try:
            super().__init__(**values)
        except ValidationError as err:
            raise SettingsError(describe(err, self.section or type(self).__name__)) from None

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, values):
        if values is None:
            return {}
        if isinstance(values, BaseModel):
            return values
        section = cls.section or cls.__name__
        if not isinstance(values, dict):
            raise ValueError(f"{section}: expected a mapping of keys to values, got {type(values).__name__}")
        unknown = sorted(set(values) - set(cls.model_fields))
        if unknown:  # settings chosen by a kind (the model's) say which kind's keys these are
            kind = f" for kind {values.get('kind', cls.model_fields['kind'].default)!r}" if "kind" in cls.model_fields else ""
            raise ValueError(f"{section}: unknown key(s) {unknown}{kind}; valid keys are {sorted(cls.model_fields)}")
        for key, value in values.items():  # pydantic would read true as 1
            if isinstance(value, bool) and cls.model_fields[key].annotation is not bool:
                expected = str(cls.model_fields[key].annotation).replace("<class '", "").replace("'>", "")
                raise ValueError(f"{section}.{key}: expected {expected}, got {value!r}")
        return values

    @classmethod
    def parse(cls, values):
        """The settings from a config file's mapping (None: every default)."""
        if values is not None and not isinstance(values, dict):
            raise SettingsError(f"{cls.section}: expected a mapping of keys to values, got {type(values).__name__}")
        return cls(**(values or {}))


class SettingsError(ValueError):
    """Settings that fail their checks; the message names each key in full (`training.epochs`)."""


def describe(err: ValidationError, where: str) -> str:
    """pydantic's errors as `where.key[n]: what was expected, got value`, one per line (the
    checks of several keys at once, which pydantic does not locate, name their keys in full)."""
    lines = []
    for error in err.errors():
        if isinstance(error.get("ctx", {}).get("error"), SettingsError):  # nested settings (built by their __init__): located already
            lines.append(str(error["ctx"]["error"]))
            continue
        # a union's member names (float, str, list[...]) are pydantic's, not keys
        loc = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"] if not _is_type_name(part))
        if error["type"] == "missing":
            lines.append(f"{where}{loc}: a value is required")
            continue
        message = EXPECTED.get(error["type"]) or error["msg"].replace("Input should be ", "expected ", 1)
        if message.startswith("expected"):
            message += f", got {error['input']!r}"
        message = message.removeprefix("Value error, ")
        lines.append(f"{where}{loc}: {message}" if loc else message)  # a check of the whole settings names its keys itself
    return "\n".join(dict.fromkeys(lines))  # a union's members may say the same twice


def _is_type_name(part) -> bool:
    return isinstance(part, str) and (part in ("int", "float", "str", "bool", "dict", "none") or "[" in part)


class ModelSettings(Settings):
    """The `model` keys every kind reads; each kind's class (`Potential.Settings`, in the kind's
    own module) adds its own."""

    section: ClassVar[str] = "model"

    kind: str = Field("bpnn", description="which model (`forcefit.models.MODELS`): bpnn | linear | lj | morse | pair")
    elements: list[str] | None = Field(None, description="the model's elements; default: the elements in the training data")
    cutoff: float = Field(5.0, description="Å: the interaction range")
    dtype: Literal["float64", "float32"] = Field("float64", description="the model's floating-point type")
    core_repulsion: Literal["auto", "zbl", "none"] = Field(
        "auto",
        description="ZBL screened nuclear repulsion below the data's shortest distance per element pair (models/repulsion.py): "
        "auto (zbl for bpnn and linear; none for pair potentials, whose form says what happens at short range) | zbl | none",
    )

    @field_validator("cutoff")
    @classmethod
    def _cutoff(cls, value: float) -> float:
        if not 0 < value <= 30:
            raise ValueError(f"{value} Å; expected a distance in (0, 30] Å")
        return value
