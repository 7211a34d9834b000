"""Descriptors and their Jacobian, computed once per structure and kept on its graph."""
from __future__ import annotations

import numpy as np

from forcefit.data import collate


def cache_descriptors(model, graphs: list, chunk: int = 64) -> None:
    """Store features G (n_atoms, F) and ∂G_{i_p}/∂r_p (n_pairs, F, 3) on each graph.

    `model` provides `descriptor` (SymmetryFunctions), `species(numbers)` and the dtype
    of its `energy_offset`. Structures are processed in chunks to bound memory."""
    dtype = model.energy_offset.dtype
    for start in range(0, len(graphs), chunk):
        part = graphs[start : start + chunk]
        batch = collate(part).to(dtype)
        features, jacobian = model.descriptor.with_jacobian(
            model.species(batch.numbers), batch.vectors(), batch.pair_i, batch.pair_j, batch.triplet_p, batch.triplet_q
        )
        atoms = np.cumsum([0] + [g.numbers.shape[0] for g in part])
        pairs = np.cumsum([0] + [g.pair_i.shape[0] for g in part])
        for n, g in enumerate(part):
            g.features = features[atoms[n] : atoms[n + 1]]
            g.jacobian = jacobian[pairs[n] : pairs[n + 1]]
