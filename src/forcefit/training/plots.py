"""PNG figures for a run: parity plots and the learning curve."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def parity_plots(results_by_split: dict, path_energy: Path, path_forces: Path) -> None:
    """Predicted vs reference energy per atom (prediction on the reference scale, Σ E_i − b) and force components."""
    for path, quantity in ((path_energy, "energy"), (path_forces, "forces")):
        fig, ax = plt.subplots(figsize=(5, 5))
        lo, hi = np.inf, -np.inf
        for split, res in results_by_split.items():
            if quantity == "energy":
                ref, pred = res["ref_energy"] / res["n_atoms"], res["reference_energy"] / res["n_atoms"]
            else:
                ref, pred = res["ref_forces"].ravel(), res["forces"].ravel()
            keep = np.isfinite(ref)
            if not keep.any():
                continue
            ax.scatter(ref[keep], pred[keep], s=4, alpha=0.5, label=split)
            lo, hi = min(lo, ref[keep].min(), pred[keep].min()), max(hi, ref[keep].max(), pred[keep].max())
        if np.isfinite(lo):
            ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        unit = "eV/atom" if quantity == "energy" else "eV/Å"
        ax.set_xlabel(f"reference {quantity} ({unit})")
        ax.set_ylabel(f"predicted {quantity} ({unit})")
        ax.set_title(f"{quantity} parity")
        ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)


def learning_curve(history: list[dict], path: Path) -> None:
    """Energy and force RMSE per epoch, train and validation, log scale."""
    if not history:
        return
    epochs = [h["epoch"] for h in history]
    fig, (ax_e, ax_f) = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, unit in ((ax_e, "energy", "meV/atom"), (ax_f, "forces", "meV/Å")):
        for split in ("train", "validation"):
            values = [h[f"{split}_{key}_rmse"] for h in history]
            if np.isfinite(values).any():
                ax.plot(epochs, values, label=split)
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"{key} RMSE ({unit})")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
