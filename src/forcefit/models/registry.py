"""Model kinds by name. Each kind's module registers its class (`@register`); a config's or a
model file's `kind` finds it here (run.py, saving.py, a committee's members). Importing any
module of forcefit.models imports the package first, which imports every kind: a new kind is
its own module plus one import line in `models/__init__.py`."""

from __future__ import annotations

from forcefit.registry import Registry

MODELS = Registry("model")
register = MODELS.register  # class decorator: `cls.kind` names the class in configs and model files
