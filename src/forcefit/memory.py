"""The one memory setting: how many GB forcefit may hold in descriptors and their derivatives.

`FORCEFIT_MEMORY_GB` in the environment sets it; otherwise it is a quarter of the machine's
memory, shared by the processes of this node (torchrun's LOCAL_WORLD_SIZE). A training run's
`training.memory_gb` overrides it for that run. It bounds the training cache (whether it stays
in memory, `training/cache.py`) and how many centre atoms a prediction evaluates at once
(`models/forces.py`). Read when asked, so that a change of the environment takes effect.
"""

from __future__ import annotations

import os


def memory_budget_gb() -> float:
    """GB: FORCEFIT_MEMORY_GB, else a quarter of physical memory per process of this node."""
    if os.environ.get("FORCEFIT_MEMORY_GB"):
        value = float(os.environ["FORCEFIT_MEMORY_GB"])
        if not value > 0:
            raise ValueError(f"FORCEFIT_MEMORY_GB={os.environ['FORCEFIT_MEMORY_GB']}: expected a positive number of GB")
        return value
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    return 0.25 * total / max(1, int(os.environ.get("LOCAL_WORLD_SIZE", 1)))
