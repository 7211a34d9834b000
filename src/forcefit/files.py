"""Files forcefit writes: always whole (through a temporary file and a rename), and where its
caches live."""

from __future__ import annotations

import os
from pathlib import Path

import torch


def atomic_save(obj, path) -> None:
    """torch.save to a temporary file, then rename: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomically(path, lambda tmp: torch.save(obj, tmp))


def atomic_write_text(path, text: str) -> None:
    """Write a text file through a temporary file and a rename: never half a file."""
    _atomically(Path(path), lambda tmp: tmp.write_text(text))


def _atomically(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as err:  # torch reports a full disk as a RuntimeError
        tmp.unlink(missing_ok=True)
        raise OSError(
            f"cannot write {path}: {err} (is the disk full or the folder read-only?); the previous file, if any, is unchanged"
        ) from None


def default_cache_dir() -> Path:
    """$FORCEFIT_CACHE, else $XDG_CACHE_HOME/forcefit, else ~/.cache/forcefit."""
    if os.environ.get("FORCEFIT_CACHE"):
        return Path(os.environ["FORCEFIT_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "forcefit"
