"""Symmetry functions equal a direct, loop-by-loop evaluation of n2p2's formulas."""

import math

import numpy as np
import pytest
import torch
from ase.neighborlist import neighbor_list

from conftest import tiny_functions, water_cell, water_cluster
from forcefit.data import make_graph
from forcefit.descriptors import (
    SymmetryFunctions,
    cutoff_function,
    generate_symmetry_functions,
)

SYMBOL = {1: "H", 8: "O"}


def fc_reference(r, rc, kind):
    if r >= rc:
        return 0.0
    if kind == "cos":
        return 0.5 * (math.cos(math.pi * r / rc) + 1)
    if kind == "tanh":
        return math.tanh(1 - r / rc) ** 3 / math.tanh(1) ** 3
    raise ValueError(kind)


def reference_features(structure, functions, kind):
    """Loops over neighbours exactly as the formulas read."""
    atoms = structure.to_atoms()
    rc_max = max(f.rc for f in functions)
    i_list, D_list = neighbor_list("iD", atoms, rc_max)
    out = []
    for i in range(len(atoms)):
        mine = D_list[i_list == i]
        j_sym = [SYMBOL[z] for z in atoms.numbers[neighbor_list("j", atoms, rc_max)[i_list == i]]]
        row = []
        for f in [f for f in functions if f.center == SYMBOL[atoms.numbers[i]]]:
            total = 0.0
            if f.kind == "radial":
                for d, s in zip(mine, j_sym):
                    r = np.linalg.norm(d)
                    if s == f.neighbors[0]:
                        total += math.exp(-f.eta * (r - f.rs) ** 2) * fc_reference(r, f.rc, kind)
            else:
                for a in range(len(mine)):
                    for b in range(a + 1, len(mine)):
                        if sorted((j_sym[a], j_sym[b])) != sorted(f.neighbors):
                            continue
                        rij, rik = np.linalg.norm(mine[a]), np.linalg.norm(mine[b])
                        rjk = np.linalg.norm(mine[b] - mine[a])
                        cos = mine[a] @ mine[b] / (rij * rik)
                        term = 2 ** (1 - f.zeta) * max(0.0, 1 + f.lam * cos) ** f.zeta
                        exponent = (rij - f.rs) ** 2 + (rik - f.rs) ** 2
                        cut = fc_reference(rij, f.rc, kind) * fc_reference(rik, f.rc, kind)
                        if f.kind == "narrow":
                            exponent += (rjk - f.rs) ** 2
                            cut *= fc_reference(rjk, f.rc, kind)
                        total += term * math.exp(-f.eta * exponent) * cut
            row.append(total)
        out.append(row)
    return out


@pytest.mark.parametrize("kind", ["cos", "tanh"])
@pytest.mark.parametrize("structure", [water_cluster(2), water_cell(3)], ids=["cluster", "periodic"])
def test_features_match_reference_loops(kind, structure):
    functions = tiny_functions()
    sf = SymmetryFunctions(["H", "O"], functions, kind)
    g = make_graph(structure, sf.cutoff, sf.angular_cutoff)
    species = torch.tensor([0 if z == 1 else 1 for z in structure.numbers])
    features = sf(species, g.vectors(), g.pair_i, g.pair_j, g.triplet_p, g.triplet_q).numpy()
    expected = reference_features(structure, functions, kind)
    assert any(abs(v) > 1e-3 for row in expected for v in row)
    for n, row in enumerate(expected):
        assert np.allclose(features[n, : len(row)], row, rtol=1e-12, atol=1e-14)
        assert np.all(features[n, len(row) :] == 0)


@pytest.mark.parametrize("kind", ["cos", "tanhu", "tanh", "exp", "poly1", "poly2", "poly3", "poly4"])
def test_cutoff_functions_go_smoothly_to_zero(kind):
    rc = 5.0
    r = torch.tensor([0.0, rc - 1e-4, rc, rc + 1.0], dtype=torch.float64, requires_grad=True)
    f = cutoff_function(r, rc, kind)
    values = f.detach()
    assert values[2] == 0 and values[3] == 0 and abs(float(values[1])) < 1e-3
    if kind != "tanhu":
        assert abs(float(values[0]) - 1.0) < 1e-12
    (df,) = torch.autograd.grad(f.sum(), r)
    assert abs(float(df[1])) < 1e-2  # slope vanishes at r_c


def test_inner_cutoff_holds_one_inside():
    r = torch.tensor([0.5, 1.9, 2.1], dtype=torch.float64)
    f = cutoff_function(r, 4.0, "poly2", alpha=0.5)
    assert f[0] == 1 and f[1] == 1 and f[2] < 1


def test_generator_covers_every_element_combination():
    functions = generate_symmetry_functions(["H", "C", "O"], 5.0, n_radial=4, n_angular=2)
    per_centre = {c: [f for f in functions if f.center == c] for c in "HCO"}
    # 3 neighbour elements × 4 radial + 6 element pairs × 2 η × 2 ζ × 2 λ
    assert all(len(v) == 3 * 4 + 6 * 2 * 2 * 2 for v in per_centre.values())
    assert {f.neighbors for f in per_centre["H"] if f.kind == "wide"} == {
        ("H", "H"),
        ("H", "C"),
        ("H", "O"),
        ("C", "C"),
        ("C", "O"),
        ("O", "O"),
    }


def test_shifted_angular_grid_resolves_neighbour_shells():
    functions = generate_symmetry_functions(["Mo"], 5.2, n_radial=4, n_angular=4, r_min=2.0, zetas=(1.0,), angular_grid="shifted")
    wide = [f for f in functions if f.kind == "wide"]
    assert sorted({f.rs for f in wide}) == pytest.approx([2.0, 2.8, 3.6, 4.4])
    assert all(f.eta == pytest.approx(1 / (2 * 0.8**2)) for f in wide)
    # a bcc crystal: atoms in the first and second shell switch on different windows
    from ase.build import bulk

    from forcefit.structures import Structure

    crystal = Structure.from_atoms(bulk("Mo", "bcc", a=3.16, cubic=True))
    sf = SymmetryFunctions(["Mo"], functions, "tanh")
    g = make_graph(crystal, sf.cutoff, sf.angular_cutoff)
    values = sf(torch.zeros(2, dtype=torch.long), g.vectors(), g.pair_i, g.pair_j, g.triplet_p, g.triplet_q)
    angular = values[0, 4:].reshape(4, 2)  # windows × λ
    assert torch.all(angular[:, 0] > 0) and len(set(angular[:, 0].round(decimals=6).tolist())) == 4
    with pytest.raises(ValueError, match="angular_grid"):
        generate_symmetry_functions(["Mo"], 5.2, angular_grid="shells")


def test_unknown_cutoff_and_bad_parameters_are_errors():
    with pytest.raises(ValueError, match="cutoff_type"):
        SymmetryFunctions(["H"], generate_symmetry_functions(["H"], 3.0, 2, 1), "cosine")
    with pytest.raises(ValueError, match="lambda"):
        from forcefit.descriptors import SymmetryFunction

        SymmetryFunction("wide", "H", ("H", "H"), eta=0.1, rc=3.0, lam=0.5)
