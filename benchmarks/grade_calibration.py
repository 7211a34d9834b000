"""Does the extrapolation grade γ say where the model is wrong? Per-atom force error |ΔF|
against γ and against a committee's σ_F, on held-out data and on structures outside the
training distribution, with a reference that can label anything: ASE's EMT for fcc Cu.

Training: 160 strained, rattled 32-atom bulk cells (calibration.copper_data), a committee of
four BPNNs (each member on 80 % of them, each with its own active set; the committee's γ is
the members' largest, σ_F its force spread). Evaluated: 40 held-out bulk cells; liquid (EMT
Langevin MD at 2500 K, 108 atoms, frames 0.2 ps apart); a (111) slab with vacuum (no surface
in the data); 15 % compression; a cluster of three vacancies. Reported per set and overall:
Spearman rank correlation of |ΔF| with γ and with σ_F, the error quantiles in bins of γ, and
the share of atoms with |ΔF| > 5 × the held-out MAE that have γ > 1.

    python benchmarks/grade_calibration.py

Writes results/grade_calibration.md and results/grade_calibration.png.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import units
from ase.build import bulk, fcc111
from ase.calculators.emt import EMT
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from scipy.stats import spearmanr

from calibration import copper_config, copper_data
from forcefit.calculator import Calculator
from forcefit.io import write_extxyz
from forcefit.reports import figures
from forcefit.run import train_from_config

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "runs" / "grade_calibration"
RESULTS = Path(__file__).with_name("results")


def labelled(atoms):
    atoms = atoms.copy()
    atoms.calc = EMT()
    return atoms, atoms.get_forces()


def out_of_distribution(seed: int = 1) -> dict[str, list]:
    rng = np.random.default_rng(seed)
    sets = {}
    liquid = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((3, 3, 1))
    liquid = liquid.repeat((1, 1, 3))
    liquid.calc = EMT()
    MaxwellBoltzmannDistribution(liquid, temperature_K=5000.0, rng=rng)
    dynamics = Langevin(liquid, 2.0 * units.fs, temperature_K=2500.0, friction=0.02, rng=rng)
    frames = []
    for _ in range(6):
        dynamics.run(100)
        frames.append(liquid.copy())
    sets["liquid 2500 K"] = frames
    slab = fcc111("Cu", size=(3, 3, 4), a=3.6, vacuum=6.0, periodic=True)
    slab.rattle(0.05, seed=2)
    sets["(111) surface"] = [slab]
    squeezed = bulk("Cu", "fcc", a=3.6 * 0.85 ** (1 / 3), cubic=True).repeat((3, 3, 3))
    squeezed.rattle(0.05, seed=3)
    sets["15 % compression"] = [squeezed]
    vacancies = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((3, 3, 3))
    del vacancies[[0, 1, 2]]
    vacancies.rattle(0.05, seed=4)
    sets["vacancy cluster"] = [vacancies]
    return sets


def per_atom(calculator, frames) -> dict[str, np.ndarray]:
    """|ΔF| (eV/Å), γ and σ_F of every atom of `frames`."""
    errors, gammas, spreads = [], [], []
    for atoms in frames:
        atoms, truth = labelled(atoms)
        atoms.calc = calculator
        errors.append(np.linalg.norm(atoms.get_forces() - truth, axis=1))
        gammas.append(calculator.results["gamma"])
        spreads.append(calculator.results["forces_std"])
    return {"error": np.concatenate(errors), "gamma": np.concatenate(gammas), "sigma": np.concatenate(spreads)}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    write_extxyz(OUT / "cu_emt.extxyz", copper_data())
    config = copper_config(OUT / "cu_emt.extxyz", OUT / "committee", max_seconds=120, committee=4, committee_fraction=0.8)
    model, _ = train_from_config(config)
    calculator = Calculator(model)
    held_out = [s.to_atoms() for s in copper_data(40, seed=7)]
    results = {"held-out bulk": per_atom(calculator, held_out)}
    results.update({name: per_atom(calculator, frames) for name, frames in out_of_distribution().items()})
    mae = float(results["held-out bulk"]["error"].mean())
    every = {key: np.concatenate([r[key] for r in results.values()]) for key in ("error", "gamma", "sigma")}
    lines = [
        "`python benchmarks/grade_calibration.py`: Cu, EMT as the truth, a committee of 4 BPNNs (γ: the members' largest)",
        "",
        "| set | atoms | force MAE (eV/Å) | max γ | Spearman(|ΔF|, γ) | Spearman(|ΔF|, σ_F) |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in [*results.items(), ("all", every)]:
        rho_gamma = spearmanr(r["error"], r["gamma"]).statistic
        rho_sigma = spearmanr(r["error"], r["sigma"]).statistic
        lines.append(
            f"| {name} | {len(r['error'])} | {r['error'].mean():.3f} | {r['gamma'].max():.2f} | {rho_gamma:.2f} | {rho_sigma:.2f} |"
        )
    large = every["error"] > 5 * mae
    lines += [
        "",
        f"atoms with |ΔF| > 5 × the held-out MAE ({5 * mae:.3f} eV/Å): {int(large.sum())}, of which γ > 1: "
        f"{100 * float((every['gamma'][large] > 1).mean()) if large.any() else float('nan'):.1f} %",
        "",
        "| γ bin | atoms | |ΔF| median | 90 % quantile | max |",
        "|---|---|---|---|---|",
    ]
    edges = [0.0, 0.5, 1.0, 1.5, 2.0, 5.0, 10.0, np.inf]
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (every["gamma"] >= low) & (every["gamma"] < high)
        if inside.any():
            e = every["error"][inside]
            lines.append(f"| {low:g}–{high:g} | {int(inside.sum())} | {np.median(e):.3f} | {np.quantile(e, 0.9):.3f} | {e.max():.3f} |")
    table = "\n".join(lines) + "\n"
    print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "grade_calibration.md").write_text(table)
    figures.scatter_plot(
        {name: (r["gamma"], r["error"]) for name, r in results.items()},
        "extrapolation grade γ",
        "|ΔF| against EMT (eV/Å)",
        RESULTS / "grade_calibration.png",
    )


if __name__ == "__main__":
    main()
