"""The model contract: what every forcefit model must satisfy, as a reusable pytest class.

A test module subclasses `ModelContract`, names its `kind` and provides `make_model()`
(a float64 model with non-trivial parameters) and `structures()` (a free molecule and a
small 3-D periodic crystal, both holding the model's elements). pytest then
runs one test per property, in float64 and in float32, each with tolerances for that
precision:

    translation, rotation (cell rotated too), permutation of like atoms, lattice shift
    and wrapping; Σ F = 0 on a free cluster; forces = central differences of E; stress
    = strain derivative of E; a batch = its structures one by one; the ASE calculator's
    energies are extensive (two far copies = 2×, supercells equal per atom, with a
    non-zero offset b that must not leak); E and F continuous at the cutoff; and a
    non-degeneracy guard: the energy must depend on the positions (a constant model
    would pass every other test).

Every check is also a plain function (`check_*`) so a test can show that a broken model
fails it. `CONTRACTS` collects the kinds that have a contract, so the suite can insist
that every registered model kind has one. Needs pytest (the `test` extra).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from forcefit.calculator import Calculator
from forcefit.data import collate
from forcefit.models.forces import predict
from forcefit.structures import Structure

CONTRACTS: set[str] = set()

TOLERANCES = {  # per dtype: invariance (relative to max(1, |E|) and max(1, |F|)), finite-difference step and tolerance
    torch.float64: {"energy": 1e-10, "forces": 1e-9, "step": 1e-4, "fd": 1e-6, "fd_abs": 1e-9, "stress_step": 1e-5},
    torch.float32: {"energy": 5e-5, "forces": 2e-4, "step": 1e-2, "fd": 3e-2, "fd_abs": 2e-3, "stress_step": 1e-2},
}


def evaluate(model, structure: Structure, stress: bool = False):
    """(energy eV, forces (n_atoms, 3) eV/Å, stress (3, 3) eV/Å³ or None) as float64 NumPy."""
    p = predict(model, model.graph(structure), forces=True, stress=stress)
    return float(p.energy[0]), p.forces.double().numpy(), (p.stress[0].double().numpy() if stress else None)


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


def _same(model, structure, reference, forces_map, tol) -> None:
    e0, f0 = reference
    e, f, _ = evaluate(model, structure)
    assert abs(e - e0) <= tol["energy"] * max(1.0, abs(e0)), f"energy changed by {e - e0:.3e} eV"
    expected = forces_map(f0)
    assert np.abs(f - expected).max() <= tol["forces"] * max(1.0, np.abs(f0).max()), "forces changed"


def check_translation(model, structure, tol, rng) -> None:
    e0, f0, _ = evaluate(model, structure)
    _same(model, moved(structure, positions=structure.positions + rng.normal(size=3) * 3.7), (e0, f0), lambda f: f, tol)


def check_rotation(model, structure, tol, rng) -> None:
    e0, f0, _ = evaluate(model, structure)
    R = random_rotation(rng)
    rotated = moved(structure, positions=structure.positions @ R.T, cell=structure.cell @ R.T)
    _same(model, rotated, (e0, f0), lambda f: f @ R.T, tol)


def check_permutation(model, structure, tol, rng) -> None:
    e0, f0, _ = evaluate(model, structure)
    order = np.arange(structure.n_atoms)
    for z in np.unique(structure.numbers):
        idx = np.flatnonzero(structure.numbers == z)
        order[idx] = rng.permutation(idx)
    permuted = moved(structure, positions=structure.positions[order], numbers=structure.numbers[order])
    _same(model, permuted, (e0, f0), lambda f: f[order], tol)


def check_lattice_shift(model, crystal, tol) -> None:
    e0, f0, _ = evaluate(model, crystal)
    shifted = crystal.positions.copy()
    shifted[0] += crystal.cell[1] - 2 * crystal.cell[2]
    _same(model, moved(crystal, positions=shifted), (e0, f0), lambda f: f, tol)
    atoms = crystal.to_atoms()
    atoms.positions += 0.5 * crystal.cell.sum(axis=0)
    atoms.wrap()
    _same(model, moved(crystal, positions=atoms.positions), (e0, f0), lambda f: f, tol)


def check_forces_sum_to_zero(model, molecule, tol) -> None:
    _, f, _ = evaluate(model, molecule)
    assert np.abs(f.sum(axis=0)).max() <= tol["forces"] * max(1.0, np.abs(f).max()), "forces on a free cluster must add up to zero"


def check_finite_differences(model, structure, tol) -> None:
    h = tol["step"]
    _, f0, _ = evaluate(model, structure)
    numeric = np.zeros_like(f0)
    for i in range(structure.n_atoms):
        for c in range(3):
            plus, minus = structure.positions.copy(), structure.positions.copy()
            plus[i, c] += h
            minus[i, c] -= h
            numeric[i, c] = -(
                evaluate(model, moved(structure, positions=plus))[0] - evaluate(model, moved(structure, positions=minus))[0]
            ) / (2 * h)
    error = np.abs(numeric - f0).max()
    assert error <= tol["fd"] * np.abs(f0).max() + tol["fd_abs"], (
        f"finite-difference force error {error:.3e} (max |F| {np.abs(f0).max():.3e})"
    )


def check_stress(model, crystal, tol) -> None:
    h = tol["stress_step"]
    _, _, stress = evaluate(model, crystal, stress=True)
    volume = abs(np.linalg.det(crystal.cell))
    numeric = np.zeros((3, 3))
    for a in range(3):
        for b in range(3):
            values = []
            for sign in (1, -1):
                strain = np.eye(3)
                strain[a, b] += sign * h
                values.append(evaluate(model, moved(crystal, positions=crystal.positions @ strain.T, cell=crystal.cell @ strain.T))[0])
            numeric[a, b] = (values[0] - values[1]) / (2 * h) / volume
    numeric = 0.5 * (numeric + numeric.T)
    error = np.abs(numeric - stress).max()
    assert error <= tol["fd"] * np.abs(stress).max() + 1e-3 * tol["fd_abs"], f"stress error {error:.3e}"


def check_batch(model, structures, tol) -> None:
    graphs = [model.graph(s) for s in structures]
    batch = predict(model, collate(graphs), forces=True)
    start = 0
    for k, (s, g) in enumerate(zip(structures, graphs)):
        single = predict(model, g, forces=True)
        scale = max(1.0, abs(float(single.energy[0])))
        assert abs(float(batch.energy[k]) - float(single.energy[0])) <= tol["energy"] * scale
        assert torch.allclose(batch.forces[start : start + s.n_atoms], single.forces, atol=tol["forces"])
        start += s.n_atoms


def check_extensive(model, molecule, crystal, tol) -> None:
    """The ASE calculator's energies: two copies 50 Å apart give twice the energy (and
    per-atom energies adding up to it), supercells the same energy per atom, with an
    offset b = 0.37 eV added to the model that must reach none of them."""

    model = copy.deepcopy(model)
    with torch.no_grad():
        for part in model.members if model.has_members else [model]:
            part.energy_offset.add_(0.37)
        if model.has_members:
            model.sync_offset()
    calculator = Calculator(model)
    atoms = molecule.to_atoms()
    atoms.calc = calculator
    e1, f1 = atoms.get_potential_energy(), atoms.get_forces()
    pair = atoms + atoms.copy()
    pair.positions[len(atoms) :] += [50.0, 0.0, 0.0]
    pair.calc = calculator
    e2 = pair.get_potential_energy()
    # the copy 50 Å away has its positions rounded in the model's dtype: |F| · 50 Å · eps per atom
    rounding = np.abs(f1).sum() * 50.0 * torch.finfo(model.energy_offset.dtype).eps
    assert abs(e2 - 2 * e1) <= tol["energy"] * max(1.0, abs(e1)) + rounding, f"two copies: {e2} eV, one: {e1} eV"
    assert abs(pair.get_potential_energies().sum() - e2) <= tol["energy"] * max(1.0, abs(e2))
    assert np.abs(pair.get_forces() - np.vstack([f1, f1])).max() <= tol["forces"] * max(1.0, np.abs(f1).max())
    per_atom = []
    for repeat in ((1, 1, 1), (2, 1, 1), (2, 2, 2)):
        cell = crystal.to_atoms().repeat(repeat)
        cell.calc = calculator
        per_atom.append(cell.get_potential_energy() / len(cell))
    assert np.allclose(per_atom, per_atom[0], rtol=tol["energy"], atol=0), f"energy per atom of supercells: {per_atom}"


def check_cutoff_smoothness(model, tol) -> None:
    from ase.data import atomic_numbers

    a, b = atomic_numbers[model.elements[0]], atomic_numbers[model.elements[-1]]
    values = [evaluate(model, Structure(numbers=[a, b], positions=[[0, 0, 0], [model.cutoff + d, 0, 0]])) for d in (-1e-7, 1e-7)]
    (e_in, f_in, _), (e_out, f_out, _) = values
    assert abs(e_in - e_out) < max(1e-8, tol["energy"])
    assert np.abs(f_in - f_out).max() < max(1e-5, tol["forces"])


def check_non_degenerate(model, molecule, tol) -> None:
    """The energy depends on the positions: forces are not all zero and a distortion changes E."""
    e0, f0, _ = evaluate(model, molecule)
    distorted = molecule.positions.copy()
    distorted[0] += [0.15, -0.1, 0.1]
    e1 = evaluate(model, moved(molecule, positions=distorted))[0]
    assert np.abs(f0).max() > 1e-4, "all forces vanish: the energy ignores the positions"
    assert abs(e1 - e0) > 2 * tol["energy"] * max(1.0, abs(e0)), "a distortion leaves the energy unchanged"


class ModelContract:
    """Subclass with `kind`, `make_model()` and `structures()`; see the module docstring."""

    kind: str = ""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.kind:
            CONTRACTS.add(cls.kind)

    def make_model(self):
        raise NotImplementedError

    def structures(self) -> tuple[Structure, Structure]:
        """A free molecule and a small 3-D periodic crystal, both holding the model's elements."""
        raise NotImplementedError

    @pytest.fixture(params=[torch.float64, torch.float32], ids=["float64", "float32"])
    def setup(self, request):
        model = self.make_model().to(request.param)
        molecule, crystal = self.structures()
        return model, molecule, crystal, TOLERANCES[request.param]

    def test_translation(self, setup):
        model, molecule, crystal, tol = setup
        for s in (molecule, crystal):
            check_translation(model, s, tol, np.random.default_rng(0))

    def test_rotation(self, setup):
        model, molecule, crystal, tol = setup
        for s in (molecule, crystal):
            check_rotation(model, s, tol, np.random.default_rng(1))

    def test_permutation(self, setup):
        model, molecule, crystal, tol = setup
        for s in (molecule, crystal):
            check_permutation(model, s, tol, np.random.default_rng(2))

    def test_lattice_shift_and_wrap(self, setup):
        model, _, crystal, tol = setup
        check_lattice_shift(model, crystal, tol)

    def test_forces_sum_to_zero(self, setup):
        model, molecule, _, tol = setup
        check_forces_sum_to_zero(model, molecule, tol)

    def test_forces_are_minus_the_energy_gradient(self, setup):
        model, molecule, crystal, tol = setup
        for s in (molecule, crystal):
            check_finite_differences(model, s, tol)

    def test_stress_is_the_strain_derivative(self, setup):
        model, _, crystal, tol = setup
        check_stress(model, crystal, tol)

    def test_batch_equals_single(self, setup):
        model, molecule, crystal, tol = setup
        check_batch(model, [molecule, crystal, molecule], tol)

    def test_reported_energies_are_extensive(self, setup):
        model, molecule, crystal, tol = setup
        check_extensive(model, molecule, crystal, tol)

    def test_smooth_at_the_cutoff(self, setup):
        model, _, _, tol = setup
        check_cutoff_smoothness(model, tol)

    def test_energy_depends_on_positions(self, setup):
        model, molecule, _, tol = setup
        check_non_degenerate(model, molecule, tol)
