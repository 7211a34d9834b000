"""The ASE calculator runs the training code path and works with ASE dynamics."""

import numpy as np
import pytest
import torch
from ase import units
from ase.md.verlet import VelocityVerlet
from ase.optimize import BFGS

from conftest import tiny_bpnn, water_cell, water_cluster
from forcefit.calculator import Calculator
from forcefit.descriptors.engine import Engine
from forcefit.models.forces import predict
from forcefit.models.saving import save_model
from forcefit.workflows.md import energy_drift


def test_results_equal_the_training_path_and_energies_add_up():
    model = tiny_bpnn()
    structure = water_cell(2)
    atoms = structure.to_atoms()
    atoms.calc = Calculator(model)
    p = predict(model, model.graph(structure), stress=True)
    assert atoms.get_potential_energy() == float(p.energy[0])
    assert np.array_equal(atoms.get_forces(), p.forces.detach().numpy())
    stress = p.stress[0].detach().numpy()
    assert np.allclose(atoms.get_stress(), stress[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]], rtol=1e-14)
    assert np.isclose(atoms.get_potential_energies().sum(), atoms.get_potential_energy(), rtol=1e-13)
    assert atoms.calc.get_property("free_energy") == atoms.get_potential_energy()


def test_load_from_file_and_run_ase_md_and_relaxation(tmp_path):
    save_model(tiny_bpnn(), tmp_path / "m.ffm")
    atoms = water_cluster(1).to_atoms()
    atoms.calc = Calculator.load(tmp_path / "m.ffm")
    atoms.set_velocities(np.random.default_rng(0).normal(scale=0.01, size=(len(atoms), 3)))
    energies = []
    dyn = VelocityVerlet(atoms, 0.1 * units.fs)
    dyn.attach(lambda: energies.append(atoms.get_total_energy()))
    dyn.run(50)
    assert np.ptp(energies) < 1e-4 * max(1.0, abs(np.mean(energies)))
    with pytest.raises(ValueError, match=r"atoms \d+ and \d+ \(counted from 1\) are 0.0\d+ Å apart"):
        BFGS(atoms, logfile=None).run(fmax=0.05, steps=200)  # this random toy model's minimum has overlapping atoms
    atoms.calc = Calculator.load(tmp_path / "m.ffm", min_distance=0.0)  # the check can be switched off
    opt = BFGS(atoms, logfile=None)
    opt.run(fmax=0.05, steps=200)
    assert np.abs(atoms.get_forces()).max() < 0.05


def test_extrapolation_is_counted_not_raised():
    model = tiny_bpnn()
    inside = water_cluster(0).to_atoms()  # one of the structures the scaling was fitted on
    inside.calc = Calculator(model)
    inside.get_potential_energy()
    assert inside.calc.results["extrapolation"] == 0
    squeezed = inside.copy()
    squeezed.positions *= 0.6
    squeezed.calc = Calculator(model)
    squeezed.get_potential_energy()
    assert squeezed.calc.results["extrapolation"] > 0
    assert squeezed.calc.results["extrapolating_atoms"].any()


def test_results_are_recomputed_when_and_only_when_what_the_model_reads_changes():
    """positions, numbers, cell and pbc invalidate the results; charges and magnetic moments,
    which no model reads, do not."""
    atoms = water_cell().to_atoms()
    atoms.calc = Calculator(tiny_bpnn())
    energy = atoms.get_potential_energy()
    atoms.get_forces()
    atoms.set_initial_charges(np.ones(len(atoms)))
    atoms.set_initial_magnetic_moments(np.ones(len(atoms)))
    assert not atoms.calc.calculation_required(atoms, ["energy", "forces"])
    for change in (
        lambda a: a.positions.__setitem__((0, 0), a.positions[0, 0] + 1e-3),
        lambda a: a.set_cell(a.cell.array * 1.001, scale_atoms=False),
        lambda a: a.set_pbc(False),
        lambda a: a.set_atomic_numbers([1 if z == 8 else 8 for z in a.numbers]),
    ):
        change(atoms)
        assert atoms.calc.calculation_required(atoms, ["energy"])
        new = atoms.get_potential_energy()
        assert new != energy and not atoms.calc.calculation_required(atoms, ["energy"])
        energy = new


