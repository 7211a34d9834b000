"""Regenerate the bundled default dataset: ethanol at 500 K labelled with GFN2-xTB.

Langevin MD (0.5 fs, friction 0.01/fs) driven by GFN2-xTB through tblite's ASE
calculator. After 2 ps of equilibration, one frame every 10 fs is kept with its
GFN2-xTB energy (eV) and forces (eV/Å). Run: python data/make_ethanol.py
(`main` also takes another temperature, frame count and seed; the active-learning
benchmark uses it for a hotter trajectory.)
"""

import sys
from pathlib import Path

import numpy as np
from ase import units
from ase.build import molecule
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from tblite.ase import TBLite

STRIDE = 20  # steps of 0.5 fs
EQUILIBRATION = 4000


def main(out: Path, temperature: float = 500.0, n_frames: int = 1000, seed: int = 2026) -> None:
    atoms = molecule("CH3CH2OH")
    atoms.calc = TBLite(method="GFN2-xTB", verbosity=0)
    rng = np.random.default_rng(seed)
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
    dyn = Langevin(atoms, 0.5 * units.fs, temperature_K=temperature, friction=0.01 / units.fs, rng=rng)
    dyn.run(EQUILIBRATION)
    frames = []
    for _ in range(n_frames):
        dyn.run(STRIDE)
        frame = atoms.copy()
        del frame.arrays["momenta"]
        frame.calc = SinglePointCalculator(frame, energy=atoms.get_potential_energy(), forces=atoms.get_forces())
        frames.append(frame)
    write(out, frames, format="extxyz")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("ethanol_gfn2xtb_500K.extxyz"))
