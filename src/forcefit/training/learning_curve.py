"""Error against training-set size, for models with a closed-form fit (linear)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from forcefit.training.metrics import collect, error_statistics


def learning_curve(make_model, train_graphs: list, test_graphs: list, sizes: list[int], weights, ridge: float = 1e-8, seed: int = 0) -> list[dict]:
    """For each size n: fit a fresh `make_model()` by ridge on n random training graphs
    (nested subsets drawn with `seed`) and measure its test errors."""
    order = np.random.default_rng(seed).permutation(len(train_graphs))
    rows = []
    for n in sizes:
        if not 0 < n <= len(train_graphs):
            raise ValueError(f"learning-curve size {n} is outside 1..{len(train_graphs)}")
        model = make_model()
        model.fit_ridge([train_graphs[i] for i in order[:n]], weights, ridge)
        stats = error_statistics(collect(model, test_graphs), model.elements)
        rows.append({"n_train": n, "energy_mae": stats["energy_mae"], "forces_mae": stats["forces_mae"],
                     "energy_rmse": stats["energy_rmse"], "forces_rmse": stats["forces_rmse"]})
    return rows


def plot_learning_curve(rows: list[dict], path: Path, title: str = "learning curve") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
