"""Where the data stop, a trained model hands over to physics: its descriptors fade pairs closer
than the training data's shortest distance (the inner switch) and the ZBL repulsion takes over,
so dimers rise monotonically towards short range and a relaxation from a 0.5 Å contact pulls
the atoms apart instead of together."""

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk
from ase.data import atomic_numbers

from conftest import ROOT, shared_path
from forcefit.calculator import Calculator
from forcefit.config import Config, DataConfig, TrainingConfig, model_settings
from forcefit.data import collate
from forcefit.descriptors.cutoff import INNER_END, INNER_START, inner_switch
from forcefit.io import read_extxyz
from forcefit.models.forces import predict
from forcefit.run import train_from_config
from forcefit.settings import ModelSettings
from forcefit.structures import Structure
from forcefit.workflows.properties import relax

ETHANOL = str(ROOT / "data" / "ethanol_gfn2xtb_500K.extxyz")
SMALL_ACE = {"n_radial": 4, "l_max": 3, "n_radial_4": 2, "l_max_4": 1}


def trained(tmp_path, name: str, data: DataConfig, model: ModelSettings, training: TrainingConfig):
    model_, _ = train_from_config(Config(data=data, model=model, training=training, output=str(tmp_path / name)))
    return model_


@pytest.fixture(scope="module")
def molecule_models(tmp_path_factory):
    """A linear ACE and a BPNN on 60 ethanol frames, trained once for the module's tests."""
    tmp_path = tmp_path_factory.mktemp("molecule")
    data = DataConfig(train=ETHANOL, max_structures=60, split=[0.8, 0.2, 0.0])
    return {
        "linear ACE": trained(
            tmp_path,
            "ace",
            data,
            model_settings(kind="linear", descriptor="ace", cutoff=4.0, r_min=0.0, ace=SMALL_ACE),
            TrainingConfig(optimizer="ridge", ridge=1e-6, energy_weight=1000.0),
        ),
        "BPNN": trained(
            tmp_path,
            "bpnn",
            data,
            model_settings(kind="bpnn", cutoff=4.0, n_radial=5, n_angular=2, hidden=[16, 16]),
            TrainingConfig(epochs=5, batch_size=8, learning_rate=3e-3),
        ),
    }


def dimer_energies(model, a: str, b: str, distances) -> np.ndarray:
    """Energies of the a–b dimer at each distance, in one batch (the calculator's code path;
    the model contract holds a batch equal to its structures one by one)."""
    dimers = [Structure(numbers=[atomic_numbers[a], atomic_numbers[b]], positions=[[0, 0, 0], [r, 0, 0]]) for r in distances]
    return predict(model, collate([model.graph(d) for d in dimers]), forces=False).energy.numpy()


def check_dimers(model) -> None:
    """For every element pair: from where the hand-over is complete (0.75 × the training data's
    shortest distance of the pair, below which the learnt part no longer sees the pair) down to
    0.3 Å, the energy rises at every step."""
    for x, a in enumerate(model.elements):
        for y, b in enumerate(model.elements[x:], start=x):
            start = INNER_END * float(model.core_repulsion.outer[x, y])
            distances = np.linspace(start, 0.3, 120)
            energies = dimer_energies(model, a, b, distances)
            rises = np.diff(energies)
            assert (rises > 0).all(), f"{a}–{b}: falls at r = {distances[1:][rises <= 0]} Å (from {start:.3f} Å)"


def test_molecule_dimers_rise_to_short_range(molecule_models):
    for name, model in molecule_models.items():
        assert model.core_repulsion is not None, f"{name}: on by default"
        check_dimers(model)


def test_crystal_dimer_and_a_contact_that_relaxes_apart(tmp_path):
    """mlearn Si with linear ACE (the crystal recipe's family): the dimer rises below the data's
    1.8 Å, and an extra atom put 0.5 Å from another in a diamond cell is pushed out to a
    distance the data hold (it was pulled to 0.09 Å, an error blamed on the input file)."""
    model = trained(
        tmp_path,
        "si",
        DataConfig(train=str(shared_path("data", "mlearn", "Si_train.extxyz")), split=[1.0, 0.0, 0.0]),
        model_settings(kind="linear", descriptor="ace", cutoff=5.0, r_min=1.5, ace={**SMALL_ACE, "n_radial": 6}),
        TrainingConfig(optimizer="ridge", ridge=1e-6, energy_weight=1000.0),
    )
    check_dimers(model)
    shortest = float(model.core_repulsion.outer[0, 0])
    cell = bulk("Si", "diamond", a=5.43, cubic=True)
    cell += Atoms("Si", positions=[cell.positions[0] + [0.5, 0.0, 0.0]])
    relaxed = relax(cell, Calculator(model), fmax=0.05, steps=400)
    distances = relaxed.get_all_distances(mic=True)[np.triu_indices(len(relaxed), 1)]
    assert distances.min() > 0.9 * shortest, f"closest pair {distances.min():.3f} Å after relaxing (data from {shortest:.3f} Å)"


def test_relax_separates_a_contact_in_a_molecule(molecule_models):
    model = molecule_models["linear ACE"]
    frame = read_extxyz(ETHANOL)[0].to_atoms()
    hydrogen = int(np.nonzero(frame.numbers == 1)[0][0])
    carbon = int(np.nonzero(frame.numbers == 6)[0][0])
    frame.positions[hydrogen] = frame.positions[carbon] + [0.5, 0.0, 0.0]  # an H 0.5 Å from a C
    relaxed = relax(frame, Calculator(model), fmax=0.05, steps=400)
    assert relaxed.get_distance(hydrogen, carbon) > 0.9 * float(model.core_repulsion.outer[0, 1])


def test_inner_switch_is_smooth_and_complete():
    """s = 1 from 0.97 r_in up, 0 at and below 0.75 r_in, with zero slope and curvature at both ends."""
    inner = torch.tensor(1.2, dtype=torch.float64)
    r = torch.tensor([0.5, 1.2 * INNER_END, 1.2 * INNER_START, 2.0], dtype=torch.float64, requires_grad=True)
    s = inner_switch(r, inner)
    (slope,) = torch.autograd.grad(s.sum(), r, create_graph=True)
    (curvature,) = torch.autograd.grad(slope.sum(), r)
    assert s.tolist() == pytest.approx([0.0, 0.0, 1.0, 1.0], abs=1e-15)
    assert slope.abs().max() < 1e-9 and curvature.abs().max() < 1e-6
    middle = inner_switch(torch.tensor(0.6 * (INNER_START + INNER_END), dtype=torch.float64), inner)
    assert float(middle) == pytest.approx(0.5)
