"""The body-ordered descriptor (descriptors/ace.py): exact derivatives, O(3) and
permutation invariance, smoothness at the cutoff, a slow reference written from the
formulas, and both model families on it through config, trainer, model file and calculator."""

import copy
import itertools
import math

import numpy as np
import pytest
import torch
import yaml
from scipy.special import eval_legendre, sph_harm_y
from sympy.physics.wigner import wigner_3j

from conftest import ROOT, water_cell, water_cluster
from forcefit.calculator import Calculator
from forcefit.config import load_config
from forcefit.data import collate
from forcefit.descriptors import AceBasis, AtomicClusterExpansion
from forcefit.models import BPNN, LinearModel, predict
from forcefit.models.saving import describe_file, load_model
from forcefit.run import train_from_config
from forcefit.testing import ModelContract
from forcefit.training.loss import LossWeights

ELEMENTS = ["H", "O"]


def ace(**options):
    settings = dict(n_radial=4, l_max=3, body_order=4, n_radial_4=2, l_max_4=2) | options
    r_min = settings.pop("r_min", 0.5)
    return AtomicClusterExpansion(ELEMENTS, 3.5, AceBasis(**settings), r_min=r_min)


def cluster_pairs(n=7, seed=0, spread=1.3):
    """All pairs of a random free cluster of H and O atoms (within the cutoff or not)."""
    rng = np.random.default_rng(seed)
    positions = torch.from_numpy(rng.normal(0.0, spread, (n, 3)))
    species = torch.from_numpy(rng.integers(0, 2, n))
    i, j = (x.reshape(-1) for x in torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij"))
    keep = i != j
    return species, positions, i[keep], j[keep]


def vectors_of(positions, i, j):
    return positions[j] - positions[i]


ORDER_5 = dict(body_order=5, n_radial_5=2, l_max_5=2)
INVERSE_DISTANCE = dict(radial_power=2.0)
EMBEDDING = dict(embedding=3)
TOTAL_DEGREE = dict(n_radial_4=4, l_max_4=3, degree_4=4, body_order=5, n_radial_5=3, l_max_5=2, degree_5=3)
VARIANTS = dict(
    argvalues=[{}, ORDER_5, INVERSE_DISTANCE, EMBEDDING, TOTAL_DEGREE],
    ids=["order4", "order5", "inverse-distance", "embedding", "total-degree"],
)


@pytest.mark.parametrize("options", **VARIANTS)
def test_analytic_jacobian_and_pair_gradients_equal_autograd_and_central_differences(options):
    d = ace(**options)
    species, positions, i, j = cluster_pairs()
    v = vectors_of(positions, i, j)
    n = species.shape[0]
    features, jacobian = d.evaluate(species, v, i, j, (0, n), jacobian=True)
    leaf = v.clone().requires_grad_()
    reference = d(species, leaf, i, j)
    assert torch.allclose(features, reference.detach(), rtol=1e-13, atol=1e-13)
    weights = torch.randn(reference.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    (autograd,) = torch.autograd.grad((reference * weights).sum(), leaf)
    scale = autograd.abs().max()
    assert torch.allclose(torch.einsum("pf,pfc->pc", weights[i], jacobian), autograd, atol=1e-12 * scale)
    # pair_gradients is a reverse-mode pass of its own: it must agree with the analytic Jacobian
    pair_gradients = d.pair_gradients(species, v, i, j, (0, n), weights)
    assert torch.allclose(pair_gradients, torch.einsum("pf,pfc->pc", weights[i], jacobian), atol=1e-12 * scale)
    seen = []  # the one-pass form the prediction uses: weights from the features it passes out
    fused = d.features_and_pair_gradients(species, v, i, j, (0, n), lambda B: (seen.append(B) or "value", weights))
    assert torch.allclose(fused[0], features, rtol=1e-13, atol=1e-13) and seen[0] is fused[0] and fused[1] == "value"
    assert torch.equal(fused[2], pair_gradients)
    # weights one row shared by every atom (a linear model of one element): the same as that row repeated
    shared = weights[:1]
    expected = torch.einsum("f,pfc->pc", shared[0], jacobian)
    assert torch.allclose(d.pair_gradients(species, v, i, j, (0, n), shared), expected, atol=1e-12 * scale)
    # each column of the Jacobian against central differences of the features
    h = 1e-5
    for p, c in ((0, 0), (5, 1), (17, 2)):
        step = torch.zeros_like(v)
        step[p, c] = h
        plus, minus = d(species, v + step, i, j), d(species, v - step, i, j)
        numeric = (plus - minus)[i[p]] / (2 * h)
        assert torch.allclose(jacobian[p, :, c], numeric, rtol=1e-6, atol=1e-7 * features.abs().max())


def test_radial_and_angular_gradients_equal_autograd_up_to_l_8():
    """The training Jacobian's ∂R/∂r_p and ∂Y_lm/∂r_p (the latter from the harmonics of degree
    l − 1) against autograd, to l = 8, at distances from r_min to the cutoff, with an inner
    switch (inner radius 1.2 Å: pairs at 0.9–1.164 Å fade, shorter ones are off)."""
    d = ace(l_max=8, radial_power=2.0)
    rng = np.random.default_rng(7)
    directions = rng.normal(size=(40, 3))
    lengths = rng.uniform(0.6, 3.4, size=(40, 1))
    v = torch.from_numpy(directions / np.linalg.norm(directions, axis=1, keepdims=True) * lengths)
    inner = torch.full((40,), 1.2, dtype=torch.float64)
    radial, angular, d_radial, d_angular = d._radial_and_angular_gradients(v, inner)
    leaf = v.clone().requires_grad_()
    ref_radial, ref_angular = d._radial_and_angular(leaf, inner)
    r = torch.linalg.vector_norm(v, dim=1)
    assert (radial[r < 0.9] == 0).all() and (radial[(r > 0.9) & (r < 1.164)] != 0).any()
    assert torch.allclose(radial, ref_radial.detach(), rtol=0, atol=1e-14) and torch.allclose(
        angular, ref_angular.detach(), rtol=0, atol=1e-13
    )
    for values, derivatives in ((ref_radial, d_radial), (ref_angular, d_angular)):
        for k in range(values.shape[1]):
            (column,) = torch.autograd.grad(values[:, k].sum(), leaf, retain_graph=True)
            assert torch.allclose(derivatives[:, k], column, rtol=0, atol=1e-12 * max(1.0, float(column.abs().max()))), k


@pytest.mark.parametrize("options", **VARIANTS)
def test_invariant_under_rotations_reflections_and_permutations(options):
    d = ace(**options)
    species, positions, i, j = cluster_pairs(seed=2)
    features = d(species, vectors_of(positions, i, j), i, j)
    rng = np.random.default_rng(3)
    for _ in range(3):
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        for transform in (q * np.sign(np.linalg.det(q)), -q * np.sign(np.linalg.det(q))):  # rotation, then rotation × inversion
            moved = positions @ torch.from_numpy(transform).T
            other = d(species, vectors_of(moved, i, j), i, j)
            assert ((other - features).abs() / features.abs().max()).max() <= 1e-12
    order = torch.from_numpy(rng.permutation(species.shape[0]))
    inverse = torch.argsort(order)
    permuted = d(species[order], vectors_of(positions[order], inverse[i], inverse[j]), inverse[i], inverse[j])  # same pairs, new labels
    assert torch.allclose(permuted[inverse], features, rtol=1e-13, atol=1e-13 * features.abs().max())


def test_order_5_with_L_0_is_a_product_of_two_power_spectrum_terms():
    # W[0, m, m'] = δ_mm' / √(2l + 1) up to sign, so (ab)_0 (cd)_0 = p_ab p_cd / √((2l_a + 1)(2l_c + 1))
    d = ace(**ORDER_5)
    species, positions, i, j = cluster_pairs(seed=4)
    v = vectors_of(positions, i, j)
    features = d(species, v, i, j)
    A = d._densities(
        *d._radial_and_angular(v, torch.zeros(len(v))), d._neighbour_slots(species, i, j, 0, species.shape[0]), species.shape[0]
    )[0]
    at, checked = d.n_features - sum(len(g.k1) for g in d.plan.order5), 0
    for g in d.plan.order5:
        (l1, l2, l3, l4, L), k1, k2, k3, k4 = g.ls, g.k1, g.k2, g.k3, g.k4
        if L == 0:
            p12 = (A[:, k1, l1 * l1 : (l1 + 1) ** 2] * A[:, k2, l2 * l2 : (l2 + 1) ** 2]).sum(-1)
            p34 = (A[:, k3, l3 * l3 : (l3 + 1) ** 2] * A[:, k4, l4 * l4 : (l4 + 1) ** 2]).sum(-1)
            expected = p12 * p34 / math.sqrt((2 * l1 + 1) * (2 * l3 + 1))
            ours = features[:, at : at + len(k1)]
            assert torch.allclose(ours.abs(), expected.abs(), rtol=1e-10, atol=1e-12 * expected.abs().max())
            checked += len(k1)
        at += len(k1)
    assert at == d.n_features and checked > 10
    assert len(d.feature_degrees()) == d.n_features


def test_total_degree_keeps_exactly_the_box_invariants_of_low_degree():
    box, limited = ace(**{**TOTAL_DEGREE, "degree_4": None, "degree_5": None}), ace(**TOTAL_DEGREE)

    def invariants(d, order, limit):  # (l's, channels) of each invariant of one order, with Σ (n + l)
        rows = []
        for g in getattr(d.plan, f"order{order}"):
            ls, ks = g.ls, [getattr(g, f"k{n}") for n in range(1, order)]
            for columns in zip(*(k.tolist() for k in ks)):
                degree = sum(k % d.n_radial for k in columns) + sum(ls[: order - 1])
                if limit is None or degree <= limit:
                    rows.append((ls, columns))
        return sorted(rows)

    for order, limit in ((4, 4), (5, 3)):
        kept = invariants(limited, order, None)
        assert kept == invariants(box, order, limit) and 0 < len(kept) < len(invariants(box, order, None))
    degrees = limited.feature_degrees()
    n_low = limited.n_features - sum(len(g.k1) for g in limited.plan.order4) - sum(len(g.k1) for g in limited.plan.order5)
    assert int(degrees[n_low:].max()) <= 4
    with pytest.raises(ValueError, match="model.ace.degree_4: -1; expected"):
        ace(degree_4=-1)


def test_smooth_at_the_cutoff():
    d = ace()
    species = torch.tensor([0, 1])
    i, j = torch.tensor([0, 1]), torch.tensor([1, 0])
    values = []
    for r in (3.5 - 1e-3, 3.5 - 1e-6, 3.5 + 1e-6):
        v = torch.tensor([[0.0, 0.0, r], [0.0, 0.0, -r]], dtype=torch.float64)
        features, jacobian = d.evaluate(species, v, i, j, (0, 2), jacobian=True)
        values.append((features.abs().max(), jacobian.abs().max()))
    assert values[0][0] < 1e-7 and values[0][1] < 1e-4  # poly2: f_c ~ x³ near the cutoff
    assert values[1][0] < 1e-15 and values[1][1] < 1e-10
    assert values[2][0] == 0 and values[2][1] == 0


def slow_reference(d, species, positions, centre):
    """B of one atom from the formulas with loops over neighbours: body order 2 and 3 through
    the addition theorem (Σ_m Y_lm(a) Y_lm(b) = (2l+1)/4π P_l(a·b)), body order 4 with complex
    spherical harmonics (scipy) and Wigner 3j symbols (sympy)."""
    rc, r_min = d.cutoff, d.r_min
    neighbours = [j for j in range(len(species)) if j != centre and 0 < np.linalg.norm(positions[j] - positions[centre]) < rc]

    def u(r):  # the distance transform
        return r if d.radial_power == 0 else (1 + r) ** -d.radial_power

    def xi(r):
        return 2 * (u(r) - u(r_min)) / (u(rc) - u(r_min)) - 1

    def cutoff(r):  # poly2, x = r / r_c
        x = r / rc
        return ((15.0 - 6.0 * x) * x - 10.0) * x**3 + 1.0

    def radial(n, r):  # T_n(ξ) f_c(r)
        return np.polynomial.chebyshev.chebval(xi(r), [0] * n + [1]) * cutoff(r)

    vec = {j: positions[j] - positions[centre] for j in neighbours}
    dist = {j: np.linalg.norm(vec[j]) for j in neighbours}
    n_radial = d.n_radial

    def channel(k):
        return k // n_radial, k % n_radial  # (element, n)

    def members(k):
        z, n = channel(k)
        return [(j, radial(n, dist[j])) for j in neighbours if species[j] == z]

    n_channels = len(d.elements) * n_radial
    out = [sum(w for _, w in members(k)) / math.sqrt(4 * math.pi) for k in range(n_channels)]
    for l in range(d.l_max + 1):
        for k1, k2 in zip(*torch.triu_indices(n_channels, n_channels).tolist()):
            total = 0.0
            for (a, wa), (b, wb) in itertools.product(members(k1), members(k2)):
                total += wa * wb * (2 * l + 1) / (4 * math.pi) * eval_legendre(l, vec[a] @ vec[b] / (dist[a] * dist[b]))
            out.append(total)

    def density(k, l, m):
        total = 0j
        for j, w in members(k):
            theta = math.acos(vec[j][2] / dist[j])
            phi = math.atan2(vec[j][1], vec[j][0])
            total += w * sph_harm_y(l, m, theta, phi)
        return total

    groups = []
    for g in d.plan.order4:
        (l1, l2, l3), k1, k2, k3 = g.ls, g.k1, g.k2, g.k3
        values = []
        for a, b, c in zip(k1.tolist(), k2.tolist(), k3.tolist()):
            total = 0j
            for m1 in range(-l1, l1 + 1):
                for m2 in range(-l2, l2 + 1):
                    m3 = -m1 - m2
                    if abs(m3) <= l3:
                        total += float(wigner_3j(l1, l2, l3, m1, m2, m3)) * density(a, l1, m1) * density(b, l2, m2) * density(c, l3, m3)
            assert abs(total.imag) < 1e-10
            values.append(total.real)
        groups.append(values)
    embedded = [  # √(ρ + ε) − √ε, ρ = Σ_j ((1 − ξ)/2)^k f_c Y_00, per element z and k
        math.sqrt(
            sum(((1 - xi(dist[j])) / 2) ** k * cutoff(dist[j]) for j in neighbours if species[j] == z) / math.sqrt(4 * math.pi) + 1e-2
        )
        - 0.1
        for z in range(len(d.elements))
        for k in range(d.embedding)
    ]
    return np.array(out), groups, np.array(embedded)


@pytest.mark.parametrize("radial_power, embedding", [(0.0, 0), (3.0, 0), (0.0, 3)])
def test_agrees_with_a_slow_reference_written_from_the_formulas(radial_power, embedding):
    d = ace(n_radial=3, l_max=2, n_radial_4=2, l_max_4=2, radial_power=radial_power, embedding=embedding)
    signs = None
    for seed in (4, 5):
        species, positions, i, j = cluster_pairs(n=5, seed=seed, spread=1.0)
        features = d(species, vectors_of(positions, i, j), i, j).numpy()
        for centre in range(2):
            low_orders, groups, embedded = slow_reference(d, species.numpy(), positions.numpy(), centre)
            np.testing.assert_allclose(features[centre, : len(low_orders)], low_orders, rtol=1e-10, atol=1e-12)
            at = len(low_orders)
            # order 4: the real-basis contraction is the complex one up to a sign per (l1, l2, l3)
            # (both are the normalised invariant of l1 ⊗ l2 ⊗ l3); the sign is fixed by the first cluster
            found = []
            for values in groups:
                ours = features[centre, at : at + len(values)]
                at += len(values)
                largest = int(np.argmax(np.abs(values)))
                found.append(np.sign(ours[largest] * values[largest]))
                np.testing.assert_allclose(ours, found[-1] * np.array(values), rtol=1e-9, atol=1e-11 * np.abs(values).max())
            signs = signs or found
            assert found == signs
            np.testing.assert_allclose(features[centre, at:], embedded, rtol=1e-10, atol=1e-12)
        assert at + len(embedded) == d.n_features


def random_labelled_linear_model(seed: int, body_order: int, **options):
    """A linear model on ACE with its scaling fitted on water clusters and cells whose energies
    and forces are random numbers (a quadratic with a unique, nontrivial minimum)."""
    structures = [water_cluster(s) for s in range(6)] + [water_cell(s) for s in range(1, 5)]
    rng = np.random.default_rng(seed)
    for s in structures:
        s.energy, s.forces = float(rng.normal()), rng.normal(size=s.positions.shape)
    model = LinearModel(ace(body_order=body_order, **options))
    graphs = [model.graph(s, triplets=False) for s in structures]
    model.cache_descriptors(graphs)
    model.initialise(graphs)
    return model, graphs


def test_prediction_by_blocks_of_centre_atoms_equals_one_pass():
    """The CPU prediction runs features and forces in one descriptor pass per block of centre
    atoms (`features_and_pair_gradients`); any blocking gives the one-block numbers, which
    are those of autograd through the plain torch formulas."""
    from forcefit.models.forces import _descriptor_energies_autograd, assemble, centre_chunks

    model, _ = random_labelled_linear_model(seed=3, body_order=5, embedding=2)
    with torch.no_grad():
        model.coefficients.normal_(generator=torch.Generator().manual_seed(4))
    batch = collate([model.graph(s, triplets=False) for s in (water_cluster(1), water_cell(2))])
    whole = predict(model, batch, stress=True, memory_gb=1e3)
    energies, _, pair_gradients = _descriptor_energies_autograd(model, batch, batch.vectors(), True, 1e3)
    forces, _ = assemble(batch, batch.vectors(), pair_gradients, False)
    np.testing.assert_allclose(whole.atom_energies, energies.detach(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(whole.forces, forces.detach(), rtol=1e-11, atol=1e-11 * float(forces.abs().max()))
    for budget in (1e-9, 2e-4):  # one atom per block; a few atoms per block
        assert len(centre_chunks(batch, model.descriptor.bytes_per_pair(False) * 20, budget)) > 1
        part = predict(model, batch, stress=True, memory_gb=budget)
        for name in ("features", "energy", "atom_energies", "forces"):
            assert torch.allclose(getattr(part, name), getattr(whole, name), rtol=1e-12, atol=1e-12), name
        assert torch.allclose(part.stress[1], whole.stress[1], rtol=1e-12, atol=1e-14)  # the cell (a cluster has none)


@pytest.mark.parametrize("options", [ORDER_5, EMBEDDING], ids=["order5", "embedding"])
def test_contractions_move_with_the_module(options):
    """`.to(device)` moves the contraction plan built in __init__: on the meta device (shapes
    without data; no GPU here) every tensor the descriptor holds is there and the invariants and
    their gradients run from meta densities. Meta's device checks are partial (index_add_ and
    elementwise products have them, plain indexing and matrix products do not), hence the look
    at every tensor too."""
    d = ace(**options)
    species, positions, i, j = cluster_pairs()
    v = vectors_of(positions, i, j)
    n = species.shape[0]
    layout = d._neighbour_slots(species, i, j, 0, n)
    densities = d._densities(*d._radial_and_angular(v, torch.zeros(len(v))), layout, n)[0]
    weights = torch.randn((n, d.n_features), dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    features, gradients = d.invariants(densities), d.density_gradients(densities, weights)
    with pytest.raises(RuntimeError, match="same device"):  # a CPU index meets meta data
        d.density_gradients(densities.to("meta"), weights.to("meta"))
    meta = copy.deepcopy(d).to("meta")

    def tensors(value):
        if isinstance(value, torch.Tensor):
            yield value
        elif isinstance(value, (list, tuple, dict)):
            for v in value.values() if isinstance(value, dict) else value:
                yield from tensors(v)

    held = [*meta.buffers(), *(t for module in meta.modules() for value in vars(module).values() for t in tensors(value))]
    assert len(held) > 10 and all(t.is_meta for t in held)
    meta_features = meta.invariants(densities.to("meta"))
    meta_gradients = meta.density_gradients(densities.to("meta"), weights.to("meta"))
    assert meta_features.is_meta and meta_features.shape == features.shape
    assert meta_gradients.is_meta and meta_gradients.shape == gradients.shape
    assert torch.equal(d.invariants(densities), features)  # the original stays where it was


def test_linear_fit_equals_the_gradient_fit_at_the_optimum():
    model, graphs = random_labelled_linear_model(seed=0, body_order=3)
    weights = LossWeights(energy=1.0, forces=0.5)
    model.fit_ridge(graphs, weights, 1e-6)
    assert model.loss_gradient(graphs, weights, 1e-6).abs().max() < 1e-9
    assert model.coefficients.abs().max() > 0


def test_smoothness_prior_is_the_optimum_of_its_penalty_and_grows_with_degree():
    tiny = AtomicClusterExpansion(["O"], 4.0, AceBasis(n_radial=2, l_max=1, body_order=3, n_radial_4=1, l_max_4=0))
    # order 2: n = 0, 1; order 3, l = 0 then 1, channel pairs (0,0) (0,1) (1,1): n1 + n2 + 2l
    assert tiny.feature_degrees().tolist() == [0, 1, 0, 1, 2, 2, 3, 4]
    model, graphs = random_labelled_linear_model(seed=1, body_order=4)
    weights = LossWeights(energy=1.0, forces=0.5)
    degrees = model.descriptor.feature_degrees()
    assert len(degrees) == model.descriptor.n_features and int(degrees.max()) > 4
    penalty = model.ridge_penalty(1e-3, 2.0)
    n_c = int(model.feature_mask.sum())
    assert torch.allclose(penalty[:n_c], 1e-3 * (1 + degrees.double().repeat(len(model.elements))) ** 2)
    assert (penalty[n_c:] == 0).all()
    model.fit_ridge(graphs, weights, 1e-3, smoothness=2.0)
    assert model.loss_gradient(graphs, weights, 1e-3, smoothness=2.0).abs().max() < 1e-9
    rough = degrees.repeat(len(model.elements)) >= 6
    smooth_prior = model.coefficients[model.feature_mask][rough].abs().sum()
    model.fit_ridge(graphs, weights, 1e-3)
    assert smooth_prior < model.coefficients[model.feature_mask][rough].abs().sum()  # the prior damps rough terms


class WaterStructures:
    def structures(self):
        return water_cluster(5), water_cell()


class TestBPNNOnACE(WaterStructures, ModelContract):
    kind = "bpnn"

    def make_model(self):
        torch.manual_seed(0)
        model = BPNN(ace(), hidden=[8])
        structures = [water_cluster(s) for s in range(3)] + [water_cell()]
        for s, e in zip(structures, (-1.0, -1.2, -0.9, -2.0)):
            s.energy, s.forces = e, np.zeros_like(s.positions)
        model.initialise([model.graph(s) for s in structures])
        return model


class TestLinearOnACE(WaterStructures, ModelContract):
    kind = "linear"

    def make_model(self):
        torch.manual_seed(0)
        model = LinearModel(ace(embedding=2))  # the embedded densities under the contract too
        model.initialise([model.graph(s) for s in (water_cluster(1), water_cell())])
        with torch.no_grad():
            model.coefficients.normal_(std=0.01)
        return model


# where "the data begin" per element pair (H, O), chosen so that the structures' pairs lie inside
# both switches: the inner cutoff's (from 0.97 × the radius down to 0.75 × it) and the core
# repulsion's (from the radius down to 0.75 × it)
SHORT_RANGE = torch.tensor([[1.6, 1.05], [1.05, 2.7]], dtype=torch.float64)


class TestLinearOnACEAcrossTheSwitches(WaterStructures, ModelContract):
    kind = "linear"

    def make_model(self):
        torch.manual_seed(0)
        model = LinearModel(ace(embedding=2), core_repulsion=True)
        model.initialise([model.graph(s) for s in (water_cluster(1), water_cell())])
        model.core_repulsion.set_from_shortest_distances(SHORT_RANGE)
        model.descriptor.set_inner_radii(SHORT_RANGE)
        with torch.no_grad():
            model.coefficients.normal_(std=0.01)
        return model


def test_the_switches_are_active_in_the_contract_structures():
    """The contract above means something only if its pairs sit inside both switches."""
    from forcefit.descriptors.cutoff import INNER_END, INNER_START
    from forcefit.models.repulsion import INNER_FRACTION

    model = TestLinearOnACEAcrossTheSwitches().make_model()
    for structure in WaterStructures().structures():
        graph = model.graph(structure)
        species = model.species(graph.numbers)
        r = torch.linalg.vector_norm(graph.vectors(), dim=1)
        radius = SHORT_RANGE[species[graph.pair_i], species[graph.pair_j]]
        assert ((r < INNER_START * radius) & (r > INNER_END * radius)).any()  # fading descriptors
        assert ((r < radius) & (r > INNER_FRACTION * radius)).any()  # switching repulsion
        energy, _ = model.core_repulsion.energies_and_pair_gradients(species, graph.vectors(), graph.pair_i, graph.pair_j)
        assert energy.abs().sum() > 0


@pytest.mark.parametrize("kind, training", [("bpnn", {"epochs": 2, "batch_size": 8}), ("linear", {"optimizer": "ridge", "ridge": 1e-6})])
def test_both_families_train_on_it_from_yaml_and_run_in_ase(tmp_path, kind, training):
    config = {
        "data": {"train": str(ROOT / "data" / "ethanol_gfn2xtb_500K.extxyz"), "max_structures": 40},
        "model": {"kind": kind, "cutoff": 4.0, "descriptor": "ace", "ace": {"n_radial": 3, "l_max": 2, "n_radial_4": 2, "l_max_4": 1}},
        "training": training,
        "output": str(tmp_path / kind),
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    model, stats = train_from_config(load_config(path))
    assert stats["test"]["forces_mae"] < 2000  # meV/Å: a fit, not noise
    loaded = load_model(tmp_path / kind / "model.ffm")
    assert isinstance(loaded.descriptor, AtomicClusterExpansion)
    how = describe_file(tmp_path / kind / "model.ffm").splitlines()[-1]  # how it was fitted, as its config said
    assert how.endswith("(linear, ridge in closed form, λ 1e-06)" if kind == "linear" else "(bpnn, adam, up to 2 epochs)"), how
    from forcefit.io import read_extxyz

    structure = read_extxyz(ROOT / "data" / "ethanol_gfn2xtb_500K.extxyz")[0]
    atoms = structure.to_atoms()
    atoms.calc = Calculator(loaded)
    expected = predict(model, collate([model.graph(structure)]))
    assert math.isclose(atoms.get_potential_energy(), float(expected.energy[0]), rel_tol=1e-12)
    np.testing.assert_allclose(atoms.get_forces(), expected.forces.numpy(), atol=1e-10)


def test_settings_of_the_other_descriptor_are_refused_when_the_config_is_read():
    from forcefit.config import config_from_dict

    for model, message in (
        ({"descriptor": "ace", "n_angular": 6}, "model.n_angular not used by descriptor: ace"),
        ({"descriptor": "ace", "ace": {"lmax": 3}}, r"model.ace: unknown key\(s\) \['lmax'\]"),
        ({"descriptor": "ace", "ace": {"radial_power": -1}}, "model.ace.radial_power: -1.0; expected q ≥ 0"),
        ({"descriptor": "ace", "ace": {"n_radial": 3, "embedding": 4}}, r"model.ace.embedding: 4; expected 0 ≤ embedding ≤ n_radial \(3\)"),
        ({"ace": {"n_radial": 3}}, "model.ace is read only with model.descriptor: ace"),
    ):
        with pytest.raises(ValueError, match=message):
            config_from_dict({"data": {"train": "x.extxyz"}, "model": model})
