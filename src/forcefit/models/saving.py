"""Saved models: plain data only, never a pickled object.

A `.ffm` file is a `torch.save`d dict of strings, numbers, lists and tensors:

    format: "forcefit-model", version: 3, kind: model registry name,
    config: the model's get_config(), state: its state_dict(), dtype,
    units: {"energy": "eV", "length": "Å"}, forcefit_version: the writer's version,
    metadata: free-form (e.g. training info), checksum: SHA-256 of everything else

It is read back with `torch.load(..., weights_only=True)`, which refuses anything
that is not plain data. The checksum (over a canonical serialisation: JSON with sorted
keys, tensors by name, dtype, shape and bytes) is verified before anything is built,
then every field is checked (types, finite tensors, cutoffs in range), so a damaged
or edited file gives an error naming it instead of changed predictions. The config
carries what the calculator needs: elements, cutoffs, symmetry functions; the state
carries scaling, e_ref, b, weights, the core repulsion's radii and ACE's inner cutoffs.
Version 2 files are read too: their pair potentials get e_Z = 0 and keep their b, their ACE
descriptors no inner cutoff, and none has a core repulsion.

A model whose config names Python code (`kind: pair` with `function: module:name`)
is loaded only with `trust_code=True` (`--trust-code`): importing a module named in
a file would run whatever that module holds.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import torch

from forcefit.files import atomic_save
from forcefit.models.registry import MODELS
from forcefit.version import __version__

FORMAT = "forcefit-model"
VERSION = 3
READABLE = (2, 3)  # version 2: pair potentials without element energies (read with e_Z = 0)
MAX_CUTOFF = 30.0  # Å; a larger cutoff in a file is damage, not a model


def checksum(data: dict) -> str:
    """SHA-256 of a model dict without its checksum, independent of pickling details."""
    digest = hashlib.sha256()
    plain = {k: v for k, v in data.items() if k not in ("state", "checksum")}
    digest.update(json.dumps(plain, sort_keys=True, default=repr).encode())
    for name in sorted(data.get("state", {})):
        tensor = data["state"][name]
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def model_to_dict(model, metadata: dict | None = None) -> dict:
    data = {
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
    data["checksum"] = checksum(data)
    return data


def _names_code(kind: str, config) -> bool:
    """Does this model (or a committee member) import a Python function named in its config?"""
    if kind == "committee":
        return any(_names_code(m.get("kind"), m.get("config")) for m in config.get("members", []))
    return kind == "pair"


def _validate(data: dict, source: str) -> None:
    """Field-by-field check of a checksummed model dict before any model is built."""
    expected = {"kind": str, "config": dict, "state": dict, "dtype": str, "metadata": dict}
    for key, kind in expected.items():
        if not isinstance(data.get(key), kind):
            raise ValueError(f"{source}: field {key!r} should be a {kind.__name__}, got {type(data.get(key)).__name__}")
    if data["kind"] not in MODELS:
        raise ValueError(f"{source}: unknown model kind {data['kind']!r}; known: {sorted(MODELS)}")
    if data["dtype"] not in ("float32", "float64"):
        raise ValueError(f"{source}: dtype {data['dtype']!r}; expected float32 or float64")
    for name, tensor in data["state"].items():
        if not isinstance(tensor, torch.Tensor):
            raise ValueError(f"{source}: state entry {name!r} is not a tensor")
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ValueError(f"{source}: state entry {name!r} holds NaN or inf")

    def walk(value, where):
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{where}.{key}")
        elif isinstance(value, list):
            for n, item in enumerate(value):
                walk(item, f"{where}[{n}]")
        elif isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{source}: {where} is {value}")
        elif where.endswith(("cutoff", ".rc")) and isinstance(value, (int, float)) and not 0 < value <= MAX_CUTOFF:
            raise ValueError(f"{source}: {where} = {value} Å is outside (0, {MAX_CUTOFF}] Å")

    walk(data["config"], "config")


def model_from_dict(data: dict, source: str = "model", trust_code: bool = False):
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{source}: not a forcefit model file")
    if data.get("version") not in READABLE:
        raise ValueError(f"{source}: model format version {data.get('version')!r}; this forcefit reads versions {READABLE}")
    try:
        intact = data.get("checksum") == checksum(data)
    except (ValueError, TypeError, RecursionError):  # damage can unpickle to a container that holds itself
        intact = False
    if not intact:
        raise ValueError(f"{source}: checksum mismatch: the file is damaged or was changed after it was written")
    _validate(data, source)
    kind = data["kind"]
    if _names_code(kind, data["config"]) and not trust_code:
        raise ValueError(
            f"{source}: this model's pair function is Python code named in the file; loading it imports and runs "
            "that module. Load it only if you trust where the file came from: trust_code=True (CLI: --trust-code)"
        )
    try:
        model = MODELS[kind].from_config(data["config"])
    except (TypeError, KeyError, AttributeError, ValueError) as err:
        raise ValueError(f"{source}: its config does not describe a valid {kind} model ({type(err).__name__}: {err})") from None
    model = model.to(getattr(torch, data["dtype"]))
    model.attach_grade(data["state"])
    try:
        missing, unexpected = model.load_state_dict(data["state"], strict=False)
    except RuntimeError as err:
        first = str(err).splitlines()[1].strip()[:300] if len(str(err).splitlines()) > 1 else str(err)[:300]
        raise ValueError(f"{source}: its tensors do not fit the model its config describes ({first})") from None
    # version 2 had no pair-potential element energies and no ACE inner cutoff: zeros, as built (none; no switch)
    allowed = [k for k in missing if data["version"] == 2 and k.endswith(("element_energies", "inner_radius"))]
    if unexpected or len(allowed) != len(missing):
        wrong = [f"missing {k}" for k in missing if k not in allowed] + [f"unexpected {k}" for k in unexpected]
        raise ValueError(f"{source}: its tensors do not fit the model its config describes ({', '.join(wrong)[:300]})")
    model.check_grade(source)
    return model


def save_model(model, path, metadata: dict | None = None) -> None:
    """Write a model file; a model with non-finite parameters is refused, never saved."""
    bad = [name for name, value in model.state_dict().items() if value.is_floating_point() and not torch.isfinite(value).all()]
    if bad:
        raise FloatingPointError(f"not writing {path}: the model's {', '.join(bad[:5])} hold NaN or inf")
    atomic_save(model_to_dict(model, metadata), path)


def describe_file(path, trust_code: bool = False) -> str:
    """A person's summary of a model file: what it is, what it needs, where it came from."""
    path = Path(path)
    model = load_model(path, trust_code=trust_code)
    data = torch.load(path, map_location="cpu", weights_only=True)
    first = model.members[0] if model.has_members else model
    lines = [
        f"{path}: forcefit model, kind {model.kind}, written by forcefit {data.get('forcefit_version', 'before 0.1.0')}, dtype {data['dtype']}",
        model.summary() + (f" (angular {model.angular_cutoff:.4f} Å)" if model.angular_cutoff else ""),
    ]
    if model.has_members:
        lines.append(f"committee of {len(model.members)} members")
    if getattr(first, "hidden", None):
        lines.append(f"hidden layers per element {first.hidden}")
    lines.append(offset_note(model))
    if model.core_repulsion is not None:
        n = len(model.elements)
        radii = ", ".join(
            f"{model.elements[a]}–{model.elements[b]} {float(model.core_repulsion.outer[a, b]):.3f}" for a in range(n) for b in range(a, n)
        )
        lines.append(f"core repulsion: ZBL below the training data's shortest distance per element pair (Å): {radii}")
    if model.has_grade:
        ranks = ", ".join(f"{e} {r}" for e, (_, r) in zip(model.elements, first.grade.shapes))
        lines.append(
            f"extrapolation grade γ: active set of training environments per element ({ranks}{' per member' if model.has_members else ''})"
        )
    elif model.uses_descriptors:
        lines.append("no extrapolation grade (a model not trained by this forcefit, or imported): the calculator reports no γ")
    metadata = data.get("metadata") or {}
    config = metadata.get("config")
    if config:
        train = config.get("data", {}).get("train")
        lines.append(f"trained on {train} ({config.get('model', {}).get('kind')}, {_how_trained(config.get('training', {}))})")
    if metadata.get("imported_from"):
        lines.append(f"imported from {metadata['imported_from']}")
    return "\n".join(lines)


