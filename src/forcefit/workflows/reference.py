"""Reference calculators named on the command line.

"gfn2-xtb" / "gfn1-xtb" (tblite), "emt" (ASE), or any ASE calculator class as
"module:Class" (constructed without arguments)."""

from __future__ import annotations

import importlib


def reference_calculator(spec: str):
    name = spec.lower()
    if name in ("gfn2-xtb", "gfn1-xtb"):
        from tblite.ase import TBLite

        return TBLite(method=spec.upper().replace("XTB", "xTB"), verbosity=0)
    if name == "emt":
        from ase.calculators.emt import EMT

        return EMT()
    module, _, cls = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), cls)()
    except (ImportError, AttributeError, ValueError, TypeError) as err:
        raise ValueError(f"reference calculator {spec!r}: expected gfn2-xtb, gfn1-xtb, emt or 'module:Class' ({err})") from None
