"""Molecular dynamics with a forcefit model through ASE, and the NVE drift.

Drift is the slope of a least-squares line through the total energy per atom
against time, in meV/atom/ps; a well-behaved potential with a sensible time step
gives a small number.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import units
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary, ZeroRotation
from ase.md.verlet import VelocityVerlet
from rich.progress import Progress


@dataclass
class MDResult:
    times_ps: np.ndarray
    total_energy: np.ndarray  # eV
    potential_energy: np.ndarray  # eV
    temperature: np.ndarray  # K
    drift: float  # meV/atom/ps
    fluctuation: float  # std of total energy, meV/atom
    extrapolating_steps: int = 0  # recorded steps with symmetry functions outside the training range
    max_force_std: float = 0.0  # largest committee force disagreement seen, eV/Å
    stopped: str = ""  # why the run stopped early, if it did
    force_std: np.ndarray | None = None  # per recorded step: committee's largest per-atom force disagreement, eV/Å
    frames: list | None = None  # per recorded step (keep_frames=True): copies of the atoms


def energy_drift(times_ps: np.ndarray, total_energy: np.ndarray, n_atoms: int) -> float:
    """Slope of the total energy per atom against time, meV/atom/ps."""
    slope = np.polyfit(times_ps, total_energy / n_atoms, 1)[0]
    return float(slope * 1000.0)


def run_md(atoms, calculator, steps: int, timestep_fs: float = 0.5, temperature_K: float = 300.0, seed: int = 0,
           sample_every: int = 1, trajectory: str | None = None, progress: bool = True, ensemble: str = "nve",
           friction_per_fs: float = 0.01, max_extrapolation: int | None = None, max_force_std: float | None = None,
           keep_frames: bool = False) -> MDResult:
    """MD from Maxwell–Boltzmann velocities: velocity Verlet (`nve`) or Langevin (`nvt`).

    The drift is meaningful for NVE only (a thermostat exchanges energy). Every
    recorded step also reads the calculator's extrapolation count and, for a
    committee, its largest per-atom force disagreement; the run stops early when
    either exceeds its optional threshold."""
    if ensemble not in ("nve", "nvt"):
        raise ValueError(f"ensemble {ensemble!r}: expected 'nve' or 'nvt'")
    atoms = atoms.copy()
    atoms.calc = calculator
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature_K, rng=np.random.default_rng(seed))
    Stationary(atoms)
    if not atoms.pbc.any():
        ZeroRotation(atoms)
    if ensemble == "nve":
        dyn = VelocityVerlet(atoms, timestep_fs * units.fs, trajectory=trajectory)
    else:
        dyn = Langevin(atoms, timestep_fs * units.fs, temperature_K=temperature_K, friction=friction_per_fs / units.fs,
                       trajectory=trajectory, rng=np.random.default_rng(seed + 1))
    records, spreads, frames, watch = [], [], [], {"extrapolating": 0, "max_force_std": 0.0, "stopped": ""}

    def record():
        records.append((dyn.get_time() / (1000 * units.fs), atoms.get_potential_energy(), atoms.get_kinetic_energy(), atoms.get_temperature()))
        results = atoms.calc.results
        spreads.append(float(results.get("max_force_std", 0.0)))
        if keep_frames:
            frames.append(atoms.copy())
        count = int(results.get("extrapolation", 0))
        watch["extrapolating"] += count > 0
        watch["max_force_std"] = max(watch["max_force_std"], float(results.get("max_force_std", 0.0)))
        time_fs = dyn.get_time() / units.fs
        if max_extrapolation is not None and count > max_extrapolation:
            watch["stopped"] = f"{count} symmetry-function values outside the training range at {time_fs:.1f} fs"
        if max_force_std is not None and results.get("max_force_std", 0.0) > max_force_std:
            watch["stopped"] = f"committee force disagreement {results['max_force_std']:.3f} eV/Å at {time_fs:.1f} fs"

    record()
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task(f"{ensemble.upper()} MD", total=steps)
        for _ in range(0, steps, sample_every):
            if watch["stopped"]:
                break
            dyn.run(sample_every)
            record()
            bar.advance(task, sample_every)
    t, pot, kin, temp = (np.array(x) for x in zip(*records))
    total = pot + kin
    n = len(atoms)
    drift = energy_drift(t, total, n) if len(t) > 1 else float("nan")
    return MDResult(t, total, pot, temp, drift, float(np.std(total / n) * 1000.0),
                    watch["extrapolating"], watch["max_force_std"], watch["stopped"], np.array(spreads), frames if keep_frames else None)


def radial_distribution(frames, r_max: float, bins: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """g(r) averaged over periodic frames (minimum-image distances up to r_max)."""
    from ase.geometry.rdf import get_rdf

    total = None
    for atoms in frames:
        rdf, r = get_rdf(atoms, r_max, bins)
        total = rdf if total is None else total + rdf
    return r, total / len(frames)
