"""Property workflows measure known physics: a Morse dimer's frequency, EMT copper."""

import numpy as np
from ase import units
from ase.build import bulk
from ase.calculators.emt import EMT

from forcefit.calculator import Calculator
from forcefit.models import Morse
from forcefit.structures import Structure
from forcefit.workflows.properties import (
    default_supercell,
    elastic_constants,
    equation_of_state,
    phonon_frequencies,
    relax,
    vibrational_frequencies,
)


def test_morse_dimer_frequency_is_analytic():
    D, alpha, r0 = 9.9, 2.7, 1.1  # eV, 1/Å, Å
    model = Morse(["N"], 4.0, {"N-N": {"D": D, "alpha": alpha, "r0": r0}}, switch_on=3.5)
    dimer = Structure(numbers=[7, 7], positions=[[0, 0, 0], [0, 0, 1.3]]).to_atoms()
    relaxed = relax(dimer, Calculator(model), fmax=1e-6)
    assert abs(relaxed.get_distance(0, 1) - r0) < 1e-5
    (frequency,) = vibrational_frequencies(relaxed, Calculator(model), delta=0.001, relax_fmax=None)
    mu = relaxed.get_masses()[0] / 2 * units._amu
    omega = alpha * 1e10 * np.sqrt(2 * D * units._e / mu)  # rad/s
    expected = omega / (2 * np.pi * units._c * 100)  # cm⁻¹
    assert abs(frequency - expected) < 1e-3 * expected


def test_emt_copper_eos_elastic_and_phonons():
    copper = relax(bulk("Cu", "fcc", a=3.6), EMT(), cell=True, fmax=1e-5)
    eos = equation_of_state(copper, EMT())
    assert np.isclose(max(eos["volumes"]) / min(eos["volumes"]), (1.01 / 0.99) ** 3)  # default: ±1 % linear strain
    assert abs(eos["lattice_scale"] - 1) < 1e-3  # the relaxed cell is the E(V) minimum
    assert 120 < eos["bulk_modulus"] < 150  # EMT copper: about 134 GPa
    C = elastic_constants(copper, EMT())
    c11, c12, c44 = C[0, 0], C[0, 1], C[3, 3]
    assert np.allclose(np.diag(C)[:3], c11, rtol=1e-3) and np.allclose(np.diag(C)[3:], c44, rtol=1e-3)
    assert abs((c11 + 2 * c12) / 3 - eos["bulk_modulus"]) < 0.03 * eos["bulk_modulus"]  # cubic: B = (C11 + 2 C12)/3
    assert np.abs(C[:3, 3:]).max() < 1e-3 * c11
    assert default_supercell(copper) == (4, 4, 4)  # even, ≥ 10 Å: X and L are commensurate
    bands = phonon_frequencies(copper, EMT())
    assert set(bands) == {"Γ", "K", "L", "U", "W", "X"}  # the fcc lattice's own high-symmetry points
    assert np.abs(bands["Γ"]).max() < 0.5  # acoustic modes vanish at Γ (meV)
    assert (bands["X"] > 10).all() and (bands["L"] > 5).all()


def test_property_commands_write_reports(tmp_path, capsys):
    import json

    from ase.io import write

    from conftest import tiny_bpnn, water_cell
    from forcefit.cli import main
    from forcefit.models.saving import save_model

    model = Morse(["Cu"], 5.0, {"Cu-Cu": {"D": 0.34, "alpha": 1.36, "r0": 2.87}})
    save_model(model, tmp_path / "cu.ffm")
    write(tmp_path / "cu.xyz", bulk("Cu", "fcc", a=3.6))
    for command in ("eos", "elastic"):
        out = tmp_path / command
        assert main([command, str(tmp_path / "cu.ffm"), str(tmp_path / "cu.xyz"), "--reference", "emt", "--output", str(out)]) == 0
        report = json.loads((out / f"{command}.json").read_text())
        assert set(report) == {"model", "reference"}
    assert (tmp_path / "eos" / "eos_reference.png").is_file() and (tmp_path / "elastic" / "elastic_model.png").is_file()
    assert (
        main(
            ["phonons", str(tmp_path / "cu.ffm"), str(tmp_path / "cu.xyz"), "--supercell", "2", "2", "2", "--output", str(tmp_path / "ph")]
        )
        == 0
    )
    assert (tmp_path / "ph" / "phonons_model.png").stat().st_size > 0
    assert main(["relax", str(tmp_path / "cu.ffm"), str(tmp_path / "cu.xyz"), "--cell", "--output", str(tmp_path / "r.extxyz")]) == 0
    molecule = Structure(numbers=[7, 7], positions=[[0, 0, 0], [0, 0, 1.2]]).to_atoms()
    write(tmp_path / "n2.xyz", molecule)
    save_model(Morse(["N"], 4.0, {"N-N": {"D": 9.9, "alpha": 2.7, "r0": 1.1}}, switch_on=3.5), tmp_path / "n2.ffm")
    assert main(["vibrations", str(tmp_path / "n2.ffm"), str(tmp_path / "n2.xyz"), "--output", str(tmp_path / "vib")]) == 0
    assert len(json.loads((tmp_path / "vib" / "vibrations.json").read_text())["model"]) == 1
    assert (tmp_path / "vib" / "vibrations.png").is_file()
    save_model(tiny_bpnn(), tmp_path / "w.ffm")
    write(tmp_path / "w.xyz", water_cell(1).to_atoms())
    traj = str(tmp_path / "md.traj")
    assert (
        main(
            [
                "md",
                str(tmp_path / "w.ffm"),
                str(tmp_path / "w.xyz"),
                "--ensemble",
                "nvt",
                "--steps",
                "20",
                "--timestep",
                "0.25",
                "--trajectory",
                traj,
                "--rdf",
                "1.9",
                "--max-extrapolating-fraction",
                "1",
            ]
        )
        == 0
    )  # a random toy model
    assert (tmp_path / "md.rdf.png").stat().st_size > 0 and (tmp_path / "md.temperature.png").is_file()
    assert "NVT 20 steps" in capsys.readouterr().out
