"""benchmarks/results/summary.md: one table of the headline figure of every result, read from
the result files themselves (run by run_all.py after the benchmarks; `python
benchmarks/summary.py` rewrites it from the files present).

Each headline is one row of the first table of a result file, chosen by the start of its first
cell (`HEADLINES`), written as "column: value" pairs under the file's name."""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
HEADLINES = {  # result file: (what it is, the first cells of its headline row)
    "n2p2_water_speed.md": ("energy + forces of n2p2's water box against n2p2, one thread", "ratio forcefit / n2p2"),
    "engine_scaling.md": ("evaluation cost and memory at the largest water box", "135000"),
    "lammps_scaling.md": ("pair_style forcefit in LAMMPS against the calculator, one rank", "si 8000 linear-ace"),
    "mlearn_Si_bpnn_ace-linear_ace-bpnn.md": (
        "Si test errors, linear ACE (mlearn's MTP: 2.21 meV/atom, 0.06 eV/Å)",
        "Si | forcefit linear",
    ),
    "mlearn_Mo_ace-linear.md": ("Mo test errors, linear ACE (mlearn's MTP: 2.83 meV/atom, 0.09 eV/Å)", "Mo | forcefit linear"),
    "mlearn_Mo.md": ("Mo test errors, BPNN", "Mo | forcefit BPNN"),
    "ethanol_peer.md": ("ethanol: linear ACE trained beside MACE in the same wall time", "forcefit"),
    "pareto.md": ("64-atom Si: the MACE peer's cost in the same run", "MACE"),
    "ace_scaling.md": ("Si models through the calculator, 1728 atoms", "1728"),
    "pair_fits.md": ("LJ fitted to the Ar₂ dimer curve", "Ar₂ | LennardJones"),
    "calibration.md": ("BPNN fitted to EMT Cu against EMT: shear constant", "C44"),
    "active_learning_evidence.md": ("active learning, test force MAE after the whole label budget", "112"),
    "grade_calibration.md": ("force error against γ and σ_F, all sets", "all"),
    "descriptor_cache.md": ("building the training cache, mlearn Mo", "Mo | 175 | 3.17e+05 | this tree"),
    "training_scale.md": ("training with descriptors 40× the memory budget", "20000 cells, cache: auto"),
}


def first_table(text: str) -> tuple[list[str], list[list[str]]]:
    """The header cells and rows of the first Markdown table in `text`."""
    lines = text.splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith("|"))
    table = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        table.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])  # a cell may hold |x|
    return table[0], table[2:]


def headline(name: str, prefix: str) -> str:
    header, rows = first_table((RESULTS / name).read_text())
    for row in rows:
        if " | ".join(row).startswith(prefix):
            first = f"{header[0]}: {row[0]}" if header[0] else row[0]
            return "; ".join([first, *(f"{column}: {value}" for column, value in zip(header[1:], row[1:]) if value)])
    raise ValueError(f"{name}: no row of its first table starts with {prefix!r}")


def summary() -> str:
    lines = [
        "# Benchmark summary",
        "",
        "The headline row of each result (`python benchmarks/summary.py`, run by `make benchmark`);",
        "the whole tables are in the files named, read in docs/scale.md and docs/accuracy.md.",
        "",
        "| result | what | headline |",
        "|---|---|---|",
    ]
    for name, (what, prefix) in HEADLINES.items():
        value = headline(name, prefix) if (RESULTS / name).exists() else "(not run)"
        lines.append(f"| [{name}]({name}) | {what} | {value.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    (RESULTS / "summary.md").write_text(summary())
