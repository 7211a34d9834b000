"""The linear model: closed-form ridge fit, analytic loss gradient, learning curves."""

import torch

from conftest import ROOT
from forcefit.config import TrainingConfig
from forcefit.data import collate
from forcefit.descriptors import SymmetryFunctions, generate_symmetry_functions
from forcefit.models import LinearModel, predict
from forcefit.reports.figures import data_learning_curve_plot
from forcefit.training.learning_curve import learning_curve
from forcefit.training.loss import LossWeights, force_matching_loss
from forcefit.training.trainer import Trainer


def linear_setup(n=40, n_radial=4, n_angular=1, global_offset=False):
    from forcefit.io import read_extxyz

    structures = read_extxyz(ROOT / "data" / "ethanol_gfn2xtb_500K.extxyz")[:n]
    elements = ["C", "H", "O"]
    model = LinearModel(SymmetryFunctions(elements, generate_symmetry_functions(elements, 4.0, n_radial, n_angular), "tanh"))
    graphs = [model.graph(s) for s in structures]
    model.cache_descriptors(graphs)
    model.use_global_offset(global_offset)
    model.initialise(graphs)
    return model, graphs


def test_linear_analytic_gradient_equals_autograd():
    model, graphs = linear_setup(12, global_offset=True)  # b's column and gradient are part of θ
    weights = LossWeights(energy=3.0, forces=0.5, energy_per_atom=True)
    with torch.no_grad():
        model.coefficients.normal_(std=0.1)
        model.element_energies.normal_()
        model.energy_offset.fill_(2.0)
    batch = collate(graphs)
    loss = force_matching_loss(predict(model, batch, training=True), batch, weights)
    loss.backward()
    autograd = torch.cat([model.coefficients.grad[model.feature_mask], model.element_energies.grad, model.energy_offset.grad[None]])
    analytic = model.loss_gradient(graphs, weights)
    assert torch.allclose(analytic, autograd, rtol=1e-9, atol=1e-12)


def test_energies_and_weights_equal_autograd_through_the_scaled_model():
    """The linear model's own ∂E/∂G (the scaling folded into its coefficients) against autograd
    through `atom_energies_from_features`, for a block of one element (one shared row) and a
    mixed block; the forces the calculator path gives from it against autograd in positions."""
    from forcefit.models.base import Potential

    model, graphs = linear_setup(4)
    with torch.no_grad():
        model.coefficients.normal_(std=0.1)
        model.element_energies.normal_()
    batch = collate(graphs[:1])
    species = model.species(batch.numbers)
    for rows in (species == 1, torch.ones_like(species, dtype=torch.bool)):  # hydrogens alone; every atom
        features, block = batch.features[rows], species[rows]
        energies, weights = model.energies_and_weights(features, block)
        expected_energies, expected_weights = Potential.energies_and_weights(model, features, block)  # the autograd default
        assert weights.shape[0] == (1 if bool((block == block[0]).all()) else block.shape[0])
        assert torch.allclose(energies, expected_energies, rtol=1e-13, atol=1e-13)
        assert torch.allclose(weights.expand_as(expected_weights), expected_weights, rtol=1e-13, atol=1e-15)
    plain = collate(graphs[:1])
    plain.features = plain.jacobian = None
    fast = predict(model, plain)
    reference = predict(model, plain, training=True)  # no cached descriptors: autograd through the torch formulas
    assert torch.allclose(fast.forces, reference.forces.detach(), rtol=1e-10, atol=1e-10)
    assert torch.allclose(fast.energy, reference.energy.detach(), rtol=1e-12)


def test_ridge_solution_equals_the_gradient_trainer():
    # a small radial-only descriptor keeps the quadratic well conditioned for an iterative solver
    model, graphs = linear_setup(60, n_radial=2, n_angular=0)
    weights = LossWeights(energy=10.0, forces=1.0)
    model.fit_ridge(graphs, weights, ridge=1e-10)
    assert model.loss_gradient(graphs, weights, ridge=1e-10).abs().max() < 1e-6
    trained, _ = linear_setup(60, n_radial=2, n_angular=0)  # same scaling statistics (same data)
    config = TrainingConfig(epochs=40, optimizer="lbfgs", learning_rate=1.0, batch_size=60, energy_weight=10.0, early_stopping=40)
    Trainer(trained, graphs, [], config).fit()
    batch = collate(graphs)
    a, b = predict(model, batch), predict(trained, batch)
    loss_ridge = float(force_matching_loss(a, batch, weights))
    loss_trained = float(force_matching_loss(b, batch, weights))
    assert abs(loss_trained - loss_ridge) <= 1e-6 * loss_ridge  # the same minimum …
    # … reached along near-flat directions: predictions agree to well below the fit's error
    assert torch.allclose(a.forces, b.forces, atol=2e-3)
    assert torch.allclose(a.reference_energy, b.reference_energy, atol=2e-3)  # e and b trade off at fixed composition


def test_normal_equation_terms_reweight_to_the_loss_of_any_weights():
    """One pass gives each term's normal equations; w_E·energy + w_F·forces equals the
    normal equations built with those weights."""
    model, graphs = linear_setup(10)
    terms = model.normal_equation_terms(graphs, LossWeights(energy=1.0, forces=1.0))
    A, rhs = model.normal_equations(graphs, LossWeights(energy=7.0, forces=0.3))
    assert torch.allclose(7.0 * terms["energy"][0] + 0.3 * terms["forces"][0], A, rtol=1e-12, atol=1e-12 * A.abs().max())
    assert torch.allclose(7.0 * terms["energy"][1] + 0.3 * terms["forces"][1], rhs, rtol=1e-12, atol=1e-12 * rhs.abs().max())
    assert terms["stress"][0].abs().max() == 0  # free molecules: no stress rows carry weight


def test_ridge_solve_is_the_minimum_and_splits_undetermined_energies_by_minimum_norm():
    """Every frame is C2H6O, so the energies per element and the offset b are undetermined
    along directions the data cannot see. The solve must sit at the minimum, and give those
    unknowns the minimum-norm answer of a least-squares solve of the whole system, not an
    arbitrary split (which a plain Cholesky solve gives: it rounds the singular matrix to a
    definite one)."""
    model, graphs = linear_setup(20)
    weights = LossWeights(energy=10.0, forces=1.0)
    A, rhs = model.normal_equations(graphs, weights)
    penalised = A + torch.diag(model.ridge_penalty(1e-6))
    assert torch.linalg.matrix_rank(penalised) < A.shape[0]  # singular as described
    model.solve_ridge((A, rhs), 1e-6)
    assert model.loss_gradient(graphs, weights, 1e-6).abs().max() < 1e-8 * rhs.abs().max()
    n_c = int(model.feature_mask.sum())
    least_squares = torch.linalg.lstsq(penalised, rhs[:, None], driver="gelsd").solution[:, 0]
    assert torch.allclose(model._theta()[n_c:], least_squares[n_c:], rtol=1e-6, atol=1e-6)


def test_learning_curve_improves_with_data(tmp_path):
    model, graphs = linear_setup(60)

    def make():
        fresh = LinearModel(model.descriptor)
        fresh.initialise(graphs[:45])
        return fresh

    rows = learning_curve(make, graphs[:45], graphs[45:], [3, 12, 45], LossWeights(energy=10.0))
    assert rows[-1]["forces_mae"] < rows[0]["forces_mae"]
    data_learning_curve_plot(rows, tmp_path / "lc.png")
    assert (tmp_path / "lc.png").stat().st_size > 0
