"""The config file's reference (docs/config.md), generated from the settings classes: every
key of every section with its type, default and meaning (the field's `description`), the
`model` keys per kind from each kind's own class. `undocumented()` names any key without a
description; the test suite fails on it and on a docs/config.md that is not this output.

    python -m forcefit.config_reference > docs/config.md
"""

from __future__ import annotations

import re

from pydantic_core import PydanticUndefined

from forcefit.config import SECTIONS
from forcefit.descriptors.ace_basis import AceBasis
from forcefit.models.registry import MODELS
from forcefit.settings import ModelSettings
from forcefit.training.settings import CrossValidationSettings


def tables() -> dict[str, tuple[type, list[str]]]:
    """{heading: (settings class, the keys it adds to its parent)}, in the reference's order:
    data; model: the keys every kind reads, then each class of kind keys after its parent
    (the descriptor kinds' shared keys, then the network's), model.ace; training; learn;
    training.cross_validation."""
    users: dict[type, list[str]] = {}  # each model settings class: the kinds that read its keys
    for name, cls in MODELS.items():
        for settings in reversed(cls.Settings.__mro__ if cls.Settings else ()):
            if isinstance(settings, type) and issubclass(settings, ModelSettings) and settings is not ModelSettings:
                users.setdefault(settings, []).append(name)
    out = {"data": (SECTIONS["data"], list(SECTIONS["data"].model_fields)), "model": (ModelSettings, list(ModelSettings.model_fields))}
    for settings, names in users.items():
        inherited = settings.__mro__[1].model_fields
        out[f"model, kind: {' | '.join(names)}"] = (settings, [key for key in settings.model_fields if key not in inherited])
    out["model.ace"] = (AceBasis, list(AceBasis.model_fields))
    out |= {name: (cls, list(cls.model_fields)) for name, cls in SECTIONS.items() if name != "data"}
    out["training.cross_validation"] = (CrossValidationSettings, list(CrossValidationSettings.model_fields))
    return out


def undocumented() -> list[str]:
    """`heading.key` of every config key without a description."""
    return [f"{heading}.{key}" for heading, (cls, keys) in tables().items() for key in keys if not cls.model_fields[key].description]


def _type(annotation) -> str:
    """The annotation as a reader writes it: `float | None`, `AceBasis | None`, `list[float]`
    (constraints such as > 0 are in the meaning, not the type)."""
    text = str(annotation).replace("typing.", "").replace("NoneType", "None")
    text = re.sub(r"<class '(?:[\w.]+\.)?(\w+)'>|(?:forcefit\.[\w.]+\.)(\w+)", lambda m: m.group(1) or m.group(2), text)
    while "Annotated[" in text:  # Annotated[X, FieldInfo(...)] → X
        start = text.index("Annotated[")
        depth, end, comma = 0, start + len("Annotated["), None
        for end in range(start + len("Annotated["), len(text)):
            if text[end] in "[(":
                depth += 1
            elif text[end] in "])":
                depth -= 1
            elif depth == 0 and text[end] == "," and comma is None:
                comma = end
            if depth < 0:
                break
        text = text[:start] + text[start + len("Annotated[") : comma] + text[end + 1 :]
    return text


def _default(field) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "required"
    return f"`{field.get_default(call_default_factory=True)!r}`"


def reference() -> str:
    lines = [
        "# Config reference",
        "",
        "Every key of a forcefit config file (YAML), by section, with its type, default and meaning.",
        "Generated from the settings classes (forcefit/config.py, training/settings.py, each model kind's `Settings`) by",
        "`python -m forcefit.config_reference > docs/config.md`; the test suite fails when a key has",
        "no description or when this file is out of date. The top level also takes `output` (the run",
        "directory). `model.kind` decides which of the model tables apply: the first, and the kind's own.",
        "How the sections are used: [usage.md](usage.md).",
    ]
    for heading, (cls, keys) in tables().items():
        lines += ["", f"## `{heading}`", "", "| key | type | default | meaning |", "|---|---|---|---|"]
        for key in keys:
            field = cls.model_fields[key]
            meaning = (field.description or "").replace("|", "\\|")
            kind = _type(field.annotation).replace("|", "\\|")
            lines.append(f"| `{key}` | `{kind}` | {_default(field)} | {meaning} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(reference(), end="")
