"""The compiled symmetry-function engine against the torch formulas and their autograd
(the reference), and its branch-free exp against math.exp."""

import math
from unittest.mock import patch

import numpy as np
import pytest
import torch

from conftest import small_skewed_cell, tiny_bpnn, tiny_functions, water_cell, water_cluster
from forcefit.data import make_graph
from forcefit.descriptors import CUTOFF_TYPES, SymmetryFunction, SymmetryFunctions
from forcefit.descriptors.engine.kernels import _exp_block
from forcefit.models.bpnn import ACTIVATIONS, ElementNetwork
from forcefit.models.forces import predict


def test_branch_free_exp_is_within_one_ulp_of_math_exp():
    x = np.concatenate([-np.geomspace(1e-300, 700.0, 20001), [0.0, -0.0, -1e-17, -745.0, -1e4, 3.0]])
    out, bits = np.empty_like(x), np.empty(len(x), dtype=np.int64)
    _exp_block(x, out, bits, 0, len(x))
    expected = np.array([math.exp(min(max(v, -700.0), 0.0)) for v in x])
    assert np.all(np.abs(out - expected) <= np.spacing(expected)), np.max(np.abs(out - expected) / np.spacing(expected))
    assert out[-1] == 1.0 and out[-2] == math.exp(-700.0)


ENGINE_EXTRA = [
    SymmetryFunction("narrow", "O", ("H", "H"), eta=0.3, rc=3.0, lam=1.0, zeta=1.5, rs=0.4),
    SymmetryFunction("wide", "H", ("H", "O"), eta=0.1, rc=3.5, lam=1.0, zeta=1.0),
    SymmetryFunction("narrow", "H", ("O", "O"), eta=0.02, rc=3.5, lam=-1.0, zeta=1.0),
    SymmetryFunction("narrow", "H", ("H", "O"), eta=0.05, rc=3.2, lam=1.0, zeta=4.0),
    SymmetryFunction("radial", "O", ("O",), eta=0.5, rc=2.9, rs=1.1),
]


# inner radii per element pair (H, O) that put some of the structures' pairs inside the inner switch
SHORT_RANGE = torch.tensor([[1.6, 1.05], [1.05, 2.7]], dtype=torch.float64)


