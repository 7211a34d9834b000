"""Loss, offset, trainer, checkpoints and saved models."""

import math

import numpy as np
import pytest
import torch

from conftest import ROOT, tiny_bpnn, water_cluster
from forcefit.config import TrainingConfig
from forcefit.data import collate
from forcefit.descriptors import SymmetryFunctions, generate_symmetry_functions
from forcefit.io import read_extxyz
from forcefit.models import BPNN, predict
from forcefit.models.saving import load_model, save_model
from forcefit.training.trainer import Trainer

ETHANOL = ROOT / "data" / "ethanol_gfn2xtb_500K.extxyz"


def ethanol(n=48, shift=0.0):
    structures = read_extxyz(ETHANOL)[:n]
    for s in structures:
        s.energy += shift
    return structures


def ethanol_model(structures, seed=0, dtype=torch.float64, global_offset=False):
    torch.manual_seed(seed)
    elements = ["C", "H", "O"]
    model = BPNN(SymmetryFunctions(elements, generate_symmetry_functions(elements, 4.0, 4, 2), "tanh"), hidden=[10, 10]).to(dtype)
    graphs = [model.graph(s) for s in structures]
    model.cache_descriptors(graphs)
    model.use_global_offset(global_offset)
    model.initialise(graphs)
    return model, graphs


def train(model, graphs, epochs=3, run_dir=None, resume=False, **options):
    config = TrainingConfig(epochs=epochs, batch_size=8, learning_rate=3e-3, **options)
    trainer = Trainer(model, graphs[:40], graphs[40:], config, run_dir)
    history = trainer.fit(resume=resume)
    return trainer, history


@pytest.mark.parametrize("offset", ["element", "global"])
def test_constant_shift_of_reference_energies_moves_only_the_offset(offset):
    """A constant added to every reference energy is the reference's zero: it moves the energies
    per element (by shift in total over one ethanol's composition), or b with a global offset,
    and nothing else; forces are unchanged."""
    shift = 1234.5
    a, graphs_a = ethanol_model(ethanol(), global_offset=offset == "global")
    b, graphs_b = ethanol_model(ethanol(shift=shift), global_offset=offset == "global")
    train(a, graphs_a)
    train(b, graphs_b)
    moved = "energy_offset" if offset == "global" else "atom_reference"
    difference = b.state_dict()[moved] - a.state_dict()[moved]
    if offset == "global":
        assert math.isclose(float(difference), -shift, rel_tol=1e-10)
    else:
        assert math.isclose(float(difference @ torch.tensor([2.0, 6.0, 1.0], dtype=torch.float64)), shift, rel_tol=1e-10)  # C2H6O
    state_a, state_b = a.state_dict(), b.state_dict()
    for name in state_a:
        if name != moved:
            assert torch.allclose(state_a[name], state_b[name], rtol=1e-7, atol=1e-9), name
    batch = collate(graphs_a[40:])
    fa, fb = predict(a, batch).forces, predict(b, batch).forces
    assert torch.allclose(fa, fb, atol=1e-8)
    ea, eb = predict(a, batch).energy, predict(b, batch).energy
    assert torch.allclose(eb - ea, torch.full_like(ea, 0.0 if offset == "global" else shift), rtol=0, atol=1e-8)


def test_training_lowers_the_loss_and_cached_path_equals_autograd_path():
    model, graphs = ethanol_model(ethanol())
    trainer, history = train(model, graphs, epochs=6)
    assert history[-1]["loss"] < history[0]["loss"]
    cached = predict(model, collate(graphs[:5]))
    plain = predict(model, collate([model.graph(s) for s in ethanol(5)]))
    assert torch.allclose(cached.forces, plain.forces, atol=1e-10)
    assert torch.allclose(cached.energy, plain.energy, rtol=1e-12)


def test_resume_reproduces_an_uninterrupted_run(tmp_path):
    straight, graphs = ethanol_model(ethanol())
    train(straight, graphs, epochs=4, run_dir=tmp_path / "straight")
    first, graphs = ethanol_model(ethanol())
    train(first, graphs, epochs=2, run_dir=tmp_path / "split")
    second, graphs = ethanol_model(ethanol())  # a fresh process would rebuild like this
    trainer, history = train(second, graphs, epochs=4, run_dir=tmp_path / "split", resume=True)
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    for name, value in straight.state_dict().items():
        assert torch.equal(value, second.state_dict()[name]), name


