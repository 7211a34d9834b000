"""Error against training-set size, for models with a closed-form fit (linear)."""

from __future__ import annotations

import numpy as np

from forcefit.training.metrics import collect, error_statistics


def learning_curve(
    make_model, train_graphs: list, test_graphs: list, sizes: list[int], weights, ridge: float = 1e-8, seed: int = 0
) -> list[dict]:
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
        rows.append(
            {
                "n_train": n,
                "energy_mae": stats["energy_mae"],
                "forces_mae": stats["forces_mae"],
                "energy_rmse": stats["energy_rmse"],
                "forces_rmse": stats["forces_rmse"],
            }
        )
    return rows
