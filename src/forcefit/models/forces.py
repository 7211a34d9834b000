"""The one place where energies become forces and stress.

Every model's energy depends on positions only through the pair vectors
r_p = x_j − x_i + shift_p. With g_p = ∂E/∂r_p:

    F_k = Σ_{p: i_p = k} g_p − Σ_{p: j_p = k} g_p
    σ   = (1/V) Σ_p sym(r_p ⊗ g_p)          (ASE sign: σ = (1/V) ∂E/∂ε)

because a homogeneous strain ε maps every r_p to (1 + ε) r_p. g_p comes from
autograd through the model, or, during training of a descriptor model, from the
cached descriptor Jacobian: g_p = Σ_f (∂E/∂G_{i_p f}) ∂G_{i_p f}/∂r_p.

Energies: `energy` is the model's Σ_i E_i, extensive (two far-apart copies give
twice the energy), on the reference data's scale (its zero is in the energies per
element), and it is what every user-facing number reports. The loss's global
offset b (`model.energy_offset`, 0 unless opted in, models/base.py) enters only
`reference_energy` = Σ_i E_i − b, used where forcefit compares with that data
(loss, error tables, parity plots).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch
from torch import Tensor

from forcefit.memory import memory_budget_gb
from forcefit.neighbors import triplets

# what autograd keeps alive per pair and per triplet of a symmetry-function evaluation (measured
# on the n2p2 water box: ≈ 240 B per triplet), to size the chunks
GRAPH_BYTES_PER_PAIR, GRAPH_BYTES_PER_TRIPLET = 500, 240

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
    if batch.n_structures == 1:  # one matrix product (the calculator's case), not a (n_pairs, 3, 3) outer product
        virial = (vectors.transpose(0, 1) @ pair_gradients)[None]
    else:
        outer = vectors[:, :, None] * pair_gradients[:, None, :]
        virial = pair_gradients.new_zeros((batch.n_structures, 3, 3)).index_add(0, batch.pair_structure, outer)
    periodic = batch.pbc.all(dim=1)
    # a free cluster has no volume: divide by 1 there (then NaN), so no 0/0 reaches a gradient
    volume = torch.where(periodic, torch.linalg.det(batch.cell.to(virial.dtype)).abs(), torch.ones_like(virial[:, 0, 0]))
    sigma = 0.5 * (virial + virial.transpose(1, 2)) / volume[:, None, None]
    sigma = torch.where(periodic[:, None, None], sigma, torch.full_like(sigma, float("nan")))
    return forces, sigma


def core_repulsion(model: Potential, batch: Batch, vectors: Tensor) -> tuple[Tensor, Tensor]:
    """The model's core repulsion (models/repulsion.py): atom energies (n_atoms,) and ∂E/∂r_p (n_pairs, 3)."""
    return model.core_repulsion.energies_and_pair_gradients(model.species(batch.numbers), vectors, batch.pair_i, batch.pair_j)


def _gradient(atom_energies: Tensor, wrt: Tensor, create_graph: bool) -> Tensor:
    """∂(Σ E_i)/∂wrt; zero where the energy does not depend on `wrt` (e.g. no pairs)."""
    if not atom_energies.requires_grad:
        return torch.zeros_like(wrt)
    (gradient,) = torch.autograd.grad(atom_energies.sum(), wrt, create_graph=create_graph, allow_unused=True)
    return torch.zeros_like(wrt) if gradient is None else gradient


def centre_chunks(batch: Batch, bytes_per_atom: float, memory_gb: float) -> list[tuple[int, int, int, int, int, int]]:
    """(a, b, p0, p1, t0, t1): centre atoms a ≤ i < b with the pairs [p0, p1) and triplets
    [t0, t1) centred on them, as many atoms per chunk as `memory_gb` holds at `bytes_per_atom`.
    Pairs and triplets come sorted by centre (neighbors.py); otherwise one chunk."""
    first, last = batch.centre_range()
    centres = batch.pair_i
    triplet_centres = centres[batch.triplet_p]
    ordered = bool((centres[1:] >= centres[:-1]).all() and (triplet_centres[1:] >= triplet_centres[:-1]).all())
    size = max(1, int(memory_gb * 1e9 / max(bytes_per_atom, 1.0))) if ordered else max(last - first, 1)
    starts = torch.arange(first, last, size, device=centres.device)
    bounds = torch.cat([starts, torch.tensor([last], device=centres.device)])
    pairs = torch.searchsorted(centres, bounds).tolist()
    triplets = torch.searchsorted(triplet_centres, bounds).tolist()
    edges = bounds.tolist()
    return [(edges[k], edges[k + 1], pairs[k], pairs[k + 1], triplets[k], triplets[k + 1]) for k in range(len(starts))]


def _centre_blocks(model: Potential, batch: Batch, jacobian: bool, memory_gb: float):
    """(a, b, p0, p1) of `centre_chunks` sized by the descriptor's working memory per pair."""
    first, last = batch.centre_range()
    per_atom = model.descriptor.bytes_per_pair(jacobian) * batch.pair_i.shape[0] / max(last - first, 1)
    return [chunk[:4] for chunk in centre_chunks(batch, per_atom, memory_gb)]