def test_lbfgs_option_reduces_the_loss():
    model, graphs = ethanol_model(ethanol(24))
    config = TrainingConfig(epochs=3, batch_size=8, optimizer="lbfgs", learning_rate=1.0)
    history = Trainer(model, graphs[:16], graphs[16:], config).fit()
    assert history[-1]["loss"] < history[0]["loss"]


def test_float32_models_train_and_predict_in_float32():
    model, graphs = ethanol_model(ethanol(24), dtype=torch.float32)
    history = Trainer(model, graphs[:16], graphs[16:], TrainingConfig(epochs=2, batch_size=8)).fit()
    assert np.isfinite(history[-1]["loss"])
    assert predict(model, collate(graphs[:2])).forces.dtype == torch.float32


def test_non_finite_loss_stops_naming_the_structures():
    model, graphs = ethanol_model(ethanol(16))
    graphs[3].ref_energy[0] = float("inf")
    names = [f"ethanol frame {n}" for n in range(16)]
    trainer = Trainer(model, graphs, [], TrainingConfig(epochs=1, batch_size=16), names=names)
    with pytest.raises(FloatingPointError, match=r"loss became inf on structure\(s\) ethanol frame 3;"):
        trainer.fit()


def test_save_load_reproduces_predictions_bit_for_bit(tmp_path):
    model = tiny_bpnn()
    save_model(model, tmp_path / "m.ffm")
    loaded = load_model(tmp_path / "m.ffm")
    graph = model.graph(water_cluster(3))
    p, q = predict(model, graph), predict(loaded, graph)
    assert torch.equal(p.energy, q.energy) and torch.equal(p.forces, q.forces)
    # the file is plain data: loadable with weights_only=True
    data = torch.load(tmp_path / "m.ffm", weights_only=True)
    assert data["format"] == "forcefit-model" and data["units"] == {"energy": "eV", "length": "Å"}


def test_loading_refuses_non_model_files(tmp_path):
    torch.save({"hello": 1}, tmp_path / "x.ffm")
    with pytest.raises(ValueError, match="not a forcefit model file"):
        load_model(tmp_path / "x.ffm")


def test_unknown_element_is_a_clear_error():
    model = tiny_bpnn()
    s = water_cluster(0)
    s.numbers[0] = 6
    with pytest.raises(ValueError, match=r"knows elements \['H', 'O'\]; the structure contains \['C'\]"):
        predict(model, model.graph(s))


def test_stage_two_switches_weights_from_the_best_model_and_resumes_exactly(tmp_path):
    options = dict(stage_two_energy_weight=1e4, stage_two_force_weight=0.0, stage_two_learning_rate=1e-4)
    straight, graphs = ethanol_model(ethanol())
    trainer, history = train(straight, graphs, epochs=3, run_dir=tmp_path / "straight", stage_two_epochs=3, **options)
    assert [h["stage"] for h in history] == [1, 1, 1, 2, 2, 2]
    assert history[3]["learning_rate"] == 1e-4
    assert trainer.weights.energy == 1e4 and trainer.weights.forces == 0.0
    # energy-only refinement lowers the training energy error left by the main stage
    assert history[-1]["train_energy_rmse"] < history[2]["train_energy_rmse"]
    # interrupted at the end of the main stage, or inside stage two; resumed in a new process
    for first_stage_two_epochs in (0, 1):
        run_dir = tmp_path / f"split{first_stage_two_epochs}"
        first, graphs = ethanol_model(ethanol())
        train(first, graphs, epochs=3, run_dir=run_dir, stage_two_epochs=first_stage_two_epochs, **options)
        second, graphs = ethanol_model(ethanol())
        _, resumed = train(second, graphs, epochs=3, run_dir=run_dir, resume=True, stage_two_epochs=3, **options)
        assert [h["epoch"] for h in resumed] == [1, 2, 3, 4, 5, 6]
        for name, value in straight.state_dict().items():
            assert torch.equal(value, second.state_dict()[name]), (first_stage_two_epochs, name)
