"""Error statistics a person reads: energy per atom, forces per element.

Energy MAE/RMSE are over structures of |ΔE|/n_atoms (meV/atom); force MAE/RMSE
are over Cartesian components (meV/Å), overall and per element of the atom.
"""
from __future__ import annotations

import numpy as np

from forcefit.data import collate
from forcefit.models.forces import predict


def collect(model, graphs: list, batch_size: int = 64) -> dict:
    """Predictions and references (NumPy, eV and eV/Å) for a list of graphs."""
    out = {k: [] for k in ("energy", "ref_energy", "n_atoms", "forces", "ref_forces", "numbers")}
    for start in range(0, len(graphs), batch_size):
        batch = collate(graphs[start : start + batch_size])
        prediction = predict(model, batch, forces=True)
        out["energy"].append(prediction.energy.detach().double().numpy())
        out["forces"].append(prediction.forces.detach().double().numpy())
        out["ref_energy"].append(batch.ref_energy.numpy())
        out["ref_forces"].append(batch.ref_forces.numpy())
        out["n_atoms"].append(batch.n_atoms.numpy())
        out["numbers"].append(batch.numbers.numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


def error_statistics(results: dict, elements: list[str]) -> dict:
    """MAE and RMSE: energy (meV/atom) and forces (meV/Å) overall and per element."""
    from ase.data import atomic_numbers

    stats = {}
    e_err = (results["energy"] - results["ref_energy"]) / results["n_atoms"]
    e_err = e_err[np.isfinite(e_err)] * 1000.0
    stats["energy_mae"] = float(np.abs(e_err).mean()) if e_err.size else float("nan")
    stats["energy_rmse"] = float(np.sqrt((e_err**2).mean())) if e_err.size else float("nan")
    f_err = (results["forces"] - results["ref_forces"]) * 1000.0
    for label, mask in [("all", np.ones(len(f_err), bool))] + [(e, results["numbers"] == atomic_numbers[e]) for e in elements]:
        values = f_err[mask]
        values = values[np.isfinite(values)]
        key = "forces" if label == "all" else f"forces_{label}"
        stats[f"{key}_mae"] = float(np.abs(values).mean()) if values.size else float("nan")
        stats[f"{key}_rmse"] = float(np.sqrt((values**2).mean())) if values.size else float("nan")
    return stats

