"""n2p2 potentials: exact reproduction of n2p2's own output, export ↔ import, errors."""

import numpy as np
import pytest
import torch
from ase import units

from conftest import n2p2_bin, shared_path, tiny_bpnn, water_cell, water_cluster
from forcefit.calculator import Calculator
from forcefit.cli import main
from forcefit.interop.n2p2 import load_potential, save_potential
from forcefit.io import read_input_data
from forcefit.models.forces import predict
from forcefit.models.saving import load_model
from test_cli import DATA

UNITS = {"length_unit": units.Bohr, "energy_unit": units.Hartree}


def n2p2_output(directory):
    energy = [float(l.split()[3]) for l in (directory / "energy.out").read_text().splitlines() if l.strip() and not l.startswith("#")]
    forces = [
        [float(x) for x in l.split()[5:8]]
        for l in (directory / "nnforces.out").read_text().splitlines()
        if l.strip() and not l.startswith("#")
    ]
    return energy[0], np.array(forces)


def test_water_model_reproduces_n2p2_to_1e_8():
    directory = shared_path("data", "n2p2", "H2O_RPBE-D3")
    model = load_potential(directory, **UNITS)
    (box,) = read_input_data(directory / "input.data", **UNITS)
    assert box.n_atoms == 1080
    p = predict(model, model.graph(box))
    energy = float(p.energy[0].detach()) / units.Hartree
    forces = p.forces.detach().numpy() * units.Bohr / units.Hartree
    ref_energy, ref_forces = n2p2_output(directory)
    assert abs(energy - ref_energy) <= 1e-8 * abs(ref_energy)
    assert np.all(np.abs(forces - ref_forces) <= 1e-8 * np.abs(ref_forces)), "every force component to 1e-8 relative"


def test_export_then_import_gives_identical_predictions(tmp_path):
    model = tiny_bpnn("poly3")
    save_potential(model, tmp_path / "nnp", length_unit=units.Bohr, energy_unit=units.Hartree)
    back = load_potential(tmp_path / "nnp", **UNITS)
    for structure in (water_cluster(4), water_cell(5)):
        p = predict(model, model.graph(structure))
        q = predict(back, back.graph(structure))
        # b is the reference's zero, not part of the potential: compare Σ E_i and forces
        assert torch.allclose(p.atom_energies, q.atom_energies, rtol=1e-13, atol=1e-12)
        assert torch.allclose(p.forces, q.forces, rtol=1e-12, atol=1e-13)


def test_published_model_survives_export_and_import(tmp_path):
    directory = shared_path("data", "n2p2", "H2O_RPBE-D3")
    model = load_potential(directory, **UNITS)
    save_potential(model, tmp_path / "again", **UNITS)
    again = load_potential(tmp_path / "again", **UNITS)
    structure = water_cell(6)
    p = predict(model, model.graph(structure))
    q = predict(again, again.graph(structure))
    assert torch.allclose(p.energy, q.energy, rtol=1e-14) and torch.allclose(p.forces, q.forces, atol=1e-14)


def test_cli_import_and_export(tmp_path):
    directory = shared_path("data", "n2p2", "H2O_RPBE-D3")
    assert (
        main(["import-n2p2", str(directory), "-o", str(tmp_path / "water.ffm"), "--length-unit", "bohr", "--energy-unit", "hartree"]) == 0
    )
    model = load_model(tmp_path / "water.ffm")
    assert model.elements == ["H", "O"] and np.isclose(model.cutoff, 12.0 * units.Bohr)
    assert (
        main(["export-n2p2", str(tmp_path / "water.ffm"), str(tmp_path / "out"), "--length-unit", "bohr", "--energy-unit", "hartree"]) == 0
    )
    assert {p.name for p in (tmp_path / "out").iterdir()} == {
        "input.nn",
        "scaling.data",
        "weights.001.data",
        "weights.008.data",
        "hdnnp.lammps",
    }


def test_unsupported_keyword_is_named(tmp_path):
    model = tiny_bpnn()
    save_potential(model, tmp_path)
    text = (tmp_path / "input.nn").read_text()
    for extra in ("normalize_nodes", "  ewald_prec 1e-6 ! long-range"):
        (tmp_path / "input.nn").write_text(text + extra + "\n")
        keyword = extra.split()[0]
        with pytest.raises(ValueError, match=rf"input.nn line \d+: keyword '{keyword}' is not supported"):
            load_potential(tmp_path, length_unit=1.0, energy_unit=1.0)


def test_comments_and_training_keywords_are_tolerated(tmp_path):
    model = tiny_bpnn()
    save_potential(model, tmp_path)
    text = (tmp_path / "input.nn").read_text()
    (tmp_path / "input.nn").write_text(
        "# header\n\n   epochs 10   # training only\nkalman_type 0\n" + text.replace("elements", "elements   ", 1)
    )
    back = load_potential(tmp_path, length_unit=1.0, energy_unit=1.0)
    assert back.elements == ["H", "O"]


