"""Regenerate the bundled default dataset: ethanol at 500 K labelled with GFN2-xTB.

Langevin MD (0.5 fs, friction 0.01/fs) driven by GFN2-xTB through tblite's ASE
calculator. After 2 ps of equilibration, one frame every 10 fs is kept with its
GFN2-xTB energy (eV) and forces (eV/Å). Run: python data/make_ethanol.py
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

N_FRAMES = 1000
STRIDE = 20  # steps of 0.5 fs
EQUILIBRATION = 4000


def main(out: Path) -> None:
    atoms = molecule("CH3CH2OH")
    atoms.calc = TBLite(method="GFN2-xTB", verbosity=0)
    rng = np.random.default_rng(2026)
    MaxwellBoltzmannDistribution(atoms, temperature_K=500, rng=rng)
    dyn = Langevin(atoms, 0.5 * units.fs, temperature_K=500, friction=0.01 / units.fs, rng=rng)
    dyn.run(EQUILIBRATION)
    frames = []
    for _ in range(N_FRAMES):
        dyn.run(STRIDE)
        frame = atoms.copy()
        del frame.arrays["momenta"]
        frame.calc = SinglePointCalculator(
            frame, energy=atoms.get_potential_energy(), forces=atoms.get_forces()
        )
        frames.append(frame)
    write(out, frames, format="extxyz")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("ethanol_gfn2xtb_500K.extxyz"))
