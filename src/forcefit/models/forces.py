"""The one place where energies become forces and stress.

Every model's energy depends on positions only through the pair vectors
r_p = x_j − x_i + shift_p. With g_p = ∂E/∂r_p:

    F_k = Σ_{p: i_p = k} g_p − Σ_{p: j_p = k} g_p
    σ   = (1/V) Σ_p sym(r_p ⊗ g_p)          (ASE sign: σ = (1/V) ∂E/∂ε)

because a homogeneous strain ε maps every r_p to (1 + ε) r_p. g_p comes from
autograd through the model, or, during training of a descriptor model, from the
cached descriptor Jacobian: g_p = Σ_f (∂E/∂G_{i_p f}) ∂G_{i_p f}/∂r_p.

Energies: `energy` is the model's Σ_i E_i, extensive (two far-apart copies give
twice the energy), and it is what every user-facing number reports. The loss's
offset b (`model.energy_offset`, the reference data's arbitrary zero) enters only
`reference_energy` = Σ_i E_i − b, used where forcefit compares with that data
(loss, error tables, parity plots).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import torch
from torch import Tensor

if TYPE_CHECKING:  # annotations only: models import this module
    from forcefit.data import Batch
    from forcefit.models.base import Potential


class Prediction(NamedTuple):
    energy: Tensor  # (n_structures,) eV, the model's energy Σ_i E_i: extensive, what users get
    atom_energies: Tensor  # (n_atoms,) eV, the model's E_i (they add up to `energy`)
    forces: Tensor | None  # (n_atoms, 3) eV/Å
    stress: Tensor | None  # (n_structures, 3, 3) eV/Å³
    features: Tensor | None = None  # (n_atoms, n_features) descriptors, for descriptor models
    reference_energy: Tensor | None = None  # (n_structures,) eV, Σ_i E_i − b: only for comparison with the reference set


def assemble(batch: Batch, vectors: Tensor, pair_gradients: Tensor, stress: bool) -> tuple[Tensor, Tensor | None]:
    """Forces (n_atoms, 3) and, if asked, stress (n_structures, 3, 3) from g_p."""
    n_atoms = batch.numbers.shape[0]
    forces = pair_gradients.new_zeros((n_atoms, 3))
    forces = forces.index_add(0, batch.pair_i, pair_gradients).index_add(0, batch.pair_j, -pair_gradients)
    if not stress:
        return forces, None
    outer = vectors[:, :, None] * pair_gradients[:, None, :]
    virial = pair_gradients.new_zeros((batch.n_structures, 3, 3)).index_add(0, batch.pair_structure, outer)
    periodic = batch.pbc.all(dim=1)
    # a free cluster has no volume: divide by 1 there (then NaN), so no 0/0 reaches a gradient
    volume = torch.where(periodic, torch.linalg.det(batch.cell.to(virial.dtype)).abs(), torch.ones_like(virial[:, 0, 0]))
    sigma = 0.5 * (virial + virial.transpose(1, 2)) / volume[:, None, None]
    sigma = torch.where(periodic[:, None, None], sigma, torch.full_like(sigma, float("nan")))
    return forces, sigma


def _gradient(atom_energies: Tensor, wrt: Tensor, create_graph: bool) -> Tensor:
    """∂(Σ E_i)/∂wrt; zero where the energy does not depend on `wrt` (e.g. no pairs)."""
    if not atom_energies.requires_grad:
        return torch.zeros_like(wrt)
    (gradient,) = torch.autograd.grad(atom_energies.sum(), wrt, create_graph=create_graph, allow_unused=True)
    return torch.zeros_like(wrt) if gradient is None else gradient


def predict(model: Potential, batch: Batch, *, forces: bool = True, stress: bool = False, training: bool = False) -> Prediction:
    """Energies (and forces, stress) of every structure in `batch`.

    Cached descriptors (features + Jacobian on the batch) are used when present;
    `training=True` keeps the graph for a second derivative (the loss depends on
    forces).
    """
    dtype = model.energy_offset.dtype
    batch = batch.to(dtype)
    need_gradients = forces or stress
    descriptor_model = model.uses_descriptors
    cached = descriptor_model and batch.features is not None
    features = None
    with torch.enable_grad() if need_gradients or training else torch.no_grad():
        vectors = batch.vectors()
        if cached:
            features = batch.features.requires_grad_(need_gradients)
        else:
            vectors = vectors.requires_grad_(need_gradients)
            if descriptor_model:
                features = model.features(batch, vectors)
        if descriptor_model:
            atom_energies = model.atom_energies_from_features(features, model.species(batch.numbers))
        else:
            atom_energies = model.atom_energies(batch, vectors)
        energy = atom_energies.new_zeros(batch.n_structures).index_add(0, batch.structure_index, atom_energies)
        reference_energy = energy - model.energy_offset
        force_values = stress_values = None
        if need_gradients:
            if cached:
                d_features = _gradient(atom_energies, features, training)
                pair_gradients = torch.einsum("pf,pfc->pc", d_features[batch.pair_i], batch.jacobian)
            else:
                pair_gradients = _gradient(atom_energies, vectors, training)
            force_values, stress_values = assemble(batch, vectors.detach() if not training else vectors, pair_gradients, stress)
    features = None if features is None else features.detach()
    if not training:  # plain numbers for callers; the graph is only needed by the loss
        energy, atom_energies, reference_energy = energy.detach(), atom_energies.detach(), reference_energy.detach()
        force_values = None if force_values is None else force_values.detach()
        stress_values = None if stress_values is None else stress_values.detach()
    return Prediction(energy, atom_energies, force_values, stress_values, features, reference_energy)
