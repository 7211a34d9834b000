"""The BPNN passes the model contract, for several cutoff functions."""
import pytest

from contracts import check_contract
from conftest import tiny_bpnn, water_cell, water_cluster


@pytest.mark.parametrize("cutoff_type", ["cos", "tanh", "poly2", "exp"])
def test_bpnn_contract(cutoff_type):
    check_contract(tiny_bpnn(cutoff_type), water_cluster(5), water_cell())
