"""Is the computational microscope calibrated? Properties of fitted potentials next
to those of the reference method that labelled their training data.

Crystal: fcc Cu labelled with ASE's EMT (strained and rattled 32-atom cells, bulk
only), a BPNN fitted to it; lattice constant, bulk modulus, C11/C12/C44 and phonon
energies at X and L, for the BPNN and for EMT itself.
Molecule: ethanol, the demo model (runs/ethanol/model.ffm, from `make demo`) next
to GFN2-xTB; harmonic frequencies, each at its own minimum.

    python benchmarks/calibration.py

Writes benchmarks/results/calibration.md.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase.build import bulk, molecule
from ase.calculators.emt import EMT
from rich.console import Console

from forcefit.calculator import Calculator
from forcefit.config import Config, DataConfig, TrainingConfig, model_settings
from forcefit.io import write_extxyz
from forcefit.run import train_from_config
from forcefit.structures import Structure
from forcefit.workflows.properties import elastic_constants, equation_of_state, phonon_frequencies, relax, vibrational_frequencies
from forcefit.workflows.reference import reference_calculator

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "runs" / "calibration"


def copper_data(n: int = 160, seed: int = 0) -> list[Structure]:
    rng = np.random.default_rng(seed)
    structures = []
    for _ in range(n):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 2, 2))
        strain = np.eye(3) + rng.uniform(-0.04, 0.04, size=(3, 3)) * np.array([[1, 0.3, 0.3], [0.3, 1, 0.3], [0.3, 0.3, 1]])
        atoms.set_cell(atoms.cell @ (0.5 * (strain + strain.T)), scale_atoms=True)
        atoms.rattle(stdev=rng.uniform(0.01, 0.12), seed=int(rng.integers(1 << 31)))
        atoms.calc = EMT()
        structures.append(Structure.from_atoms(atoms, energy=atoms.get_potential_energy(), forces=atoms.get_forces()))
    return structures


def copper_config(data: Path, output: Path, **training) -> Config:
    """The BPNN setting fitted to the EMT copper cells (`training` overrides)."""
    return Config(
        data=DataConfig(train=str(data), split=[0.85, 0.15, 0.0]),
        model=model_settings(cutoff=5.0, n_radial=10, n_angular=4, r_min=1.8, hidden=[32, 32]),
        training=TrainingConfig(
            **{
                "epochs": 400,
                "batch_size": 8,
                "learning_rate": 3e-3,
                "lr_patience": 20,
                "early_stopping": 60,
                "energy_weight": 5000.0,
                "max_seconds": 300,
                **training,
            }
        ),
        output=str(output),
    )


def crystal_properties(calc) -> dict:
    cu = relax(bulk("Cu", "fcc", a=3.6), calc, cell=True, fmax=1e-5)
    eos = equation_of_state(cu, calc)
    C = elastic_constants(cu, calc)
    bands = phonon_frequencies(cu, calc, supercell=(4, 4, 4))
    return {
        "a0 (Å)": cu.cell.lengths()[0] * np.sqrt(2),
        "B (GPa)": eos["bulk_modulus"],
        "C11 (GPa)": C[0, 0],
        "C12 (GPa)": C[0, 1],
        "C44 (GPa)": C[3, 3],
        "X max (meV)": bands["X"].max(),
        "L max (meV)": bands["L"].max(),
        "X min (meV)": bands["X"].min(),
        "L min (meV)": bands["L"].min(),
    }


def main() -> None:
    console = Console()
    OUT.mkdir(parents=True, exist_ok=True)
    write_extxyz(OUT / "cu_emt.extxyz", copper_data())
    config = copper_config(OUT / "cu_emt.extxyz", OUT / "cu_bpnn")
    if (OUT / "cu_bpnn").exists():
        import shutil

        shutil.rmtree(OUT / "cu_bpnn")
    model, _ = train_from_config(config, console=console)
    fitted, reference = crystal_properties(Calculator(model)), crystal_properties(EMT())
    lines = ["| Cu property | BPNN fitted to EMT | EMT |", "|---|---|---|"]
    lines += [f"| {k} | {fitted[k]:.3f} | {reference[k]:.3f} |" for k in fitted]
    demo = ROOT / "runs" / "ethanol" / "model.ffm"
    if demo.exists():
        ethanol = molecule("CH3CH2OH")
        ours = vibrational_frequencies(relax(ethanol, Calculator.load(demo), fmax=1e-4), Calculator.load(demo))
        gfn2 = reference_calculator("gfn2-xtb")
        theirs = vibrational_frequencies(relax(ethanol, gfn2, fmax=1e-4), gfn2)
        lines += ["", "| ethanol mode | demo BPNN (cm⁻¹) | GFN2-xTB (cm⁻¹) |", "|---|---|---|"]
        lines += [f"| {k + 1} | {a:.0f} | {b:.0f} |" for k, (a, b) in enumerate(zip(ours, theirs))]
        lines.append(f"\nmean |Δν| = {np.mean(np.abs(ours - theirs)):.0f} cm⁻¹ over {len(ours)} modes")
    else:
        lines.append("\n(ethanol: run `make demo` first to compare the demo model's frequencies with GFN2-xTB)")
    table = "\n".join(lines)
    console.print(table)
    out = Path(__file__).with_name("results")
    out.mkdir(exist_ok=True)
    (out / "calibration.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
