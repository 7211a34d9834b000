"""The package's imports follow the path data take: no module imports a later stage."""

import ast
from pathlib import Path

import forcefit

PACKAGE = Path(forcefit.__file__).parent
LAYERS = [  # each stage may import its own and earlier stages only
    {
        "version",
        "registry",
        "units",
        "structures",
        "io",
        "settings",
        "memory",
        "files",
    },  # data in, typed settings, budget, files
    {"neighbors", "data"},  # neighbour graphs, flat batches
    {"descriptors"},
    {"models"},
    {"training"},
    {"config", "config_reference"},  # the run config: the model section by each kind's own settings, training's own
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


def module_imports() -> dict[str, set[str]]:
    """{module: the forcefit modules it imports}, dotted names, `from package import module`
    resolved to the module; imports under `if TYPE_CHECKING:` (annotations only) left out."""

    def name_of(path: Path) -> str:
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    modules = {name_of(path): path for path in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        typing_only = {
            id(node)
            for block in ast.walk(tree)
            if isinstance(block, ast.If) and ast.unparse(block.test) == "TYPE_CHECKING"
            for node in ast.walk(block)
        }
        found = set()
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("forcefit"):
                found |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module for a in node.names}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("forcefit")}
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def test_no_import_cycles():
    """No module reaches itself through its imports (lazy ones included), so none needs an
    import inside a function to break a cycle."""
    graph = module_imports()
    state, cycles = {}, []

    def visit(module, path):
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                cycles.append(" → ".join(path[path.index(target) :] + [target]))
            elif target not in state:
                visit(target, path + [target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_imports_are_at_the_top_but_in_the_command_line():
    """A library module imports forcefit at its top; only the command line (and the package
    root's lazily loaded names) defer imports, so that `forcefit --help` starts fast."""
    lazy = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "cli.py" or path == PACKAGE / "__init__.py":
            continue
        for function in ast.walk(ast.parse(path.read_text())):
            if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                lazy += [
                    f"{path.relative_to(PACKAGE)}: {function.name} imports {node.module}"
                    for node in ast.walk(function)
                    if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("forcefit")
                ]
    assert not lazy, "\n".join(lazy)


def test_every_descriptor_family_and_model_kind_is_registered():
    """Both descriptor families implement the `Descriptor` protocol and are found by their kind,
    as model files name them; every model class is found by its kind."""
    from forcefit.descriptors import DESCRIPTORS, AceBasis, AtomicClusterExpansion, Descriptor, SymmetryFunctions, descriptor_from_config
    from forcefit.descriptors.symmetry_functions import generate_symmetry_functions
    from forcefit.models import BPNN, MODELS, Committee, CustomPair, LennardJones, LinearModel, Morse

    assert DESCRIPTORS == {"symmetry_functions": SymmetryFunctions, "ace": AtomicClusterExpansion}
    for descriptor in (
        SymmetryFunctions(["H", "O"], generate_symmetry_functions(["H", "O"], 4.0, 3, 1), "tanh"),
        AtomicClusterExpansion(["H", "O"], 4.0, AceBasis(n_radial=2, l_max=1, body_order=3, n_radial_4=1, l_max_4=0)),
    ):
        assert isinstance(descriptor, Descriptor)
        again = descriptor_from_config(descriptor.get_config())
        assert type(again) is type(descriptor) and again.get_config() == descriptor.get_config()
    assert set(MODELS.values()) == {BPNN, LinearModel, LennardJones, Morse, CustomPair, Committee}


def test_the_engines_compiled_code_is_one_file():
    """numba's on-disk cache is keyed by the file of the function it compiles: an edit to a
    callee or a constant in another file would leave a cached caller with the old code. So
    every compiled function and constant of the engine is in kernels.py, which imports from
    forcefit only records.py, and records.py holds types (no functions)."""
    engine = PACKAGE / "descriptors" / "engine"
    kernels = ast.parse((engine / "kernels.py").read_text())
    imported = {
        node.module for node in ast.walk(kernels) if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("forcefit")
    }
    assert imported == {"forcefit.descriptors.engine.records"}
    records = ast.parse((engine / "records.py").read_text())
    assert not [node.name for node in ast.walk(records) if isinstance(node, ast.FunctionDef)]
    jitted = [
        f"{path.name}: {node.name}"
        for path in PACKAGE.rglob("*.py")
        if path.name != "kernels.py"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef) and any("njit" in ast.unparse(d) or "numba.jit" in ast.unparse(d) for d in node.decorator_list)
    ]
    assert not jitted, f"compiled functions outside the engine's kernels.py: {jitted}"


def test_models_and_config_load_without_e3nn():
    """e3nn's import loads torch._dynamo (about 2 s): only a descriptor built on it pays that,
    not every process that imports the models (the calculator, `forcefit --help`)."""
    import subprocess
    import sys

    code = "import sys, forcefit.config, forcefit.calculator; print('e3nn' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
    code = "import sys, forcefit.descriptors as d; d.AtomicClusterExpansion(['Si'], 4.0); print('e3nn' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "True"