def test_outside_range_is_per_element_for_one_element_or_many():
    """The training range each atom is compared with is its own element's, whether the atoms
    are of one element (one row for all) or mixed."""
    from forcefit.descriptors import FeatureScaling

    g = torch.Generator().manual_seed(0)
    scaling = FeatureScaling(2, 4)
    low = torch.rand((2, 4), generator=g, dtype=torch.float64)
    scaling.set_statistics(low, low + 1.0, low + 0.5, torch.ones((2, 4), dtype=torch.float64))
    features = torch.rand((6, 4), generator=g, dtype=torch.float64) * 2.0
    for species in (torch.zeros(6, dtype=torch.long), torch.ones(6, dtype=torch.long), torch.tensor([0, 1, 1, 0, 1, 0])):
        expected = torch.stack([(f < low[e]) | (f > low[e] + 1.0) for f, e in zip(features, species)])
        outside = scaling.outside_range(features, species)
        assert torch.equal(outside, expected) and 0 < int(outside.sum()) < outside.numel()


def test_energy_drift_of_a_known_trajectory():
    t = np.linspace(0.0, 2.0, 101)  # ps
    total = 5.0 + 0.003 * 10 * t  # 10 atoms drifting 3 meV/atom/ps
    assert np.isclose(energy_drift(t, total, 10), 3.0)


def test_the_calculator_leaves_the_callers_model_as_it_was():
    model = tiny_bpnn().train()
    trainable = [p.requires_grad for p in model.parameters()]
    atoms = water_cluster(2).to_atoms()
    atoms.calc = Calculator(model)
    atoms.get_forces()
    assert model.training and [p.requires_grad for p in model.parameters()] == trainable
    assert all(p.grad is None for p in model.parameters()), "no gradient with respect to the weights was accumulated"


def test_chunked_evaluation_equals_one_pass():
    """Prediction runs over chunks of centre atoms sized by a memory budget; an atom's
    descriptors depend only on pairs and triplets centred on it, so any chunking gives the
    one-pass numbers: the descriptors bit for bit (the engine loops over centres either
    way), energies and forces to rounding (the networks' matrix products see other row
    counts); repeated calls with one chunking are bit-identical."""
    from forcefit.data import collate
    from forcefit.models.forces import centre_chunks

    model = tiny_bpnn()
    batch = collate([model.graph(s) for s in (water_cluster(1), water_cell(2), water_cluster(3, n_molecules=4))])
    whole = predict(model, batch, stress=True, memory_gb=1e3)
    assert len(centre_chunks(batch, 1.0, 1e3)) == 1
    for budget in (1e-9, 3e-6):  # one atom per chunk; a few atoms per chunk
        assert len(centre_chunks(batch, 1000.0, budget)) > 1
        part = predict(model, batch, stress=True, memory_gb=budget)
        assert torch.equal(part.features, whole.features)
        for name in ("energy", "atom_energies", "forces"):
            assert torch.allclose(getattr(part, name), getattr(whole, name), rtol=1e-13, atol=1e-15), name
        assert torch.allclose(part.stress[1], whole.stress[1], rtol=1e-13, atol=1e-17)
    again = predict(model, batch, stress=True, memory_gb=3e-6)
    assert torch.equal(again.forces, predict(model, batch, stress=True, memory_gb=3e-6).forces)


def test_engine_prediction_equals_the_autograd_path():
    """On the CPU predictions come from the compiled engine (features, Jacobian, g_p = w · J);
    on other devices from autograd through the torch formulas, with triplets stored or built
    per chunk of centre atoms. Both give the same energies, forces and stress, and so does
    the calculator."""
    from forcefit.models.forces import _descriptor_energies_autograd, assemble

    model = tiny_bpnn("tanh")
    cell = water_cell(4)
    engine = predict(model, model.graph(cell, triplets=False), stress=True, memory_gb=1e3)
    for graph in (model.graph(cell), model.graph(cell, triplets=False)):
        for budget in (1e3, 1e-9):
            batch = graph.to(torch.float64)
            vectors = batch.vectors()
            energies, features, gradients = _descriptor_energies_autograd(model, batch, vectors, True, budget)
            forces, stress = assemble(batch, vectors, gradients, stress=True)
            assert torch.allclose(features, engine.features, rtol=1e-13, atol=1e-15)
            assert torch.allclose(energies, engine.atom_energies, rtol=1e-13, atol=1e-13)
            assert torch.allclose(forces, engine.forces, rtol=1e-12, atol=1e-13)
            assert torch.allclose(stress, engine.stress, rtol=1e-12, atol=1e-14)
    atoms = cell.to_atoms()
    atoms.calc = Calculator(model)
    assert np.allclose(atoms.get_forces(), engine.forces.numpy(), rtol=1e-13, atol=1e-15)
    assert float(engine.forces.abs().max()) > 1e-3


