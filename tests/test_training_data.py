"""Training data within a memory budget (training/cache.py): the three modes agree bit
for bit, a small budget streams, and the disk cache is reused, rebuilt and refused as
it should be."""

import shutil

import numpy as np
import pytest
import torch
from rich.console import Console

from conftest import ROOT
from forcefit.config import TrainingConfig
from forcefit.data import collate
from forcefit.descriptors import SymmetryFunctions, generate_symmetry_functions
from forcefit.io import read_extxyz
from forcefit.models import BPNN, LinearModel, predict
from forcefit.training.cache import DiskGraphs, RecomputedGraphs, data_key, dense_bytes, training_data, without_jacobians
from forcefit.training.distributed import Group
from forcefit.training.loss import LossWeights
from forcefit.training.trainer import Trainer

ETHANOL = ROOT / "data" / "ethanol_gfn2xtb_500K.extxyz"
ELEMENTS = ["C", "H", "O"]


def structures(n=40):
    return read_extxyz(ETHANOL)[:n]


def model(kind=BPNN, n_radial=4):
    torch.manual_seed(0)
    descriptor = SymmetryFunctions(ELEMENTS, generate_symmetry_functions(ELEMENTS, 4.0, n_radial, 2), "tanh")
    return kind(descriptor, hidden=[8]) if kind is BPNN else kind(descriptor)


def data(m, splits, tmp_path, **options):
    config = TrainingConfig(cache_dir=str(tmp_path / "cache"), **options)
    console = Console(record=True, width=200)
    graphs = training_data(m, splits, config, console, Group())
    return graphs, console.export_text()


def trained_state(mode, tmp_path, memory_gb=None):
    m = model()
    (graphs, log) = data(m, {"train": structures()[:32], "validation": structures()[32:]}, tmp_path, cache=mode, memory_gb=memory_gb)
    m.initialise(without_jacobians(graphs["train"]))  # as run.py does: recomputed graphs skip the Jacobian here
    Trainer(
        m, graphs["train"], graphs["validation"], TrainingConfig(epochs=2, batch_size=8, learning_rate=3e-3), console=Console(quiet=True)
    ).fit()
    return m.state_dict(), graphs, log


def test_a_small_budget_streams_and_every_mode_trains_the_same_model_bit_for_bit(tmp_path):
    in_memory, memory_graphs, log = trained_state("auto", tmp_path)
    assert "training data: memory" in log and isinstance(memory_graphs["train"], list)
    budget = 0.5 * dense_bytes(model(), structures()) / 1e9
    on_disk, disk_graphs, log = trained_state("auto", tmp_path, memory_gb=budget)
    assert "training data: disk" in log and "exceed training.memory_gb" in log
    assert isinstance(disk_graphs["train"], DiskGraphs)
    recomputed, recomputed_graphs, log = trained_state("recompute", tmp_path)
    assert isinstance(recomputed_graphs["train"], RecomputedGraphs)
    assert without_jacobians(recomputed_graphs["train"])[0].jacobian is None  # the statistics pass skipped it
    for name, value in in_memory.items():
        assert torch.equal(value, on_disk[name]), name
        assert torch.equal(value, recomputed[name]), name
    for a, b, c in zip(memory_graphs["train"], disk_graphs["train"], recomputed_graphs["train"]):
        for field in ("features", "jacobian", "pair_i", "pair_shift", "ref_forces"):
            assert torch.equal(getattr(a, field), getattr(b, field)) and torch.equal(getattr(a, field), getattr(c, field)), field
    # the predictions and the gradient of the loss (what the optimiser sees) agree too
    m = model()
    m.load_state_dict(in_memory)
    for graphs in (memory_graphs, disk_graphs, recomputed_graphs):
        prediction = predict(m, collate(list(graphs["validation"][:8])), stress=False, training=True)
        (gradient,) = torch.autograd.grad(prediction.forces.pow(2).sum(), m.networks[0][0].weight)
        if graphs is memory_graphs:
            reference = (prediction.energy.detach(), prediction.forces.detach(), gradient)
        else:
            for x, y in zip(reference, (prediction.energy.detach(), prediction.forces.detach(), gradient)):
                assert torch.equal(x, y)


def test_linear_closed_form_is_the_same_from_a_stream(tmp_path):
    fits = []
    for mode in ("memory", "disk", "recompute"):
        m = model(LinearModel)
        graphs, _ = data(m, {"train": structures()}, tmp_path, cache=mode)
        m.initialise(without_jacobians(graphs["train"]))
        m.fit_ridge(graphs["train"], LossWeights(energy=1.0, forces=1.0), 1e-6)
        fits.append(m.coefficients.detach().clone())
    assert torch.equal(fits[0], fits[1]) and torch.equal(fits[0], fits[2])


