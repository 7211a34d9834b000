"""The contract every forcefit model passes (physics, not coverage).

`check_contract(model, molecule, crystal)` asserts, in float64:
invariance of E (and covariance of F) under translation, rotation, permutation of
like atoms, lattice-vector shifts and wrapping; Σ F = 0 for a free cluster;
forces = central finite differences of E; stress = finite-difference strain
derivative; a batch gives what single structures give; two copies far apart give
twice the energy and supercells the same energy per atom, as the ASE calculator
reports them; E and F are continuous as a neighbour crosses the cutoff.
"""
from __future__ import annotations

import numpy as np
import torch

from forcefit.data import collate
from forcefit.models.forces import predict
from forcefit.structures import Structure


def evaluate(model, structure: Structure, stress: bool = False):
    graph = model.graph(structure)
    p = predict(model, graph, forces=True, stress=stress)
    e = float(p.energy[0].detach())
    f = p.forces.detach().numpy()
    s = p.stress[0].detach().numpy() if stress else None
    return e, f, s


def moved(structure: Structure, positions=None, cell=None, numbers=None) -> Structure:
    return Structure(
        numbers=structure.numbers if numbers is None else numbers,
        positions=structure.positions if positions is None else positions,
        cell=structure.cell if cell is None else cell,
        pbc=structure.pbc,
    )


def random_rotation(rng) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return q


def check_invariances(model, structure: Structure, rng) -> None:
    e0, f0, _ = evaluate(model, structure)
    scale = 1e-10 * max(1.0, abs(e0))
    # translation
    e, f, _ = evaluate(model, moved(structure, positions=structure.positions + rng.normal(size=3) * 3.7))
    assert abs(e - e0) < scale and np.allclose(f, f0, atol=1e-9)
    # rotation (cell rotated with the atoms)
    R = random_rotation(rng)
    e, f, _ = evaluate(model, moved(structure, positions=structure.positions @ R.T, cell=structure.cell @ R.T))
    assert abs(e - e0) < scale and np.allclose(f, f0 @ R.T, atol=1e-9)
    # permutation of like atoms
    order = np.arange(structure.n_atoms)
    for z in np.unique(structure.numbers):
        idx = np.flatnonzero(structure.numbers == z)
        order[idx] = rng.permutation(idx)
    e, f, _ = evaluate(model, moved(structure, positions=structure.positions[order], numbers=structure.numbers[order]))
    assert abs(e - e0) < scale and np.allclose(f, f0[order], atol=1e-9)
    if structure.pbc.all():
        # one atom shifted by a lattice vector, then everything wrapped into the cell
        shifted = structure.positions.copy()
        shifted[0] += structure.cell[1] - 2 * structure.cell[2]
        e, f, _ = evaluate(model, moved(structure, positions=shifted))
        assert abs(e - e0) < scale and np.allclose(f, f0, atol=1e-9)
        atoms = structure.to_atoms()
        atoms.positions += 0.5 * structure.cell.sum(axis=0)
        atoms.wrap()
        e, f, _ = evaluate(model, moved(structure, positions=atoms.positions))
        assert abs(e - e0) < scale and np.allclose(f, f0, atol=1e-9)


def check_finite_differences(model, structure: Structure, h: float = 1e-4) -> None:
    e0, f0, _ = evaluate(model, structure)
    numeric = np.zeros_like(f0)
    for i in range(structure.n_atoms):
        for c in range(3):
            plus, minus = structure.positions.copy(), structure.positions.copy()
            plus[i, c] += h
            minus[i, c] -= h
            numeric[i, c] = -(evaluate(model, moved(structure, positions=plus))[0] - evaluate(model, moved(structure, positions=minus))[0]) / (2 * h)
    error = np.abs(numeric - f0).max()
    assert error <= 1e-6 * np.abs(f0).max() + 1e-9, f"finite-difference force error {error:.3e} (max |F| {np.abs(f0).max():.3e})"