def test_one_evaluation_per_md_step(monkeypatch):
    """ASE asks for forces, energy and stress one after the other; a periodic cell gets all of
    them from one pass of the descriptor engine (stress from the same pair gradients)."""
    model = tiny_bpnn()
    calls = []
    original = Engine.run
    monkeypatch.setattr(Engine, "run", lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    cell = water_cell(2).to_atoms()
    cell.calc = Calculator(model, min_distance=0.0)
    cell.get_forces(), cell.get_potential_energy(), cell.get_stress()
    assert len(calls) == 1


def test_engine_memory_per_atom_does_not_grow_with_the_system():
    """Prediction never holds a Jacobian of the system: the memory it allocates (NumPy arrays,
    seen by tracemalloc: the engine's per-block outputs plus the O(N) results) per atom does
    not grow from a cell to a 27 times larger copy of it, and stays below half of what every
    pair's Jacobian would take."""
    import tracemalloc

    from forcefit.structures import Structure

    model = tiny_bpnn("tanh")
    cell = water_cell(4)
    peaks = {}
    for repeat in (2, 6):
        structure = Structure.from_atoms(cell.to_atoms().repeat((repeat,) * 3))
        graph = model.graph(structure, triplets=False)
        predict(model, graph, stress=True, memory_gb=1e-3)  # warm-up
        tracemalloc.start()
        predict(model, graph, stress=True, memory_gb=1e-3)
        peaks[repeat] = tracemalloc.get_traced_memory()[1] / structure.n_atoms, graph.pair_i.shape[0]
        tracemalloc.stop()
    (small, _), (large, pairs) = peaks[2], peaks[6]
    assert large < 1.5 * small, peaks
    whole_jacobian = pairs * model.descriptor.n_features * 3 * 8
    assert large * 6**3 * cell.n_atoms < 0.5 * whole_jacobian, peaks


def test_device_option_evaluates_a_copy_and_gives_the_same_numbers():
    """`Calculator(model, device=…)` with the device the model is already on keeps the caller's
    model (no copy) and gives the plain calculator's numbers. The copy to another device is
    not exercised: there is no GPU here."""
    model = tiny_bpnn()
    atoms = water_cell(2).to_atoms()
    atoms.calc = Calculator(model)
    forces, stress = atoms.get_forces(), atoms.get_stress()
    moved = Calculator(model, device=torch.device("cpu"))
    assert moved.model is model  # already there: nothing copied
    other = water_cell(2).to_atoms()
    other.calc = moved
    assert np.array_equal(other.get_forces(), forces) and np.array_equal(other.get_stress(), stress)


def test_calculator_finds_close_atoms_in_its_own_pairs_as_the_readers_do():
    """The calculator checks the minimum distance on the pairs of its neighbour graph (no
    second neighbour search per step); the message is the readers' one, pair count included."""
    from forcefit.structures import check_min_distance

    cell = water_cell(2)
    cell.positions[4] = cell.positions[1] + [0.03, 0.0, 0.04]  # an H 0.05 Å from another H
    with pytest.raises(ValueError) as readers:
        check_min_distance(cell)
    atoms = cell.to_atoms()
    atoms.calc = Calculator(tiny_bpnn())
    with pytest.raises(ValueError) as calculator:
        atoms.get_forces()
    assert "are 0.05 Å apart" in str(readers.value) and "(1 such pairs)" in str(readers.value)
    assert str(calculator.value) == str(readers.value)