def test_a_closed_form_fit_over_budget_recomputes_instead_of_writing_a_disk_cache(tmp_path):
    m = model(LinearModel)
    budget = 0.5 * dense_bytes(m, structures()) / 1e9
    graphs, log = data(m, {"train": structures()}, tmp_path, memory_gb=budget, optimizer="ridge")
    assert isinstance(graphs["train"], RecomputedGraphs) and "not written to disk" in log
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())
    graphs, log = data(m, {"train": structures()}, tmp_path, memory_gb=budget)  # an iterative fit reads them every epoch
    assert isinstance(graphs["train"], DiskGraphs)


def test_disk_cache_is_reused_rebuilt_when_data_change_and_refused_when_corrupt_or_foreign(tmp_path):
    m, train = model(), structures(16)
    graphs, log = data(m, {"train": train}, tmp_path, cache="disk")
    path = graphs["train"].path
    assert "writing the train descriptor cache" in log
    written = path.stat().st_mtime_ns
    graphs, log = data(m, {"train": train}, tmp_path, cache="disk")
    assert "writing" not in log and graphs["train"].path == path and path.stat().st_mtime_ns == written

    changed = structures(16)
    changed[3].energy += 0.1  # the data file changed: a new cache, with the new label
    graphs, log = data(m, {"train": changed}, tmp_path, cache="disk")
    assert "writing the train descriptor cache" in log and graphs["train"].path != path
    assert float(graphs["train"][3].ref_energy) == changed[3].energy

    other = model(n_radial=5)  # another descriptor set finding this file under its own name
    foreign = tmp_path / "cache" / f"{data_key(other, train)[0][:16]}-{data_key(other, train)[1][:12]}.ffc"
    shutil.copy(path, foreign)
    with pytest.raises(ValueError, match="another descriptor set"):
        data(other, {"train": train}, tmp_path, cache="disk")

    damaged = bytearray(path.read_bytes())
    damaged[200] ^= 0xFF  # one flipped byte inside the first record
    path.write_bytes(bytes(damaged))
    graphs, _ = data(m, {"train": train}, tmp_path, cache="disk")
    with pytest.raises(ValueError, match=r"corrupt descriptor cache \(record 1 fails its checksum\)"):
        graphs["train"][0]
    path.write_bytes(bytes(damaged[: len(damaged) // 2]))  # truncated
    with pytest.raises(ValueError, match=f"{path}: corrupt descriptor cache"):
        data(m, {"train": train}, tmp_path, cache="disk")


def test_views_select_without_loading(tmp_path):
    m = model()
    graphs, _ = data(m, {"train": structures(16)}, tmp_path, cache="disk")
    view = graphs["train"].view(np.array([5, 2]))
    assert len(view) == 2 and torch.equal(view[1].features, graphs["train"][2].features)


def test_training_settings_are_checked():
    for bad, message in (
        ({"cache": "ram"}, "training.cache: expected 'auto', 'memory', 'disk' or 'recompute', got 'ram'"),
        ({"device": "gpu"}, "training.device: 'gpu'"),
        ({"memory_gb": 0}, "training.memory_gb: expected greater than 0, got 0"),
    ):
        with pytest.raises(ValueError, match=message):
            TrainingConfig(**bad)


def test_one_memory_setting_bounds_the_training_cache_and_prediction(tmp_path, monkeypatch):
    """FORCEFIT_MEMORY_GB is the budget the training cache chooses by (training.memory_gb
    overrides it for a run) and the block size of a prediction; a nonsense value is refused."""
    m = model()
    monkeypatch.setenv("FORCEFIT_MEMORY_GB", "1e-6")
    _, log = data(m, {"train": structures(8)}, tmp_path)
    assert "exceed training.memory_gb = 0.00 GB" in log
    _, log = data(m, {"train": structures(8)}, tmp_path / "b", memory_gb=4.0)
    assert "fit in training.memory_gb = 4.00 GB" in log
    blocks = []
    original = m.descriptor.energies_and_pair_gradients
    monkeypatch.setattr(m.descriptor, "energies_and_pair_gradients", lambda *a: blocks.append(a[4]) or original(*a))
    batch = collate([m.graph(s, triplets=False) for s in structures(2)])
    m.initialise([m.graph(s) for s in structures(8)])
    predict(m, batch)
    assert len(blocks) == batch.numbers.shape[0]  # a budget this small: one centre atom per block
    monkeypatch.setenv("FORCEFIT_MEMORY_GB", "1")
    blocks.clear()
    predict(m, batch)
    assert blocks == [(0, batch.numbers.shape[0])]
    monkeypatch.setenv("FORCEFIT_MEMORY_GB", "-1")
    with pytest.raises(ValueError, match="FORCEFIT_MEMORY_GB=-1"):
        predict(m, batch)
