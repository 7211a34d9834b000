"""Readers convert units at the edge and reject bad files with file and line."""

import numpy as np
import pytest
from ase import units

from conftest import ROOT, water_cell, water_cluster
from forcefit.io import (
    read_extxyz,
    read_input_data,
    read_structures,
    write_extxyz,
    write_input_data,
)

ETHANOL = ROOT / "data" / "ethanol_gfn2xtb_500K.extxyz"

GOOD = """begin
comment first
lattice 10.0 0.0 0.0
lattice 0.0 10.0 0.0
lattice 0.0 0.0 10.0
atom 0.0 0.0 0.0 O 0.0 0.0 0.1 0.2 0.3
atom 1.8 0.0 0.0 H 0.0 0.0 -0.1 -0.2 -0.3
energy -1.5
charge 0.0
end
"""


def test_bundled_dataset_reads_with_labels():
    structures = read_extxyz(ETHANOL)
    assert len(structures) == 1000
    assert all(s.forces is not None and s.energy is not None for s in structures)
    assert sorted(set(structures[0].symbols)) == ["C", "H", "O"]
    # GFN2-xTB forces of a 500 K molecule: sum to ~0, typical size ~1 eV/Å
    assert np.abs(structures[0].forces.sum(axis=0)).max() < 1e-3


def test_extxyz_label_keys_are_configurable(tmp_path):
    path = tmp_path / "ref.xyz"
    path.write_text('2\nProperties=species:S:1:pos:R:3:REF_forces:R:3 REF_energy=-3.25 pbc="F F F"\nH 0 0 0 0.1 0 0\nH 0.74 0 0 -0.1 0 0\n')
    s = read_extxyz(path, energy_key="REF_energy", forces_key="REF_forces")
    assert s[0].energy == -3.25 and s[0].forces[0, 0] == 0.1
    with pytest.raises(ValueError, match=r"ref.xyz frame 1 \(line 1\): no energy under key 'energy'"):
        read_extxyz(path)


def test_input_data_units_are_converted(tmp_path):
    path = tmp_path / "input.data"
    path.write_text(GOOD)
    (s,) = read_input_data(path, length_unit=units.Bohr, energy_unit=units.Hartree)
    assert np.isclose(s.positions[1, 0], 1.8 * units.Bohr)
    assert np.isclose(s.energy, -1.5 * units.Hartree)
    assert np.isclose(s.forces[0, 2], 0.3 * units.Hartree / units.Bohr)
    assert s.pbc.all() and np.isclose(s.cell[0, 0], 10 * units.Bohr)


@pytest.mark.parametrize(
    "text, message",
    [
        (GOOD.replace("end\n", ""), r"input.data: file ends inside the configuration opened at line 1"),
        (
            GOOD.replace("0.0 0.1 0.2 0.3", "0.0 0.1 0.2"),
            r"input.data line 6: expected 'atom x y z element charge energy fx fy fz' \(10 fields\), got 9",
        ),
        (GOOD.replace("0.1 0.2 0.3", "nan 0.2 0.3"), r"input.data line 6: atom charge/energy/forces: contains NaN"),
        (GOOD.replace("energy -1.5\n", ""), r"input.data configuration 1 \(line 1\): no 'energy' line"),
        (GOOD.replace(" H ", " Xx "), r"input.data line 7: unknown element 'Xx'"),
        (GOOD.replace("lattice 0.0 0.0 10.0\n", ""), r"2 lattice lines"),
    ],
    ids=["truncated", "columns", "nan", "no-energy", "element", "lattice"],
)
def test_bad_input_data_names_file_and_line(tmp_path, text, message):
    path = tmp_path / "input.data"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_input_data(path, length_unit=1.0, energy_unit=1.0)


def test_missing_forces_in_extxyz_is_an_error(tmp_path):
    path = tmp_path / "noforces.xyz"
    path.write_text('1\nProperties=species:S:1:pos:R:3 energy=-1.0 pbc="F F F"\nH 0 0 0\n')
    with pytest.raises(ValueError, match=r"noforces.xyz frame 1 \(line 1\): no forces under key 'forces'"):
        read_extxyz(path)


def test_nan_energy_in_extxyz_is_an_error(tmp_path):
    path = tmp_path / "nan.xyz"
    path.write_text('1\nProperties=species:S:1:pos:R:3:forces:R:3 energy=nan pbc="F F F"\nH 0 0 0 0 0 0\n')
    with pytest.raises(ValueError, match=r"nan.xyz frame 1 \(line 1\)\): reference energy is nan"):
        read_extxyz(path)


def test_extxyz_and_input_data_round_trip(tmp_path):
    structures = [water_cluster(1), water_cell(2)]
    for n, s in enumerate(structures):
        s.energy = -10.0 - n
        s.forces = np.random.default_rng(n).normal(size=s.positions.shape)
    write_input_data(tmp_path / "input.data", structures, length_unit=units.Bohr, energy_unit=units.Hartree)
    back = read_structures(tmp_path / "input.data", length_unit=units.Bohr, energy_unit=units.Hartree)
    for a, b in zip(structures, back):  # input.data keeps full double precision
        assert np.allclose(a.positions, b.positions, rtol=1e-14, atol=1e-13)
        assert np.allclose(a.forces, b.forces, rtol=1e-14, atol=1e-13)
        assert np.isclose(a.energy, b.energy, rtol=1e-14)
    write_extxyz(tmp_path / "again.extxyz", back)
    again = read_structures(tmp_path / "again.extxyz")
    for a, b in zip(structures, again):  # ASE writes extxyz arrays with 8 decimals
        assert np.allclose(a.positions, b.positions, atol=1e-8)
        assert np.allclose(a.forces, b.forces, atol=1e-8)
        assert np.isclose(a.energy, b.energy, rtol=1e-14)
        assert np.allclose(a.cell, b.cell, atol=1e-8) and (a.pbc == b.pbc).all()
    assert len(again[1].numbers) == 6 and again[1].pbc.all() and not again[0].pbc.any()