@pytest.mark.parametrize(
    "kind, alpha, inner",
    [(k, 0.0, False) for k in CUTOFF_TYPES] + [("poly2", 0.3, False), ("poly4", 0.3, False), ("cos", 0.2, False), ("exp", 0.1, False)]
    + [("tanh", 0.0, True), ("poly2", 0.3, True)],
)  # fmt: skip
@pytest.mark.parametrize("structure", [water_cell(4), water_cluster(5), small_skewed_cell()], ids=["periodic", "cluster", "skewed"])
def test_engine_equals_autograd_of_the_torch_formulas(kind, alpha, inner, structure):
    """The compiled engine's features, Jacobian and weighted pair gradients against the torch
    formulas and their autograd: every cutoff type, an inner cutoff, narrow and wide functions, non-integer ζ,
    r_s ≠ 0, several cutoff radii and elements, the inner switch at short range; a cell with many
    periodic images, a free cluster."""
    sf = SymmetryFunctions(["H", "O"], tiny_functions() + ENGINE_EXTRA, kind, alpha)
    if inner:
        sf.set_inner_radii(SHORT_RANGE)
    g = make_graph(structure, sf.cutoff, sf.angular_cutoff)
    species = torch.tensor([0 if z == 1 else 1 for z in structure.numbers])
    features, jacobian = sf.evaluate(species, g.vectors(), g.pair_i, g.pair_j, (0, structure.n_atoms), jacobian=True)
    vectors = g.vectors().requires_grad_()
    direct = sf(species, vectors, g.pair_i, g.pair_j, g.triplet_p, g.triplet_q)
    assert float(direct.detach().abs().max()) > 0.1 and g.triplet_p.numel() > 0
    assert torch.allclose(features, direct.detach(), rtol=1e-13, atol=1e-15)
    scale = float(jacobian.abs().max())
    assert scale > 1e-3
    for f in range(direct.shape[1]):
        (grad,) = torch.autograd.grad(direct[:, f].sum(), vectors, retain_graph=True)
        assert torch.allclose(jacobian[:, f], grad, rtol=0, atol=1e-12 * scale), f"function {f}"
    # the prediction's second pass: g_p = Σ_f w_f ∂G_f/∂r_p for weights w, as autograd gives it
    weights = torch.randn(direct.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    (expected,) = torch.autograd.grad((direct * weights).sum(), vectors, retain_graph=True)
    gradients = sf.pair_gradients(species, g.vectors(), g.pair_i, g.pair_j, (0, structure.n_atoms), weights)
    assert torch.allclose(gradients, expected, rtol=0, atol=1e-12 * float(expected.abs().max()))
    # the one-pass form the prediction uses: the weights come from the features it passes out
    seen = []
    fused = sf.features_and_pair_gradients(
        species, g.vectors(), g.pair_i, g.pair_j, (0, structure.n_atoms), lambda G: (seen.append(G) or "value", weights)
    )
    assert torch.allclose(fused[0], features, rtol=1e-13, atol=1e-15) and seen[0] is fused[0] and fused[1] == "value"
    assert torch.equal(fused[2], gradients)
    # one row of weights shared by the block: that row for every atom
    shared = sf.pair_gradients(species, g.vectors(), g.pair_i, g.pair_j, (0, structure.n_atoms), weights[:1])
    (expected,) = torch.autograd.grad((direct * weights[:1]).sum(), vectors)
    assert torch.allclose(shared, expected, rtol=0, atol=1e-12 * float(expected.abs().max()))


def test_engine_features_of_a_block_of_centres_equal_the_whole():
    """Evaluating atoms a ≤ i < b from their own pairs gives those rows of the whole system,
    bit for bit (the engine's loop over centres is the same either way)."""
    structure = water_cell(2)
    sf = SymmetryFunctions(["H", "O"], tiny_functions() + ENGINE_EXTRA, "tanh")
    g = make_graph(structure, sf.cutoff, sf.angular_cutoff, triplets=False)
    species = torch.tensor([0 if z == 1 else 1 for z in structure.numbers])
    whole, whole_jacobian = sf.evaluate(species, g.vectors(), g.pair_i, g.pair_j, (0, structure.n_atoms), jacobian=True)
    a, b = 2, 5
    p0, p1 = (int(x) for x in torch.searchsorted(g.pair_i, torch.tensor([a, b])))
    block, block_jacobian = sf.evaluate(species, g.vectors()[p0:p1], g.pair_i[p0:p1], g.pair_j[p0:p1], (a, b), jacobian=True)
    assert torch.equal(block, whole[a:b]) and torch.equal(block_jacobian, whole_jacobian[p0:p1])
    with pytest.raises(ValueError, match="sorted by centre"):
        sf.evaluate(species, g.vectors(), g.pair_i, g.pair_j, (a, b), jacobian=False)


def test_serial_and_threaded_engine_agree_bit_for_bit():
    """One thread runs the serial compilation, more threads the parallel one; centres are
    independent, so both give the same numbers exactly."""
    structure = water_cell(3)
    sf = SymmetryFunctions(["H", "O"], tiny_functions() + ENGINE_EXTRA, "tanh")
    g = make_graph(structure, sf.cutoff, sf.angular_cutoff, triplets=False)
    species = torch.tensor([0 if z == 1 else 1 for z in structure.numbers])
    weights = torch.randn((structure.n_atoms, sf.n_features), dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    threads = torch.get_num_threads()
    results = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            args = (species, g.vectors(), g.pair_i, g.pair_j, (0, structure.n_atoms))
            results.append((*sf.evaluate(*args, jacobian=True), sf.pair_gradients(*args, weights)))
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(a, b) for a, b in zip(*results))


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_whole_model_pass_equals_the_two_passes(activation, threads):
    """A float64 BPNN on symmetry functions is evaluated inside the engine (ENERGY mode: its
    networks per atom between the atom's features and its gradient pass). Energies per atom,
    forces and stress equal the two-pass route (features, torch networks and autograd for
    ∂E/∂G, gradient pass) for every activation, element, feature scaling and output scale,
    on the serial and the threaded compilation."""
    model = tiny_bpnn()
    model.activations = {e: [activation, "tanh", "linear"] for e in model.elements}
    model.networks = torch.nn.ModuleList(ElementNetwork(15, [8, 6], model.activations[e]) for e in model.elements)
    torch.manual_seed(3)
    with torch.no_grad():
        for parameter in model.networks.parameters():
            parameter.copy_(0.5 * torch.randn_like(parameter))
    assert model.compiled_network() is not None
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for structure in (water_cell(2), water_cluster(4)):
            batch = model.graph(structure, triplets=False)
            whole = predict(model, batch, stress=structure.pbc.all())
            with patch.object(type(model), "compiled_network", return_value=None):
                two_pass = predict(model, batch, stress=structure.pbc.all())
            assert float(whole.atom_energies.abs().max()) > 1e-3
            assert torch.allclose(whole.atom_energies, two_pass.atom_energies, rtol=1e-13, atol=1e-13)
            assert torch.allclose(whole.forces, two_pass.forces, rtol=0, atol=1e-13 * float(two_pass.forces.abs().max()))
            if structure.pbc.all():
                assert torch.allclose(whole.stress, two_pass.stress, rtol=0, atol=1e-13 * float(two_pass.stress.abs().max()))
    finally:
        torch.set_num_threads(previous)
