"""Saved models: plain data only, never a pickled object.

A `.ffm` file is a `torch.save`d dict of strings, numbers, lists and tensors:

    format: "forcefit-model", version: 1, kind: model registry name,
    config: the model's get_config(), state: its state_dict(), dtype,
    units: {"energy": "eV", "length": "Å"}, forcefit_version: the writer's version,
    metadata: free-form (e.g. training info)

It is read back with `torch.load(..., weights_only=True)`, which refuses anything
that is not plain data. The config carries what the calculator needs: elements,
cutoffs, symmetry functions; the state carries scaling, e_ref, b and weights.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from forcefit import __version__

FORMAT = "forcefit-model"
VERSION = 1


def model_to_dict(model, metadata: dict | None = None) -> dict:
    return {
        "format": FORMAT,
        "version": VERSION,
        "kind": model.kind,
        "config": model.get_config(),
        "state": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "dtype": str(model.energy_offset.dtype).removeprefix("torch."),
        "units": {"energy": "eV", "length": "Å"},
        "forcefit_version": __version__,
        "metadata": metadata or {},
    }


def model_from_dict(data: dict, source: str = "model"):
    from forcefit.models import MODELS

    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{source}: not a forcefit model file")
    if data.get("version") != VERSION:
        raise ValueError(f"{source}: model format version {data.get('version')}; this forcefit reads version {VERSION}")
    kind = data["kind"]
    if kind not in MODELS:
        raise ValueError(f"{source}: unknown model kind {kind!r}; known: {sorted(MODELS)}")
    model = MODELS[kind].from_config(data["config"])
    model = model.to(getattr(torch, data["dtype"]))
    try:
        model.load_state_dict(data["state"])
    except RuntimeError as err:
        first = str(err).splitlines()[1].strip()[:300] if len(str(err).splitlines()) > 1 else str(err)[:300]
        raise ValueError(f"{source}: its tensors do not fit the model its config describes ({first})") from None
    return model


def atomic_save(obj, path) -> None:
    """torch.save to a temporary file, then rename: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def atomic_write_text(path, text: str) -> None:
    """Write a text file through a temporary file and a rename: never half a file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def save_model(model, path, metadata: dict | None = None) -> None:
    atomic_save(model_to_dict(model, metadata), path)


def describe_file(path) -> str:
    """A person's summary of a model file: what it is, what it needs, where it came from."""
    path = Path(path)
    model = load_model(path)
    data = torch.load(path, map_location="cpu", weights_only=True)
    lines = [
        f"{path}: forcefit model, kind {model.kind}, written by forcefit {data.get('forcefit_version', 'before 0.1.0')}",
        f"elements {model.elements}, cutoff {model.cutoff:.4f} Å" + (f" (angular {model.angular_cutoff:.4f} Å)" if model.angular_cutoff else ""),
        f"{sum(p.numel() for p in model.parameters())} parameters, dtype {data['dtype']}, units eV and Å",
    ]
    members = getattr(model, "members", None)
    if members is not None:
        lines.append(f"committee of {len(members)} members")
    descriptor = getattr(model, "descriptor", None)
    if descriptor is not None:
        lines.append(f"symmetry functions per element {descriptor.n_features_per_element}, cutoff function {descriptor.cutoff_type}")
    hidden = getattr(members[0] if members is not None else model, "hidden", None)
    if hidden:
        lines.append(f"hidden layers per element {hidden}")
    lines.append(f"energy offset b = {float(model.energy_offset.detach()):.6f} eV: the reference data's zero; reported energies "
                 "are the model's extensive Σ E_i, and the reference method's energy is predicted as E − b")
    metadata = data.get("metadata") or {}
    config = metadata.get("config")
    if config:
        train = config.get("data", {}).get("train")
        lines.append(f"trained on {train} ({config.get('model', {}).get('kind')}, {config.get('training', {}).get('epochs')} epochs)")
    if metadata.get("imported_from"):
        lines.append(f"imported from {metadata['imported_from']}")
    return "\n".join(lines)


def load_model(path):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"{path}: cannot be read as a forcefit model (plain data only): {err}") from err
    return model_from_dict(data, str(path))
