"""Every model kind passes the model contract (forcefit.testing.ModelContract), in float64
and float32; the contract itself is strict enough to fail a model that ignores positions."""

import pytest
import torch

from conftest import tiny_bpnn, water_cell, water_cluster
from forcefit.descriptors import SymmetryFunctions, generate_symmetry_functions
from forcefit.models import (
    MODELS,
    Committee,
    CustomPair,
    LennardJones,
    LinearModel,
    Morse,
)
from forcefit.models.base import Potential
from forcefit.models.repulsion import CoreRepulsion
from forcefit.testing import CONTRACTS, TOLERANCES, ModelContract, check_non_degenerate

HO_LJ = {"H-H": {"epsilon": 0.02, "sigma": 1.1}, "H-O": {"epsilon": 0.05, "sigma": 1.3}, "O-O": {"epsilon": 0.1, "sigma": 2.5}}
HO_MORSE = {
    "H-H": {"D": 0.2, "alpha": 1.5, "r0": 1.6},
    "H-O": {"D": 0.5, "alpha": 2.0, "r0": 1.0},
    "O-O": {"D": 0.3, "alpha": 1.2, "r0": 2.8},
}
HO_BUCK = {k: {"A": 50.0, "rho": 0.3, "C": 0.5} for k in ("H-H", "H-O", "O-O")}


class WaterStructures:
    def structures(self):
        return water_cluster(5), water_cell()


class TestBPNN(WaterStructures, ModelContract):
    kind = "bpnn"
    cutoff_type = "cos"

    def make_model(self):
        return tiny_bpnn(self.cutoff_type)


class TestBPNNPolynomialCutoff(TestBPNN):
    cutoff_type = "poly2"


class TestBPNNExponentialCutoff(TestBPNN):
    cutoff_type = "exp"


class TestBPNNAcrossTheSwitches(TestBPNN):
    """The ZBL prior and the symmetry functions' inner switch, each active on some of the
    structures' O–H, H–H and O–O pairs (the radii of test_ace.SHORT_RANGE)."""

    def make_model(self):
        model = tiny_bpnn(self.cutoff_type)
        model.core_repulsion = CoreRepulsion(model.elements)
        model.set_short_range(torch.tensor([[1.6, 1.05], [1.05, 2.7]], dtype=torch.float64))
        return model


class TestLinear(WaterStructures, ModelContract):
    kind = "linear"

    def make_model(self):
        torch.manual_seed(0)
        model = LinearModel(SymmetryFunctions(["H", "O"], generate_symmetry_functions(["H", "O"], 3.5, 4, 2), "tanh"))
        with torch.no_grad():
            model.coefficients.normal_()
            model.element_energies.normal_()
        return model


class TestLennardJones(WaterStructures, ModelContract):
    kind = "lj"

    def make_model(self):
        return LennardJones(["H", "O"], 3.5, HO_LJ)


class TestLennardJonesMixing(TestLennardJones):
    def make_model(self):
        parameters = {"H": {"epsilon": 0.02, "sigma": 1.1}, "O": {"epsilon": 0.1, "sigma": 2.5}}
        return LennardJones(["H", "O"], 3.5, parameters, mixing="lorentz-berthelot")


class TestMorse(WaterStructures, ModelContract):
    kind = "morse"

    def make_model(self):
        return Morse(["H", "O"], 3.5, HO_MORSE, switch_on=2.5)


class TestUserPairForm(WaterStructures, ModelContract):
    kind = "pair"

    def make_model(self):
        return CustomPair(["H", "O"], 3.5, HO_BUCK, function="pair_forms:buckingham")


class TestCommittee(WaterStructures, ModelContract):
    kind = "committee"

    def make_model(self):
        members = [tiny_bpnn(seed=k) for k in range(3)]
        with torch.no_grad():
            members[1].energy_offset.fill_(-0.4)
        return Committee(members)


def test_every_model_kind_has_a_contract():
    assert set(MODELS) <= CONTRACTS, f"model kinds without a contract: {sorted(set(MODELS) - CONTRACTS)}"


class Constant(Potential):
    """A model whose energy ignores the positions: it passes invariance, ΣF = 0, finite
    differences (0 = 0) and extensivity, so only the non-degeneracy guard can catch it."""

    kind = "constant"

    def atom_energies(self, batch, vectors):
        return torch.full(batch.numbers.shape, -1.0, dtype=vectors.dtype) + 0.0 * vectors.sum()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_a_model_that_ignores_positions_fails_the_contract(dtype):
    with pytest.raises(AssertionError, match="the energy ignores the positions"):
        check_non_degenerate(Constant(["H", "O"], 3.5).to(dtype), water_cluster(5), TOLERANCES[dtype])