def descriptor_blocks(model: Potential, batch: Batch, vectors: Tensor, jacobian: bool, memory_gb: float):
    """(a, b, p0, p1, G, J) per block of centre atoms a ≤ i < b with their pairs [p0, p1):
    the descriptors G (b − a, n_features) and, with `jacobian`, J (p1 − p0, n_features, 3)
    = ∂G_{i_p}/∂r_p. An atom's descriptors depend only on the pairs centred on it, so the
    blocks are independent and peak memory is bounded by `memory_gb`, not by the system.
    The descriptor's own fast path evaluates them (`evaluate`; for symmetry functions the
    compiled engine, CPU tensors, triplets enumerated inside)."""
    species = model.species(batch.numbers)
    for a, b, p0, p1 in _centre_blocks(model, batch, jacobian, memory_gb):
        pair_i, pair_j = batch.pair_i[p0:p1], batch.pair_j[p0:p1]
        yield (a, b, p0, p1, *model.descriptor.evaluate(species, vectors[p0:p1], pair_i, pair_j, (a, b), jacobian))


def descriptor_passes(model: Potential, batch: Batch, vectors: Tensor, weigh, memory_gb: float):
    """(a, b, features, value, g) per block of centre atoms a ≤ i < b, from the descriptor's one
    pass (`features_and_pair_gradients`) with (value, w) = weigh(features, species=the block's):
    a model's energies and ∂E/∂G, or a committee's lists of them (g is then a list too)."""
    species = model.species(batch.numbers)
    vectors = vectors.detach()
    for a, b, p0, p1 in _centre_blocks(model, batch, False, memory_gb):
        block_weigh = functools.partial(weigh, species=species[a:b])
        yield (
            a,
            b,
            *model.descriptor.features_and_pair_gradients(
                species, vectors[p0:p1], batch.pair_i[p0:p1], batch.pair_j[p0:p1], (a, b), block_weigh
            ),
        )


def _descriptor_energies(model: Potential, batch: Batch, vectors: Tensor, need_gradients: bool, memory_gb: float):
    """Atom energies, descriptors and g_p = ∂E/∂r_p of a descriptor model, by blocks of centre
    atoms: the descriptor's features, the model's w = ∂E/∂G (`energies_and_weights`), and
    g_p = w_{i_p} · ∂G_{i_p}/∂r_p (no Jacobian stored), in the descriptor's own pass
    (`descriptor_passes`)."""
    if vectors.device.type != "cpu":
        return _descriptor_energies_autograd(model, batch, vectors, need_gradients, memory_gb)
    network = model.compiled_network() if need_gradients else None
    if network is not None:  # the model evaluated whole inside the descriptor's engine, one pass per atom
        species, vectors = model.species(batch.numbers), vectors.detach()
        features, energies, gradients = zip(
            *(
                model.descriptor.energies_and_pair_gradients(
                    species, vectors[p0:p1], batch.pair_i[p0:p1], batch.pair_j[p0:p1], (a, b), network
                )
                for a, b, p0, p1 in _centre_blocks(model, batch, False, memory_gb)
            )
        )
        return torch.cat(energies), torch.cat(features), torch.cat(gradients)
    if need_gradients:
        _, _, features, energies, gradients = zip(*descriptor_passes(model, batch, vectors, model.energies_and_weights, memory_gb))
        return torch.cat(energies), torch.cat(features), torch.cat(gradients)
    species = model.species(batch.numbers)
    energies, features = [], []
    for a, b, _, _, block_features, _ in descriptor_blocks(model, batch, vectors.detach(), False, memory_gb):
        energies.append(model.atom_energies_from_features(block_features, species[a:b]).detach())
        features.append(block_features)
    return torch.cat(energies), torch.cat(features), None


