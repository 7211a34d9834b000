"""Molecular dynamics with a forcefit model through ASE, the NVE drift and a thermo log.

Ensembles:
    nve  velocity Verlet
    nvt  Langevin (ASE) with `fixcm=False` and the centre of mass held by a FixCom
         constraint: ASE's own `fixcm=True` removes the centre-of-mass motion in a way
         that does not sample the canonical distribution, which heats small molecules
         (ethanol at 500 K ran at ~650 K). The temperature then counts 3N − 3 degrees
         of freedom, as ASE does with the constraint.
    npt  isotropic Martyna–Tobias–Klein barostat with Nosé–Hoover chains (ASE's
         IsotropicMTKNPT; τ_T = 100 steps, τ_P = 1000 steps), 3-D periodic cells only.

Drift is the slope of a least-squares line through the total energy per atom
against time, in meV/atom/ps (meaningful for NVE only).

Safety, on by default: a run stops (`MDResult.unsafe`) when more than half of the
atoms have descriptors outside the training range, or when the temperature exceeds
five times max(target, 100 K): a model driven that far from its data gives numbers
that mean nothing (a molecule once flew apart to 258 Å at 6777 K).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import units
from ase.constraints import FixCom
from ase.io import Trajectory
from ase.md.langevin import Langevin
from ase.md.nose_hoover_chain import IsotropicMTKNPT
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary, ZeroRotation
from ase.md.verlet import VelocityVerlet
from rich.progress import Progress

ENSEMBLES = ("nve", "nvt", "npt")
MAX_GAMMA = 5.0  # default stop of `forcefit md` (docs/usage.md, extrapolation grade)
LOG_COLUMNS = "step time_ps E_pot_eV E_kin_eV E_tot_eV T_K P_GPa volume_A3 max_force_std_eV_A"


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
    pressure: np.ndarray | None = None  # per recorded step, GPa (NaN for non-periodic systems)
    volume: np.ndarray | None = None  # per recorded step, Å³ (NaN for non-periodic systems)
    unsafe: bool = False  # stopped by a safety limit (the run left the model's domain)
    gamma: np.ndarray | None = None  # per recorded step: the largest extrapolation grade γ (models/grade.py), if the model has one
    record_gamma: float | None = None  # the grade above which frames were kept
    high_gamma_frames: list | None = None  # copies of the atoms at recorded steps with γ above record_gamma
    max_gamma: float | None = None  # the grade that stops the run


def energy_drift(times_ps: np.ndarray, total_energy: np.ndarray, n_atoms: int) -> float:
    """Slope of the total energy per atom against time, meV/atom/ps."""
    slope = np.polyfit(times_ps, total_energy / n_atoms, 1)[0]
    return float(slope * 1000.0)


def check_md_arguments(
    atoms,
    steps: int,
    timestep_fs: float,
    temperature_K: float,
    ensemble: str,
    pressure_GPa: float = 0.0,
    sample_every: int = 1,
    trajectory_interval: int = 1,
) -> None:
    """Refuse arguments that cannot make a run, before any force is computed."""
    if ensemble not in ENSEMBLES:
        raise ValueError(f"ensemble {ensemble!r}: expected one of {list(ENSEMBLES)}")
    if steps < 1:
        raise ValueError(f"steps: {steps}; expected at least 1")
    if not 0 < timestep_fs <= 10:
        raise ValueError(f"timestep: {timestep_fs} fs; expected 0 < timestep ≤ 10 fs")
    if not temperature_K >= 0:
        raise ValueError(f"temperature: {temperature_K} K; expected ≥ 0")
    if ensemble != "nve" and temperature_K <= 0:
        raise ValueError(f"{ensemble.upper()} needs a target temperature above 0 K")
    if sample_every < 1 or trajectory_interval < 1:
        raise ValueError("sampling and trajectory intervals must be at least 1 step")
    if ensemble == "npt" and not atoms.pbc.all():
        raise ValueError("NPT needs a cell periodic in all three directions")
    if ensemble == "npt" and not np.isfinite(pressure_GPa):
        raise ValueError(f"pressure: {pressure_GPa} GPa")


def run_md(
    atoms,
    calculator,
    steps: int,
    timestep_fs: float = 0.5,
    temperature_K: float = 300.0,
    seed: int = 0,
    sample_every: int = 1,
    trajectory: str | None = None,
    progress: bool = True,
    ensemble: str = "nve",
    friction_per_fs: float = 0.01,
    max_extrapolation: int | None = None,
    max_force_std: float | None = None,
    keep_frames: bool = False,
    pressure_GPa: float = 1e-4,
    log: str | None = None,
    trajectory_interval: int = 1,
    max_extrapolating_fraction: float | None = 0.5,
    max_temperature_factor: float | None = 5.0,
    record_gamma: float | None = None,
    max_gamma: float | None = MAX_GAMMA,
) -> MDResult:
    """MD from Maxwell–Boltzmann velocities in the chosen ensemble.

    Every recorded step (each `sample_every` steps) reads the calculator's
    extrapolation count and, for a committee, its largest per-atom force
    disagreement; the run stops early when either exceeds its optional threshold.
    `log` writes one line per recorded step (LOG_COLUMNS); `trajectory` an ASE
    .traj frame every `trajectory_interval` steps. With a model that has an extrapolation grade
    γ (models/grade.py), recorded steps whose largest γ exceeds `record_gamma` are kept as
    frames (`high_gamma_frames`: candidates to label) and the run stops above `max_gamma`."""
    check_md_arguments(atoms, steps, timestep_fs, temperature_K, ensemble, pressure_GPa, sample_every, trajectory_interval)
    atoms = atoms.copy()
    atoms.calc = calculator
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature_K, rng=np.random.default_rng(seed))
    Stationary(atoms)
    if not atoms.pbc.any():
        ZeroRotation(atoms)
    timestep = timestep_fs * units.fs
    if ensemble == "nve":
        dyn = VelocityVerlet(atoms, timestep)
    elif ensemble == "nvt":
        atoms.set_constraint(FixCom())
        dyn = Langevin(
            atoms,
            timestep,
            temperature_K=temperature_K,
            friction=friction_per_fs / units.fs,
            fixcm=False,
            rng=np.random.default_rng(seed + 1),
        )
    else:
        dyn = IsotropicMTKNPT(
            atoms, timestep, temperature_K=temperature_K, pressure_au=pressure_GPa * units.GPa, tdamp=100 * timestep, pdamp=1000 * timestep
        )
    if trajectory:
        dyn.attach(Trajectory(trajectory, "w", atoms).write, interval=trajectory_interval)
    periodic = bool(atoms.pbc.all())
    records, frames, watch = [], [], {"extrapolating": 0, "max_force_std": 0.0, "stopped": "", "unsafe": False}
    gammas, high_gamma = [], []
    hottest = None if max_temperature_factor is None else max_temperature_factor * max(temperature_K, 100.0)
    log_handle = Path(log).open("w") if log else None
    if log_handle:
        log_handle.write(
            f"# {ensemble.upper()} {len(atoms)} atoms, timestep {timestep_fs} fs, target T {temperature_K} K"
            + (f", P {pressure_GPa} GPa" if ensemble == "npt" else "")
            + f"\n# {LOG_COLUMNS}\n"
        )

    def record():
        forces = atoms.get_forces()
        if not np.all(np.isfinite(forces)):
            raise FloatingPointError(f"the model's forces became non-finite at {dyn.get_time() / units.fs:.1f} fs; the run was stopped")
        epot, ekin = atoms.get_potential_energy(), atoms.get_kinetic_energy()
        results = atoms.calc.results
        spread = float(results.get("max_force_std", 0.0))
        pressure = -np.trace(atoms.get_stress(voigt=False, include_ideal_gas=True)) / 3 / units.GPa if periodic else float("nan")
        volume = atoms.get_volume() if periodic else float("nan")
        records.append((dyn.get_time() / (1000 * units.fs), epot, ekin, atoms.get_temperature(), pressure, volume, spread))
        if log_handle:
            log_handle.write(
                f"{dyn.nsteps:8d} {records[-1][0]:10.5f} {epot:16.8f} {ekin:14.8f} {epot + ekin:16.8f} {records[-1][3]:10.3f} "
                f"{pressure:12.6f} {volume:14.5f} {spread:10.5f}\n"
            )
        if keep_frames:
            frame = atoms.copy()
            frame.constraints = []  # the thermostat's FixCom is not part of the structure
            frames.append(frame)
        count = int(results.get("extrapolation", 0))
        watch["extrapolating"] += count > 0
        if "max_gamma" in results:
            gammas.append(results["max_gamma"])
            if record_gamma is not None and gammas[-1] > record_gamma:
                frame = atoms.copy()
                frame.constraints = []
                high_gamma.append(frame)
            if max_gamma is not None and gammas[-1] > max_gamma:
                time_fs = dyn.get_time() / units.fs
                watch["stopped"], watch["unsafe"] = (
                    f"extrapolation grade γ = {gammas[-1]:.3g} at {time_fs:.1f} fs (limit {max_gamma:g})",
                    True,
                )
        watch["max_force_std"] = max(watch["max_force_std"], spread)
        time_fs = dyn.get_time() / units.fs
        if max_extrapolation is not None and count > max_extrapolation:
            watch["stopped"] = f"{count} symmetry-function values outside the training range at {time_fs:.1f} fs"
        if max_force_std is not None and spread > max_force_std:
            watch["stopped"] = f"committee force disagreement {spread:.3f} eV/Å at {time_fs:.1f} fs"
        outside = results.get("extrapolating_atoms")
        if max_extrapolating_fraction is not None and outside is not None and np.mean(outside) > max_extrapolating_fraction:
            watch["stopped"], watch["unsafe"] = (
                (
                    f"{int(np.sum(outside))} of {len(atoms)} atoms outside the training range at "
                    f"{time_fs:.1f} fs (limit {max_extrapolating_fraction:.0%})"
                ),
                True,
            )
        if hottest is not None and records[-1][3] > hottest:
            watch["stopped"], watch["unsafe"] = f"temperature {records[-1][3]:.0f} K at {time_fs:.1f} fs (limit {hottest:.0f} K)", True

    try:
        record()
        with Progress(disable=not progress, transient=True) as bar:
            task = bar.add_task(f"{ensemble.upper()} MD", total=steps)
            for _ in range(0, steps, sample_every):
                if watch["stopped"]:
                    break
                dyn.run(sample_every)
                record()
                bar.advance(task, sample_every)
    finally:
        if log_handle:
            log_handle.close()
    t, pot, kin, temp, pressure, volume, spreads = (np.array(x) for x in zip(*records))
    total = pot + kin
    n = len(atoms)
    drift = energy_drift(t, total, n) if len(t) > 1 else float("nan")
    return MDResult(
        t,
        total,
        pot,
        temp,
        drift,
        float(np.std(total / n) * 1000.0),
        watch["extrapolating"],
        watch["max_force_std"],
        watch["stopped"],
        spreads,
        frames if keep_frames else None,
        pressure,
        volume,
        watch["unsafe"],
        np.array(gammas) if gammas else None,
        record_gamma,
        high_gamma if gammas else None,
        max_gamma,
    )


def radial_distribution(frames, r_max: float, bins: int = 100, elements: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """g(r) averaged over periodic frames (minimum-image distances up to r_max); with
    `elements` = (Z_a, Z_b) the partial g_ab(r)."""
    from ase.geometry.rdf import get_rdf

    total = None
    for atoms in frames:
        rdf, r = get_rdf(atoms, r_max, bins, elements=elements)
        total = rdf if total is None else total + rdf
    return r, total / len(frames)


def partial_distributions(frames, r_max: float, bins: int = 100) -> tuple[np.ndarray, dict]:
    """Total g(r) and the partial g_ab(r) of every element pair: r, {"all": g, "H-O": g_HO, …}."""
    from ase.data import chemical_symbols

    numbers = sorted(set(frames[0].numbers))
    r, g = radial_distribution(frames, r_max, bins)
    out = {"all": g}
    for k, a in enumerate(numbers):
        for b in numbers[k:]:
            out[f"{chemical_symbols[a]}-{chemical_symbols[b]}"] = radial_distribution(frames, r_max, bins, (a, b))[1]
    return r, out


def summary(result: MDResult, n_atoms: int, ensemble: str, periodic: bool) -> str:
    """What a run measured, as one line: T (and P, volume per atom for periodic cells) as means ±
    std over the second half of the recorded steps, the equilibrated part (the first half holds
    the drop from the initial velocities), labelled so; energy drift and fluctuation for NVE,
    over the whole run."""
    half = len(result.times_ps) // 2
    parts = [f"T {result.temperature[half:].mean():.0f} ± {result.temperature[half:].std():.0f} K"]
    if periodic:
        pressure, volume = result.pressure[half:], result.volume[half:] / n_atoms
        parts.append(f"P {pressure.mean():.3f} ± {pressure.std():.3f} GPa")
        if ensemble == "npt":
            parts.append(f"volume {volume.mean():.4f} ± {volume.std():.4f} Å³/atom")
    line = ", ".join(parts) + f" (second half: {len(result.times_ps) - half} of {len(result.times_ps)} recorded steps)"
    if ensemble == "nve" and np.isfinite(result.drift):
        line += f"; energy drift {result.drift:+.3f} meV/atom/ps, fluctuation {result.fluctuation:.3f} meV/atom (whole run)"
    if result.gamma is not None:
        line += f"; extrapolation grade: largest γ {result.gamma.max():.3g}, " + ", ".join(
            f"{np.mean(result.gamma > limit):.1%} of steps above {name} {limit:g}"
            for name, limit in (
                ("1 (outside the training environments)", 1.0),
                ("--record-gamma", result.record_gamma),
                ("--max-gamma", result.max_gamma),
            )
            if limit is not None
        )
    return line
