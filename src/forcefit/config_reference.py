"""The config file's reference (docs/config.md), generated from the config classes in
forcefit/config.py: every key of every section with its type, default and meaning. The
meaning is the comment that documents the field in config.py (on its line, or the comment
lines right above it), so a key cannot be added without it: `undocumented()` names any such
key, and the test suite fails on it and on a docs/config.md that is not this output.

    python -m forcefit.config_reference > docs/config.md
"""

from __future__ import annotations

import inspect
import re
import textwrap
from dataclasses import MISSING, fields

from forcefit.config import DataConfig, LearnConfig, ModelConfig, TrainingConfig

SECTIONS = {"data": DataConfig, "model": ModelConfig, "training": TrainingConfig, "learn": LearnConfig}
FIELD = re.compile(r"^\s{4}(\w+):\s")


def field_comments(cls) -> dict[str, str]:
    """{field: its documenting comment} from the class's source: the comment on the field's
    line, after any comment lines right above it."""
    comments, above = {}, []
    for line in textwrap.dedent(inspect.getsource(cls)).splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            above.append(stripped.lstrip("#").strip())
            continue
        match = FIELD.match(line)
        if match:
            trailing = line.split("  # ", 1)[1].strip() if "  # " in line else ""
            comments[match.group(1)] = " ".join([*above, trailing]).strip()
        above = []
    return comments


def _default(f) -> str:
    if f.default is not MISSING:
        return "required" if f.default == "" else repr(f.default)
    if f.default_factory is not MISSING:
        return repr(f.default_factory())
    return "required"


def undocumented() -> list[str]:
    """`section.key` of every config field without a documenting comment."""
    missing = []
    for section, cls in SECTIONS.items():
        comments = field_comments(cls)
        missing += [f"{section}.{f.name}" for f in fields(cls) if not comments.get(f.name)]
    return missing


def reference() -> str:
    lines = [
        "# Config reference",
        "",
        "Every key of a forcefit config file (YAML), by section, with its type, default and meaning.",
        "Generated from `src/forcefit/config.py` by `python -m forcefit.config_reference > docs/config.md`;",
        "the test suite fails when a key lacks its comment there or when this file is out of date.",
        "The top level also takes `output` (the run directory). How the sections are used: [usage.md](usage.md).",
    ]
    for section, cls in SECTIONS.items():
        comments = field_comments(cls)
        lines += ["", f"## `{section}`", "", "| key | type | default | meaning |", "|---|---|---|---|"]
        for f in fields(cls):
            meaning = comments.get(f.name, "").replace("|", "\\|")
            kind = str(f.type).replace("|", "\\|")
            lines.append(f"| `{f.name}` | `{kind}` | `{_default(f)}` | {meaning} |".replace("`required`", "required"))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(reference(), end="")
