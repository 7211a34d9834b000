"""Force-matching loss (Ercolessi & Adams, EPL 26, 583 (1994)), with an optional stress term:

    L = (1/S) Σ_s w_s [ w_E (E_model,s − b − E_ref,s)² / n_s^k + w_F Σ_i |F_model,i − F_ref,i|²
                        + w_σ Σ_ab (σ_model,s,ab − σ_ref,s,ab)² ]

with b the model's `energy_offset`: 0 and frozen by default, where the energies per element
carry the reference data's zero (models/base.py); trained only with
`training.energy_offset: global`, and then it enters only here and where forcefit compares
with the reference set, so that Σ_i E_i stays extensive), w_s the structure weights, k = 2 when
the energy error is taken per atom (`energy_per_atom`) and 0 otherwise. Stress is
in eV/Å³ (ASE sign), all nine components. Structures without an energy, forces or
stress label contribute only the terms they have.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor

from forcefit.data import Batch
from forcefit.models.forces import Prediction
from forcefit.structures import Structure
from forcefit.training.settings import TrainingConfig


@dataclass
class LossWeights:
    energy: float = 1.0
    forces: float = 1.0
    energy_per_atom: bool = True
    stress: float = 0.0


def weigh_groups(structures: list[Structure], factors: dict[str, float], training: list[Structure]) -> list[Structure]:
    """`structures` with w_s multiplied by their group's factor (training.group_weights); a
    group the training set does not hold is an error (a misspelt name would weigh nothing)."""
    present = {s.group_label for s in training}
    missing = sorted(set(factors) - present)
    if missing:
        raise ValueError(f"training.group_weights names {missing}; the training structures' groups are {sorted(present)}")
    return [replace(s, weight=s.weight * factors[s.group_label]) if s.group_label in factors else s for s in structures]


def loss_weights(config: TrainingConfig, stage: int) -> LossWeights:
    """The loss weights of training stage 1 (main) or 2 (stage two's overrides)."""
    if stage == 1:
        return LossWeights(config.energy_weight, config.force_weight, config.energy_per_atom, config.stress_weight)
    energy = config.energy_weight if config.stage_two_energy_weight is None else config.stage_two_energy_weight
    forces = config.force_weight if config.stage_two_force_weight is None else config.stage_two_force_weight
    return LossWeights(energy, forces, config.energy_per_atom, config.stress_weight)


def force_matching_loss(prediction: Prediction, batch: Batch, weights: LossWeights) -> Tensor:
    error = prediction.reference_energy - batch.ref_energy.to(prediction.energy.dtype)
    if weights.energy_per_atom:
        error = error / batch.n_atoms
    error = torch.where(torch.isnan(batch.ref_energy), torch.zeros_like(error), error)  # unlabelled energies add nothing
    total = weights.energy * (batch.weight * error**2).sum()
    if weights.forces and prediction.forces is not None:
        diff = prediction.forces - batch.ref_forces.to(prediction.forces.dtype)
        diff = torch.where(torch.isnan(batch.ref_forces), torch.zeros_like(diff), diff)
        per_structure = diff.new_zeros(batch.n_structures).index_add(0, batch.structure_index, (diff**2).sum(dim=1))
        total = total + weights.forces * (batch.weight * per_structure).sum()
    if weights.stress and prediction.stress is not None:
        diff = prediction.stress - batch.ref_stress.to(prediction.stress.dtype)
        diff = torch.where(torch.isnan(batch.ref_stress), torch.zeros_like(diff), diff)
        total = total + weights.stress * (batch.weight * (diff**2).sum(dim=(1, 2))).sum()
    return total / batch.n_structures
