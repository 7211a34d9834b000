"""LAMMPS input snippets for forcefit pair potentials (units metal: eV, Å).

Lennard-Jones and Morse with `cutoff_mode: shift` map exactly onto LAMMPS's
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

from pathlib import Path

import torch
from ase.data import atomic_masses, atomic_numbers

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


__all__ = ["write_lammps"]