def check_stress(model, structure: Structure, h: float = 1e-5) -> None:
    _, _, stress = evaluate(model, structure, stress=True)
    volume = abs(np.linalg.det(structure.cell))
    numeric = np.zeros((3, 3))
    for a in range(3):
        for b in range(3):
            values = []
            for sign in (1, -1):
                strain = np.eye(3)
                strain[a, b] += sign * h
                values.append(evaluate(model, moved(structure, positions=structure.positions @ strain.T, cell=structure.cell @ strain.T))[0])
            numeric[a, b] = (values[0] - values[1]) / (2 * h) / volume
    numeric = 0.5 * (numeric + numeric.T)
    error = np.abs(numeric - stress).max()
    assert error <= 1e-6 * np.abs(stress).max() + 1e-10, f"stress error {error:.3e}"


def check_batch(model, structures: list[Structure]) -> None:
    graphs = [model.graph(s) for s in structures]
    batch = predict(model, collate(graphs), forces=True)
    start = 0
    for k, (s, g) in enumerate(zip(structures, graphs)):
        single = predict(model, g, forces=True)
        n = s.n_atoms
        assert torch.allclose(batch.energy[k], single.energy[0], rtol=1e-12, atol=1e-10)
        assert torch.allclose(batch.forces[start : start + n], single.forces, atol=1e-10)
        start += n


def check_extensive(model, molecule: Structure, crystal: Structure | None) -> None:
    """What a user reads from the ASE calculator is extensive: two copies of a molecule
    50 Å apart have twice its energy (and per-atom energies that add up), and
    supercells of a crystal have the same energy per atom (1e-10 relative)."""
    import copy

    from forcefit.calculator import Calculator

    model = copy.deepcopy(model)  # with a clearly non-zero offset b, which must not reach the user
    with torch.no_grad():
        for part in getattr(model, "members", [model]):
            part.energy_offset.add_(0.37)
        if hasattr(model, "sync_offset"):
            model.sync_offset()
    calculator = Calculator(model)
    atoms = molecule.to_atoms()
    atoms.calc = calculator
    e1, f1 = atoms.get_potential_energy(), atoms.get_forces()
    pair = atoms + atoms.copy()
    pair.positions[len(atoms):] += [50.0, 0.0, 0.0]
    pair.calc = calculator
    e2 = pair.get_potential_energy()
    assert abs(e2 - 2 * e1) <= 1e-10 * max(1.0, abs(e1)), f"two copies: {e2} eV, one: {e1} eV"
    assert abs(pair.get_potential_energies().sum() - e2) <= 1e-10 * max(1.0, abs(e2))
    assert np.allclose(pair.get_forces(), np.vstack([f1, f1]), atol=1e-10)
    if crystal is not None:
        per_atom = []
        for repeat in ((1, 1, 1), (2, 1, 1), (2, 2, 2)):
            cell = crystal.to_atoms().repeat(repeat)
            cell.calc = calculator
            per_atom.append(cell.get_potential_energy() / len(cell))
        assert np.allclose(per_atom, per_atom[0], rtol=1e-10, atol=0), f"energy per atom of supercells: {per_atom}"


def check_cutoff_smoothness(model, element_a: str, element_b: str) -> None:
    from ase.data import atomic_numbers

    rc = model.cutoff
    values = []
    for r in (rc - 1e-7, rc + 1e-7):
        dimer = Structure(numbers=[atomic_numbers[element_a], atomic_numbers[element_b]], positions=[[0, 0, 0], [r, 0, 0]])
        values.append(evaluate(model, dimer))
    (e_in, f_in, _), (e_out, f_out, _) = values
    assert abs(e_in - e_out) < 1e-8
    assert np.abs(f_in - f_out).max() < 1e-5


def check_contract(model, molecule: Structure, crystal: Structure | None, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    check_invariances(model, molecule, rng)
    _, f, _ = evaluate(model, molecule)
    assert np.abs(f.sum(axis=0)).max() < 1e-10, "forces on a free cluster must add up to zero"
    check_finite_differences(model, molecule)
    check_extensive(model, molecule, crystal)
    check_cutoff_smoothness(model, model.elements[0], model.elements[-1])
    if crystal is not None:
        check_invariances(model, crystal, rng)
        check_finite_differences(model, crystal)
        check_stress(model, crystal)
        check_batch(model, [molecule, crystal, molecule])
