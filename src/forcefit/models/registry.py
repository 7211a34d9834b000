"""Model kinds by name. Each kind's module registers its class (`@register`); a config's or a
model file's `kind` finds it here (run.py, saving.py, a committee's members). Importing any
module of forcefit.models imports the package first, which imports every kind: a new kind is
its own module plus one import line in `models/__init__.py`."""

from __future__ import annotations

MODELS: dict[str, type] = {}


def register(cls: type) -> type:
    """Class decorator: `cls.kind` names the class in configs and model files."""
    if cls.kind in MODELS and MODELS[cls.kind] is not cls:
        raise ValueError(f"two model classes claim the kind {cls.kind!r}: {MODELS[cls.kind].__name__} and {cls.__name__}")
    MODELS[cls.kind] = cls
    return cls
