"""Fit Lennard-Jones and Morse to GFN2-xTB dimer curves (tblite) and plot the fits.

    python benchmarks/pair_fits.py

For Ar₂ (LJ and Morse) and N₂, H₂ (Morse): 40 dimer separations labelled with
GFN2-xTB energy and force, fitted by least squares on energies and forces with the
shared trainer (L-BFGS); the energy offset b absorbs the reference zero. Also
shows the exact two-point LJ through the Ar₂ point nearest the minimum.
Writes benchmarks/results/pair_fits.png and pair_fits.md.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from ase import Atoms  # noqa: E402
from rich.console import Console  # noqa: E402
from tblite.ase import TBLite  # noqa: E402

from forcefit.config import TrainingConfig
from forcefit.data import make_graph  # noqa: E402
from forcefit.models import LennardJones, Morse, predict  # noqa: E402
from forcefit.models.pair import lj_from_two_points  # noqa: E402
from forcefit.structures import Structure  # noqa: E402
from forcefit.training.trainer import Trainer  # noqa: E402

CASES = [  # (label, element, distances Å, model class, starting parameters)
    ("Ar₂ LJ", "Ar", np.linspace(3.3, 8.0, 40), LennardJones, {"epsilon": 0.01, "sigma": 3.3}),
    ("Ar₂ Morse", "Ar", np.linspace(3.3, 8.0, 40), Morse, {"D": 0.01, "alpha": 1.2, "r0": 3.8}),
    ("N₂ Morse", "N", np.linspace(0.9, 2.0, 40), Morse, {"D": 9.0, "alpha": 2.5, "r0": 1.1}),
    ("H₂ Morse", "H", np.linspace(0.5, 2.0, 40), Morse, {"D": 4.5, "alpha": 2.0, "r0": 0.75}),
]
CUTOFF = 9.0


def dimer_curve(element: str, distances) -> list[Structure]:
    structures = []
    for r in distances:
        atoms = Atoms(f"{element}2", positions=[[0, 0, 0], [0, 0, r]])
        atoms.calc = TBLite(method="GFN2-xTB", verbosity=0)
        structures.append(Structure.from_atoms(atoms, energy=atoms.get_potential_energy(), forces=atoms.get_forces()))
    return structures


def main() -> None:
    console = Console()
    fig, axes = plt.subplots(2, len(CASES), figsize=(4 * len(CASES), 7))
    rows = ["| dimer | form | fitted parameters | energy RMSE (meV) | force RMSE (meV/Å) |", "|---|---|---|---|---|"]
    for column, (label, element, distances, cls, start) in enumerate(CASES):
        data = dimer_curve(element, distances)
        model = cls([element], CUTOFF, {f"{element}-{element}": start}, cutoff_mode="shift")
        graphs = [make_graph(s, CUTOFF, 0.0) for s in data]
        model.initialise(graphs)
        config = TrainingConfig(
            epochs=200, optimizer="lbfgs", learning_rate=1.0, batch_size=len(graphs), early_stopping=20, energy_weight=1.0
        )
        Trainer(model, graphs, [], config, console=Console(quiet=True)).fit()
        predicted = [predict(model, g) for g in graphs]
        energy = np.array([float(p.reference_energy[0]) for p in predicted])  # Σφ − b, on the reference's scale
        force = np.array([float(p.forces[1, 2]) for p in predicted])  # on atom 2, along the bond
        ref_energy = np.array([s.energy for s in data])
        ref_force = np.array([s.forces[1, 2] for s in data])
        e_rmse = 1000 * np.sqrt(np.mean((energy - ref_energy) ** 2))
        f_rmse = 1000 * np.sqrt(np.mean((force - ref_force) ** 2))
        params = ", ".join(f"{k} = {v:.4g}" for k, v in model.parameters_by_key()[f"{element}-{element}"].items())
        rows.append(f"| {label.split()[0]} | {cls.__name__} | {params} | {e_rmse:.2f} | {f_rmse:.2f} |")
        zero = float(model.energy_offset.detach())  # plotted on the model's own scale: φ → 0 at r_c
        ax_e, ax_f = axes[0, column], axes[1, column]
        ax_e.plot(distances, ref_energy + zero, "ko", ms=3, label="GFN2-xTB")
        ax_e.plot(distances, energy + zero, "r-", label=f"fitted {cls.__name__}")
        ax_f.plot(distances, ref_force, "ko", ms=3, label="GFN2-xTB")
        ax_f.plot(distances, force, "r-", label=f"fitted {cls.__name__}")
        if element == "Ar" and cls is LennardJones:
            k = int(np.argmin(ref_energy))
            two = lj_from_two_points(distances[k], ref_energy[k] + zero, ref_force[k])
            r = torch.tensor(distances)
            u = 4 * two["epsilon"] * ((two["sigma"] / r) ** 12 - (two["sigma"] / r) ** 6)
            ax_e.plot(distances, u.numpy(), "b--", label="two-point LJ")
            rows.append(f"| Ar₂ | two-point LJ at r0 = {distances[k]:.2f} Å | ε = {two['epsilon']:.4g}, σ = {two['sigma']:.4g} | | |")
        ax_e.set_title(label)
        ax_e.set_ylabel("U(r) (eV, fitted zero)")
        ax_f.set_ylabel("F(r) on atom 2 (eV/Å)")
        ax_f.set_xlabel("r (Å)")
        ax_e.legend(fontsize=7)
        spread = np.ptp(ref_energy)
        ax_e.set_ylim(min(ref_energy + zero) - 0.1 * spread, min(ref_energy + zero) + 0.6 * spread)
    fig.tight_layout()
    out = Path(__file__).with_name("results")
    out.mkdir(exist_ok=True)
    fig.savefig(out / "pair_fits.png", dpi=110)
    table = "\n".join(rows)
    (out / "pair_fits.md").write_text(table + "\n")
    console.print(table)


if __name__ == "__main__":
    main()