def offset_note(model) -> str:
    """Where the model keeps the reference data's zero, as a person reads it."""
    b = float(model.energy_offset.detach())
    if b == 0.0:
        return "energies on the reference data's scale (its zero is carried by constants per element)"
    return (
        f"global energy offset b = {b:.6f} eV (training.energy_offset: global): reported energies are the model's "
        "extensive Σ E_i, and the reference method's energy is Σ E_i − b"
    )


def _how_trained(training: dict) -> str:
    """The fit as its config set it: a closed form has no epochs, a time budget may end a run early."""
    if training.get("optimizer") == "ridge":
        cv = training.get("cross_validation")
        chosen = f"settings chosen by {cv.get('folds')}-fold cross-validation" if cv else f"λ {training.get('ridge'):g}"
        return f"ridge in closed form, {chosen}"
    budget = f", or {training['max_seconds']:g} s" if training.get("max_seconds") else ""
    return f"{training.get('optimizer')}, up to {training.get('epochs')} epochs{budget}"


def load_model(path, trust_code: bool = False):
    """Read a model file (checksum and fields verified; code named in it only with `trust_code`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"{path}: cannot be read as a forcefit model (damaged, or not plain data): {str(err)[:300]}") from None
    return model_from_dict(data, str(path), trust_code)
