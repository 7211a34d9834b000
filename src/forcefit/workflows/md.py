"""Molecular dynamics with a forcefit model through ASE, and the NVE drift.

Drift is the slope of a least-squares line through the total energy per atom
against time, in meV/atom/ps; a well-behaved potential with a sensible time step
gives a small number.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import units
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary, ZeroRotation
from ase.md.verlet import VelocityVerlet
from rich.progress import Progress


@dataclass
class NVEResult:
    times_ps: np.ndarray
    total_energy: np.ndarray  # eV
    potential_energy: np.ndarray  # eV
    temperature: np.ndarray  # K
    drift: float  # meV/atom/ps
    fluctuation: float  # std of total energy, meV/atom


def energy_drift(times_ps: np.ndarray, total_energy: np.ndarray, n_atoms: int) -> float:
    """Slope of the total energy per atom against time, meV/atom/ps."""
    slope = np.polyfit(times_ps, total_energy / n_atoms, 1)[0]
    return float(slope * 1000.0)


def run_nve(atoms, calculator, steps: int, timestep_fs: float = 0.5, temperature_K: float = 300.0, seed: int = 0,
            sample_every: int = 1, trajectory: str | None = None, progress: bool = True) -> NVEResult:
    """Velocity-Verlet NVE from Maxwell–Boltzmann velocities; returns energies and drift."""
    atoms = atoms.copy()
    atoms.calc = calculator
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature_K, rng=np.random.default_rng(seed))
    Stationary(atoms)
    if not atoms.pbc.any():
        ZeroRotation(atoms)
    dyn = VelocityVerlet(atoms, timestep_fs * units.fs, trajectory=trajectory)
    records = []

    def record():
        records.append((dyn.get_time() / (1000 * units.fs), atoms.get_potential_energy(), atoms.get_kinetic_energy(), atoms.get_temperature()))

    record()
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("NVE MD", total=steps)
        for _ in range(0, steps, sample_every):
            dyn.run(sample_every)
            record()
            bar.advance(task, sample_every)
    t, pot, kin, temp = (np.array(x) for x in zip(*records))
    total = pot + kin
    n = len(atoms)
    return NVEResult(t, total, pot, temp, energy_drift(t, total, n), float(np.std(total / n) * 1000.0))
