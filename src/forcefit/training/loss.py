"""Force-matching loss (Ercolessi & Adams, EPL 26, 583 (1994)):

    L = (1/S) Σ_s w_s [ w_E (E_model,s − E_ref,s − b)² / n_s^k + w_F Σ_i |F_model,i − F_ref,i|² ]

with b the model's trainable `energy_offset`, w_s the structure weights, k = 2 when
the energy error is taken per atom (`energy_per_atom`) and 0 otherwise. Structures
without an energy or forces label contribute only the terms they have.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from forcefit.models.forces import Prediction


@dataclass
class LossWeights:
    energy: float = 1.0
    forces: float = 1.0
    energy_per_atom: bool = True


def force_matching_loss(prediction: Prediction, batch, weights: LossWeights) -> Tensor:
    error = prediction.energy - batch.ref_energy.to(prediction.energy.dtype)
    if weights.energy_per_atom:
        error = error / batch.n_atoms
    error = torch.nan_to_num(error)  # unlabelled energies add nothing
    energy_term = weights.energy * (batch.weight * error**2).sum()
    total = energy_term
    if weights.forces and prediction.forces is not None:
        diff = torch.nan_to_num(prediction.forces - batch.ref_forces.to(prediction.forces.dtype))
        per_structure = diff.new_zeros(batch.n_structures).index_add(0, batch.structure_index, (diff**2).sum(dim=1))
        total = total + weights.forces * (batch.weight * per_structure).sum()
    return total / batch.n_structures