def test_models_n2p2_cannot_express_are_refused(tmp_path):
    from forcefit.models import BPNN

    model = BPNN(tiny_bpnn().descriptor, hidden=[4], activation="silu")
    with pytest.raises(ValueError, match=r"cannot be expressed in n2p2: activation 'silu'"):
        save_potential(model, tmp_path)


def test_extrapolation_reported_per_atom_and_per_function():
    directory = shared_path("data", "n2p2", "H2O_RPBE-D3")
    model = load_potential(directory, **UNITS)
    atoms = water_cluster(0).to_atoms()  # a gas-phase cluster is far from liquid water
    atoms.calc = Calculator(model)
    atoms.get_potential_energy()
    per_function = atoms.calc.results["extrapolation_per_function"]
    assert atoms.calc.results["extrapolation"] == per_function.sum() > 0
    assert atoms.calc.results["extrapolating_atoms"].shape == (len(atoms),)


def test_n2p2_training_data_reads():
    path = shared_path("data", "n2p2", "H2O_RPBE-D3_train", "input.data")
    structures = read_input_data(path, **UNITS)
    assert len(structures) > 1 and all(s.pbc.all() for s in structures)
    assert all((s.numbers == 1).sum() == 2 * (s.numbers == 8).sum() for s in structures)
    assert all(np.isfinite(s.energy) for s in structures)


def _n2p2_predict(directory, structures) -> tuple[np.ndarray, list[np.ndarray]]:
    """Energies and forces that n2p2's own nnp-predict computes for `structures` (file units eV, Å)."""
    import subprocess

    from forcefit.io import write_input_data

    energies, forces = [], []
    for structure in structures:
        write_input_data(directory / "input.data", [structure], length_unit=1.0, energy_unit=1.0)
        done = subprocess.run([str(n2p2_bin() / "nnp-predict"), "0"], cwd=directory, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        energy, force = n2p2_output(directory)
        energies.append(energy)
        forces.append(force)
    return np.array(energies), forces


def test_exported_trained_model_runs_in_n2p2(tmp_path, capsys):
    """A freshly trained three-element model (ethanol: C, H, O), exported, gives in n2p2's
    nnp-predict forcefit's forces and energies. With one O per molecule the O–O functions
    are constant on the training set (min = max in scaling.data), which once made n2p2
    return NaN; the check includes two molecules close together, where they are not.
    n2p2 cannot hold the hand-over at short range, so this model is trained without it
    (`core_repulsion: none`); a default model's export says what n2p2 lacks."""
    import yaml

    from forcefit.io import read_structures
    from test_cli import tiny_config

    config = yaml.safe_load(tiny_config(tmp_path, epochs=3).read_text())
    assert main(["train", str(tiny_config(tmp_path, epochs=3)), "--output", str(tmp_path / "default")]) == 0
    capsys.readouterr()
    assert main(["export-n2p2", str(tmp_path / "default" / "model.ffm"), str(tmp_path / "default_nnp")]) == 0
    said = capsys.readouterr().out
    assert "n2p2 has no inner cutoff" in said and "hdnnp.lammps" in said, said
    lammps_lines = (tmp_path / "default_nnp" / "hdnnp.lammps").read_text()
    assert "pair_style hybrid/overlay hdnnp" in lammps_lines and "pair_coeff 1 1 zbl 1 1.0 1.0" in lammps_lines, lammps_lines
    assert "n2p2 has no inner cutoff" in (tmp_path / "default_nnp" / "input.nn").read_text()
    config["model"]["core_repulsion"] = "none"
    (tmp_path / "exact.yaml").write_text(yaml.safe_dump(config))
    assert main(["train", str(tmp_path / "exact.yaml"), "--output", str(tmp_path / "run")]) == 0
    assert main(["export-n2p2", str(tmp_path / "run" / "model.ffm"), str(tmp_path / "nnp")]) == 0
    model = load_model(tmp_path / "run" / "model.ffm")
    assert model.elements == ["H", "C", "O"]
    molecules = read_structures(DATA)[:3]
    dimer = molecules[0].to_atoms() + molecules[1].to_atoms()
    dimer.positions[len(molecules[0].numbers) :] += [3.5, 0.0, 0.0]  # the O–O functions see the other oxygen
    from forcefit.structures import Structure

    structures = molecules + [Structure.from_atoms(dimer)]
    n2p2_energies, n2p2_forces = _n2p2_predict(tmp_path / "nnp", structures)
    for structure, energy, forces in zip(structures, n2p2_energies, n2p2_forces):
        p = predict(model, model.graph(structure))
        assert np.all(np.isfinite(forces)) and np.isfinite(energy)
        assert abs(energy - float(p.energy[0])) <= 1e-10 * abs(energy)
        assert np.abs(forces - p.forces.numpy()).max() <= 1e-10 * np.abs(forces).max()
