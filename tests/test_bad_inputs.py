"""The corpus of bad inputs under tests/data/bad/: each file is refused with a message that
names the file and the cause. Add a file and its expected message here for every defect found."""

import time
from pathlib import Path

import pytest

from forcefit.io import read_structures

BAD = Path(__file__).parent / "data" / "bad"

EXPECTED = {
    "coincident_atoms.extxyz": r"coincident_atoms.extxyz frame 1 \(line 1\)\): atoms 2 and 3 \(counted from 1\) are 0 Å apart",
    "close_atoms.extxyz": r"close_atoms.extxyz frame 1 \(line 1\)\): atoms 2 and 3 .* are 0.03606 Å apart, closer than the minimum distance 0.1 Å",
    "flat_cell.extxyz": r"flat_cell.extxyz frame 1 \(line 1\)\): the periodic lattice vectors .* are \(nearly\) linearly dependent",
    "huge_atom_count.xyz": r"huge_atom_count.xyz line 1: the frame announces 1000000000000 atoms but only \d+ bytes follow",
    "two_energy_lines.data": r"two_energy_lines.data line 5: a second 'energy' line in the configuration opened at line 1",
    "zero_volume.data": r"zero_volume.data configuration 1 \(line 1\)\): the periodic lattice vectors .* linearly dependent",
}


def test_every_bad_file_has_an_expected_message():
    assert sorted(p.name for p in BAD.iterdir()) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_file_is_refused_naming_file_and_cause(name):
    started = time.perf_counter()
    with pytest.raises(ValueError, match=EXPECTED[name]):
        read_structures(BAD / name, length_unit=1.0, energy_unit=1.0)
    assert time.perf_counter() - started < 5.0, "refused quickly, not after allocating or looping"
