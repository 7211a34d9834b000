"""Neighbour lists agree with ASE's brute-force list, including many periodic images."""

import numpy as np
import pytest
from ase.neighborlist import primitive_neighbor_list

from forcefit.neighbors import build_neighbors, neighbor_pairs
from forcefit.structures import Structure


def as_set(i, j, shifts):
    return {(int(a), int(b), *map(int, s)) for a, b, s in zip(i, j, shifts)}


@pytest.mark.parametrize("pbc", [(True, True, True), (True, False, True), (False, False, False)])
def test_pairs_match_ase_when_cutoff_exceeds_the_cell(pbc):
    rng = np.random.default_rng(0)
    cell = np.array([[2.5, 0.0, 0.0], [0.8, 2.7, 0.0], [0.4, -0.3, 3.0]])
    positions = rng.uniform(size=(5, 3)) @ cell
    s = Structure(numbers=[14] * 5, positions=positions, cell=cell, pbc=pbc)
    cutoff = 4.1  # larger than every cell height: several images of each atom
    ours = as_set(*neighbor_pairs(s, cutoff))
    i, j, S = primitive_neighbor_list("ijS", pbc, cell, positions, cutoff, self_interaction=False)
    assert ours == as_set(i, j, S)
    if all(pbc):
        assert any(a == b for a, b, *_ in ours)  # an atom sees its own images


def test_triplets_are_unordered_neighbour_pairs_of_each_centre():
    s = Structure(numbers=[1] * 4, positions=[[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    nb = build_neighbors(s, 1.2, 1.2)
    centre = nb.pair_i[nb.triplet_p]
    assert (centre == nb.pair_i[nb.triplet_q]).all() and (nb.triplet_p < nb.triplet_q).all()
    # atom 0 has 3 neighbours within 1.2 Å (3 pairs of them); the others have 1 (none)
    assert len(nb.triplet_p) == 3 and (centre == 0).all()
