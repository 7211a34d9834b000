"""Error statistics a person reads: energy per atom and per structure, forces per
element, stress, per configuration group.

Energies are compared on the reference's scale, Σ E_i − b (b is the loss's offset,
the reference data's arbitrary zero); the extensive model energy Σ E_i is kept
beside it for the per-structure predictions file. Energy MAE/RMSE are over
structures of |ΔE|/n_atoms (meV/atom) and of |ΔE| (meV/structure); force MAE/RMSE
are over Cartesian components (meV/Å), overall and per element of the atom;
stress MAE/RMSE over the six independent components (GPa) of the structures that
have a reference stress. A non-finite prediction is never dropped silently: it is
counted (`n_nonfinite`) and the statistics it enters become NaN.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from ase import units

from forcefit.data import Batch, collate
from forcefit.models.base import Potential
from forcefit.models.forces import predict

VOIGT_ROWS, VOIGT_COLUMNS = [0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]


def collect(model: Potential, graphs: list[Batch], batch_size: int = 64) -> dict:
    """Predictions and references (NumPy; eV, eV/Å, eV/Å³) for a list of graphs.

    energy: model energy Σ E_i (extensive); reference_energy: Σ E_i − b; stress is
    NaN for structures that are not 3-D periodic; extrapolating_atoms counts atoms
    with a descriptor outside the training range (0 for models without descriptors)."""
    keys = (
        "energy",
        "reference_energy",
        "ref_energy",
        "n_atoms",
        "forces",
        "ref_forces",
        "numbers",
        "stress",
        "ref_stress",
        "extrapolating_atoms",
    )
    out = {k: [] for k in keys}
    for start in range(0, len(graphs), batch_size):
        batch = collate(graphs[start : start + batch_size])
        prediction = predict(model, batch, forces=True, stress=bool(batch.pbc.all(dim=1).any()))
        batch = batch.to(device="cpu")
        n_structures = batch.n_structures
        stress = prediction.stress.cpu() if prediction.stress is not None else np.full((n_structures, 3, 3), np.nan)
        out["energy"].append(prediction.energy.double().cpu().numpy())
        out["reference_energy"].append(prediction.reference_energy.double().cpu().numpy())
        out["forces"].append(prediction.forces.double().cpu().numpy())
        out["stress"].append(np.asarray(stress, dtype=np.float64))
        out["ref_energy"].append(batch.ref_energy.numpy())
        out["ref_forces"].append(batch.ref_forces.numpy())
        out["ref_stress"].append(batch.ref_stress.numpy())
        out["n_atoms"].append(batch.n_atoms.numpy())
        out["numbers"].append(batch.numbers.numpy())
        counts = np.zeros(n_structures, dtype=np.int64)
        if prediction.features is not None:
            features = prediction.features
            outside = model.outside_range(features, model.species(batch.numbers.to(features.device))).any(dim=1).cpu().numpy()
            np.add.at(counts, batch.structure_index.numpy(), outside)
        out["extrapolating_atoms"].append(counts)
    return {k: np.concatenate(v) for k, v in out.items()}


class ErrorSums:
    """Running sums of squared errors over batches, for the RMSEs printed every epoch:
    energy per atom on the reference's scale (meV/atom) and force components (meV/Å).
    Unlabelled entries are skipped; a non-finite prediction makes its RMSE NaN."""

    def __init__(self) -> None:
        self.energy = self.forces = 0.0
        self.n_energy = self.n_forces = 0

    def add(self, prediction, batch) -> None:
        with torch.no_grad():
            labelled = ~torch.isnan(batch.ref_energy)
            error = ((prediction.reference_energy - batch.ref_energy) / batch.n_atoms).double()[labelled]
            self.energy += float((error**2).sum())
            self.n_energy += error.numel()
            if prediction.forces is not None:
                labelled = ~torch.isnan(batch.ref_forces)
                error = (prediction.forces - batch.ref_forces).double()[labelled]
                self.forces += float((error**2).sum())
                self.n_forces += error.numel()

    def combine(self, group) -> None:
        """Add up the sums of every rank of a process group (training/distributed.py)."""
        self.energy, self.forces, n_energy, n_forces = group.sum([self.energy, self.forces, self.n_energy, self.n_forces])
        self.n_energy, self.n_forces = int(n_energy), int(n_forces)

    def rmse(self) -> tuple[float, float]:
        """(energy RMSE meV/atom, force RMSE meV/Å); NaN where nothing was counted."""

        def root(total, count):
            return 1000.0 * math.sqrt(total / count) if count else float("nan")

        return root(self.energy, self.n_energy), root(self.forces, self.n_forces)


def _mae_rmse(errors: np.ndarray) -> tuple[float, float]:
    if errors.size == 0:
        return float("nan"), float("nan")
    return float(np.abs(errors).mean()), float(np.sqrt((errors**2).mean()))


def error_statistics(results: dict, elements: list[str]) -> dict:
    """MAE and RMSE: energy (meV/atom, meV/structure), forces (meV/Å) overall and
    per element, stress (GPa); counts of structures and of non-finite predictions."""
    from ase.data import atomic_numbers

    stats = {"n_structures": int(len(results["n_atoms"]))}
    atom_structure = np.repeat(np.arange(len(results["n_atoms"])), results["n_atoms"])
    bad_structures = ~np.isfinite(results["reference_energy"])
    bad_structures |= np.bincount(atom_structure, ~np.isfinite(results["forces"]).any(axis=1), len(results["n_atoms"])) > 0
    stats["n_nonfinite"] = int(bad_structures.sum())

    labelled = np.isfinite(results["ref_energy"])
    e_err = (results["reference_energy"] - results["ref_energy"])[labelled]
    stats["energy_mae"], stats["energy_rmse"] = _mae_rmse(1000.0 * e_err / results["n_atoms"][labelled])
    stats["energy_structure_mae"], stats["energy_structure_rmse"] = _mae_rmse(1000.0 * e_err)

    f_labelled = np.isfinite(results["ref_forces"])
    f_err = (results["forces"] - results["ref_forces"]) * 1000.0
    for label, atoms in [("all", np.ones(len(f_err), bool))] + [(e, results["numbers"] == atomic_numbers[e]) for e in elements]:
        key = "forces" if label == "all" else f"forces_{label}"
        stats[f"{key}_mae"], stats[f"{key}_rmse"] = _mae_rmse(f_err[atoms][f_labelled[atoms]])

    ref_stress = results["ref_stress"][:, VOIGT_ROWS, VOIGT_COLUMNS]
    s_err = (results["stress"][:, VOIGT_ROWS, VOIGT_COLUMNS] - ref_stress) / units.GPa
    stats["stress_mae"], stats["stress_rmse"] = _mae_rmse(s_err[np.isfinite(ref_stress)])
    stats["extrapolating_structures"] = int((results["extrapolating_atoms"] > 0).sum())
    return stats


def subset(results: dict, keep: np.ndarray) -> dict:
    """The results of the structures where `keep` (n_structures,) is True."""
    atoms = np.repeat(keep, results["n_atoms"])
    per_atom = {"forces", "ref_forces", "numbers"}
    return {k: (v[atoms] if k in per_atom else v[keep]) for k, v in results.items()}


def group_statistics(results: dict, groups: list[str], elements: list[str]) -> dict:
    """error_statistics per configuration group (`config_type` / `group` of each structure)."""
    labels = np.asarray(groups)
    return {g: error_statistics(subset(results, labels == g), elements) for g in sorted(set(groups))}
