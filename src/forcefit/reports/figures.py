"""Every figure forcefit draws, as PNG files; the one place that sets up matplotlib
(the non-interactive Agg backend, so it works on machines without a display)."""

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


def learning_curve_plot(history: list[dict], path: Path) -> None:
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


def xy_plot(x, y, xlabel, ylabel, path):
    """One curve."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(x, y)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def curves_plot(x, curves: dict, xlabel, ylabel, path):
    """Several labelled curves over one x (e.g. total and partial g(r))."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for label, y in curves.items():
        ax.plot(x, y, label=label, lw=2 if label == "all" else 1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def scatter_plot(groups: dict, xlabel, ylabel, path):
    """Labelled point clouds {label: (x, y)} on log–log axes (e.g. per-atom error against a
    trust measure), with x = 1 marked."""
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for label, (x, y) in groups.items():
        ax.scatter(np.maximum(x, 1e-3), np.maximum(y, 1e-4), s=6, alpha=0.6, label=label)
    ax.axvline(1.0, color="k", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7, markerscale=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def matrix_plot(matrix, title, path):
    """A 6×6 Voigt matrix (elastic constants) as an annotated image."""
    fig, ax = plt.subplots(figsize=(4.5, 4))
    image = ax.imshow(matrix, cmap="viridis")
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, f"{value:.0f}", ha="center", va="center", color="w", fontsize=8)
    labels = ["xx", "yy", "zz", "yz", "xz", "xy"]
    ax.set_xticks(range(6), labels)
    ax.set_yticks(range(6), labels)
    ax.set_title(title)
    fig.colorbar(image)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def frequencies_plot(values: dict, path):
    """Vibrational frequencies (cm⁻¹) as lines, one row per label (model, reference)."""
    fig, ax = plt.subplots(figsize=(7, 2.8))
    for row, (label, frequencies) in enumerate(values.items()):
        ax.vlines(frequencies, row, row + 0.8, label=label, color=f"C{row}")
    ax.set_yticks([r + 0.4 for r in range(len(values))], list(values))
    ax.set_xlabel("frequency (cm⁻¹)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def phonon_plot(ph, atoms, path: str) -> None:
    """Phonon band structure along the cell's own high-symmetry path and the DOS, in meV."""
    from ase.spectrum.band_structure import BandStructure

    bandpath = atoms.cell.bandpath(npoints=100)
    bands = ph.get_band_structure(bandpath, verbose=False)
    bands = BandStructure(bandpath, bands.energies * 1000.0)  # meV, as the printed energies
    dos = ph.get_dos(kpts=(12, 12, 12)).sample_grid(npts=300, width=1e-3)
    fig = plt.figure(figsize=(8, 4))
    ax = fig.add_axes([0.1, 0.12, 0.6, 0.8])
    bands.plot(ax=ax, emin=0.0, emax=1.1 * bands.energies.max(), ylabel="energy (meV)")
    dos_ax = fig.add_axes([0.74, 0.12, 0.22, 0.8])
    dos_ax.fill_betweenx(dos.get_energies() * 1000.0, 0, dos.get_weights(), color="grey")
    dos_ax.set_ylim(ax.get_ylim())
    dos_ax.set_yticks([])
    dos_ax.set_xlabel("DOS")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def data_learning_curve_plot(rows: list[dict], path: Path, title: str = "learning curve") -> None:
    """Test errors against the number of training structures (forcefit.training.learning_curve), log–log."""
    n = [r["n_train"] for r in rows]
    fig, (ax_e, ax_f) = plt.subplots(1, 2, figsize=(10, 4))
    ax_e.loglog(n, [r["energy_mae"] for r in rows], "o-")
    ax_e.set_ylabel("test energy MAE (meV/atom)")
    ax_f.loglog(n, [r["forces_mae"] for r in rows], "o-")
    ax_f.set_ylabel("test force MAE (meV/Å)")
    for ax in (ax_e, ax_f):
        ax.set_xlabel("training structures")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
