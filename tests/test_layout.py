"""The package's imports follow the path data take: no module imports a later stage."""

import ast
from pathlib import Path

import forcefit

PACKAGE = Path(forcefit.__file__).parent
LAYERS = [  # each stage may import its own and earlier stages only
    {"units", "structures", "io", "config", "config_reference"},  # data in, units, run settings (and their reference)
    {"neighbors", "data"},  # neighbour graphs, flat batches
    {"descriptors"},
    {"models"},
    {"training"},
    {"reports", "run", "calculator", "interop"},  # evaluation and figures, a training run, ASE, other codes' files
    {"workflows", "testing", "api"},  # MD, properties, active learning; the model contract; the Python API
    {"cli", "__main__"},
]
STAGE = {name: n for n, names in enumerate(LAYERS) for name in names}


def forcefit_imports(path: Path) -> set[str]:
    """First component after `forcefit.` of every import in the file, lazy ones included."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        found |= {name.split(".")[1] for name in names if name.startswith("forcefit.")}
    return found


def test_every_module_belongs_to_a_stage():
    tops = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir() if not p.name.startswith(("_", ".")) and p.suffix in ("", ".py")}
    assert tops - {"py.typed"} <= set(STAGE), f"place these in LAYERS: {sorted(tops - set(STAGE))}"


def test_no_module_imports_a_later_stage():
    upward = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] == "__init__.py":
            continue  # the package root re-exports
        own = STAGE[relative.parts[0].removesuffix(".py")]
        upward += [f"{relative} imports forcefit.{name}" for name in forcefit_imports(path) if STAGE.get(name, -1) > own]
    assert not upward, "imports against the pipeline:\n" + "\n".join(sorted(upward))