def _descriptor_energies_autograd(model: Potential, batch: Batch, vectors: Tensor, need_gradients: bool, memory_gb: float):
    """As `_descriptor_energies`, through autograd of the descriptors' torch formulas (any
    device), by chunks of centre atoms so that each chunk's graph holds its own pairs and
    triplets only."""
    species = model.species(batch.numbers)
    first, last = batch.centre_range()
    n_atoms = max(last - first, 1)
    deferred = batch.deferred_angular_cutoff
    if deferred is not None:  # triplets are built per chunk: count them (k(k−1)/2 per centre) to size the chunks
        angular = (torch.linalg.vector_norm(vectors.detach(), dim=1) < deferred).cpu().numpy()
        legs = np.bincount(batch.pair_i.cpu().numpy()[angular])
        n_triplets = float((legs * (legs - 1) // 2).sum())
    else:
        n_triplets = float(batch.triplet_p.shape[0])
    per_atom = (GRAPH_BYTES_PER_TRIPLET * n_triplets + GRAPH_BYTES_PER_PAIR * batch.pair_i.shape[0]) / n_atoms
    energies, features, gradients = [], [], []
    for a, b, p0, p1, t0, t1 in centre_chunks(batch, per_atom, memory_gb):
        if deferred is not None:
            tp, tq = (torch.from_numpy(x).to(vectors.device) for x in triplets(batch.pair_i[p0:p1].cpu().numpy(), angular[p0:p1]))
        else:
            tp, tq = batch.triplet_p[t0:t1] - p0, batch.triplet_q[t0:t1] - p0
        part = vectors[p0:p1].detach().requires_grad_(need_gradients)
        chunk_features = model.descriptor(species, part, batch.pair_i[p0:p1], batch.pair_j[p0:p1], tp, tq, centres=(a, b))
        chunk_energies = model.atom_energies_from_features(chunk_features, species[a:b])
        if need_gradients:
            gradients.append(_gradient(chunk_energies, part, create_graph=False))
        energies.append(chunk_energies.detach())
        features.append(chunk_features.detach())
    pair_gradients = torch.cat(gradients) if need_gradients else None
    return torch.cat(energies), torch.cat(features), pair_gradients


def energies_and_pair_gradients(model: Potential, batch: Batch, vectors: Tensor, need_gradients: bool, training: bool, memory_gb: float):
    """The centre atoms' energies (b − a,) (`batch.centre_range`), g_p = ∂E/∂r_p (n_pairs, 3)
    (None without `need_gradients`) and the descriptors (b − a, n_features) or None, by the
    path that suits the batch (see `predict`); the core repulsion included. `vectors` may be
    made a leaf of the graph here: use the returned ones."""
    descriptor_model = model.uses_descriptors
    cached = descriptor_model and batch.features is not None
    first, last = batch.centre_range()
    features = pair_gradients = None
    if descriptor_model and not cached and not training:  # prediction: chunks of bounded memory
        atom_energies, features, pair_gradients = _descriptor_energies(model, batch, vectors, need_gradients, memory_gb)
    elif cached:  # training: g_p from the cached descriptor Jacobian
        features = batch.features.requires_grad_(need_gradients)
        atom_energies = model.atom_energies_from_features(features, model.species(batch.numbers))
        if need_gradients:
            d_features = _gradient(atom_energies, features, training)
            pair_gradients = torch.einsum("pf,pfc->pc", d_features[batch.pair_i], batch.jacobian)
    else:  # autograd through the model with respect to the pair vectors
        vectors = vectors.requires_grad_(need_gradients)
        if descriptor_model:
            features = model.features(batch, vectors)
            atom_energies = model.atom_energies_from_features(features, model.species(batch.numbers))
        else:
            atom_energies = model.atom_energies(batch, vectors)[first:last]
        if need_gradients:
            pair_gradients = _gradient(atom_energies, vectors, training)
    if model.core_repulsion is not None:  # a fixed prior: no parameter, no graph
        repulsion, repulsion_gradients = core_repulsion(model, batch, vectors.detach())
        atom_energies = atom_energies + repulsion[first:last]
        if need_gradients:
            pair_gradients = pair_gradients + repulsion_gradients
    return atom_energies, pair_gradients, features, vectors


def predict(
    model: Potential, batch: Batch, *, forces: bool = True, stress: bool = False, training: bool = False, memory_gb: float | None = None
) -> Prediction:
    """Energies (and forces, stress) of every structure in `batch`.

    Cached descriptors (features + Jacobian on the batch) are used when present;
    `training=True` keeps the graph for a second derivative (the loss depends on
    forces). Otherwise a descriptor model is evaluated by chunks of centre atoms that
    fit in `memory_gb` (default: forcefit's memory budget, `forcefit/memory.py`): any system size in
    bounded memory.
    """
    dtype = model.energy_offset.dtype
    batch = batch.to(dtype, model.energy_offset.device)  # the model's dtype and device
    memory_gb = memory_budget_gb() if memory_gb is None else memory_gb
    need_gradients = forces or stress
    first, last = batch.centre_range()
    with torch.enable_grad() if need_gradients or training else torch.no_grad():
        atom_energies, pair_gradients, features, vectors = energies_and_pair_gradients(
            model, batch, batch.vectors(), need_gradients, training, memory_gb
        )
        energy = atom_energies.new_zeros(batch.n_structures).index_add(0, batch.structure_index[first:last], atom_energies)
        reference_energy = energy - model.energy_offset
        force_values = stress_values = None
        if need_gradients:
            force_values, stress_values = assemble(batch, vectors.detach() if not training else vectors, pair_gradients, stress)
    features = None if features is None else features.detach()
    if not training:  # plain numbers for callers; the graph is only needed by the loss
        energy, atom_energies, reference_energy = energy.detach(), atom_energies.detach(), reference_energy.detach()
        force_values = None if force_values is None else force_values.detach()
        stress_values = None if stress_values is None else stress_values.detach()
    return Prediction(energy, atom_energies, force_values, stress_values, features, reference_energy)
