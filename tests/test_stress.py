"""Stress as a training label: reading conventions, the loss term and its gradients, tables."""

import numpy as np
import pytest
import torch
from ase import units
from ase.build import bulk
from ase.calculators.emt import EMT

from conftest import shared_path, water_cluster
from forcefit.data import collate
from forcefit.descriptors import SymmetryFunctions, generate_symmetry_functions
from forcefit.io import read_structures, write_extxyz
from forcefit.models import LinearModel
from forcefit.models.forces import predict
from forcefit.structures import Structure
from forcefit.training.loss import LossWeights, force_matching_loss
from forcefit.training.metrics import collect, error_statistics


def emt_copper(n: int, seed: int = 0) -> list[Structure]:
    """Strained, rattled 8-atom copper cells labelled by EMT (energy, forces, stress)."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 1, 1))
        strain = np.eye(3) + rng.uniform(-0.02, 0.02, (3, 3))
        atoms.set_cell(atoms.cell @ (0.5 * (strain + strain.T)), scale_atoms=True)
        atoms.rattle(0.05, seed=seed * 1000 + k)
        atoms.calc = EMT()
        out.append(
            Structure.from_atoms(
                atoms,
                energy=atoms.get_potential_energy(),
                forces=atoms.get_forces(),
                stress=atoms.get_stress(voigt=False),
                source=f"emt {k + 1}",
            )
        )
    return out


def test_extxyz_stress_round_trip_in_file_units(tmp_path):
    structures = emt_copper(3)
    write_extxyz(tmp_path / "cu.extxyz", structures)
    back = read_structures(tmp_path / "cu.extxyz")
    assert all(np.allclose(a.stress, b.stress, rtol=1e-6, atol=1e-9) for a, b in zip(structures, back))
    kcal = units.kcal / units.mol
    converted = read_structures(tmp_path / "cu.extxyz", energy_unit=kcal)  # the same numbers, read as kcal/mol
    assert np.isclose(converted[0].energy, structures[0].energy * kcal)
    assert np.allclose(converted[0].forces, structures[0].forces * kcal, atol=1e-9)
    assert np.allclose(converted[0].stress, structures[0].stress * kcal, atol=1e-12)


def test_mlearn_stress_convention_matches_the_dft_energy():
    """vasp-kbar (mlearn's virial_stress_kbar_mlearn): the strain derivative of the DFT
    energy along each set of "Elastic" frames equals V σ : dε/ds with σ read this way."""
    import re

    from ase.io import read

    path = shared_path("data", "mlearn", "Si_train.extxyz")
    structures = read_structures(path, stress_key="virial_stress_kbar_mlearn", stress_format="vasp-kbar")
    descriptions = [a.info["description"] for a in read(path, index=":")]
    modes: dict[int, list] = {}
    for s, text in zip(structures, descriptions):
        match = re.search(r"mode (\d+), strain ([-\d.]+)", text)
        if match and abs(float(match.group(2))) <= 0.041:
            modes.setdefault(int(match.group(1)), []).append((float(match.group(2)), s))
    assert sorted(modes) == [0, 1, 2, 3, 4, 5]
    for mode, items in modes.items():
        items.sort(key=lambda t: t[0])
        for (s0, a), (s1, b), (s2, c) in zip(items, items[1:], items[2:]):
            if not (abs(s1) > 0.005 and abs(s2 - s0) < 0.05):
                continue
            d_energy = (c.energy - a.energy) / (s2 - s0)
            deformation = (np.linalg.solve(b.cell, c.cell) - np.linalg.solve(b.cell, a.cell)) / (s2 - s0)
            work = abs(np.linalg.det(b.cell)) * np.sum(b.stress * 0.5 * (deformation + deformation.T))
            assert abs(work - d_energy) < 0.03 * abs(d_energy), f"mode {mode}, strain {s1}: dE/ds {d_energy:.2f}, Vσ:dε {work:.2f}"


def linear_copper():
    structures = emt_copper(10)
    model = LinearModel(SymmetryFunctions(["Cu"], generate_symmetry_functions(["Cu"], 4.5, 5, 2), "tanh"))
    graphs = [model.graph(s) for s in structures]
    model.cache_descriptors(graphs)
    model.use_global_offset(True)  # b's column and gradient are part of θ
    model.initialise(graphs)
    return model, graphs


def test_stress_term_gradient_and_closed_form():
    """The stress term's analytic ∂L/∂θ equals autograd through the trainer's path, and the
    closed-form fit with stress rows sits where that gradient vanishes."""
    model, graphs = linear_copper()
    weights = LossWeights(energy=2.0, forces=0.5, stress=300.0)
    with torch.no_grad():
        model.coefficients.normal_(std=0.1)
        model.energy_offset.fill_(1.5)
    batch = collate(graphs)
    loss = force_matching_loss(predict(model, batch, stress=True, training=True), batch, weights)
    loss.backward()
    autograd = torch.cat([model.coefficients.grad[model.feature_mask], model.element_energies.grad, model.energy_offset.grad[None]])
    assert torch.allclose(model.loss_gradient(graphs, weights), autograd, rtol=1e-9, atol=1e-12)
    without = force_matching_loss(predict(model, batch, stress=True), batch, LossWeights(2.0, 0.5))
    assert float(loss) > float(without) > 0  # the stress term counts
    before = error_statistics(collect(model.fit_ridge(graphs, LossWeights(2.0, 0.5), 1e-8), graphs), ["Cu"])["stress_rmse"]
    after = error_statistics(collect(model.fit_ridge(graphs, weights, 1e-8), graphs), ["Cu"])["stress_rmse"]
    assert model.loss_gradient(graphs, weights, ridge=1e-8).abs().max() < 1e-7
    assert after < before, f"fitting stresses lowers their error ({before:.3f} → {after:.3f} GPa)"


def test_stress_loss_ignores_clusters_and_stays_finite():
    """A batch mixing a free cluster (no stress, no volume) and a labelled crystal: the
    cluster adds no stress term and no NaN reaches the gradients."""
    from conftest import tiny_bpnn, water_cell

    model = tiny_bpnn()
    crystal = water_cell()
    crystal.energy, crystal.forces = -1.0, np.zeros((6, 3))
    crystal.stress = np.full((3, 3), 0.01)
    cluster = water_cluster(1)
    cluster.energy, cluster.forces = -1.0, np.zeros((9, 3))
    batch = collate([model.graph(s) for s in (cluster, crystal)])
    loss = force_matching_loss(predict(model, batch, stress=True, training=True), batch, LossWeights(stress=10.0))
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    with pytest.raises(ValueError, match="periodic in all three directions"):
        Structure(numbers=[1], positions=[[0, 0, 0]], stress=np.zeros((3, 3)))
