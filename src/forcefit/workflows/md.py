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

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import units
from ase.constraints import FixCom
from ase.io import Trajectory, read, write
from ase.md.langevin import Langevin
from ase.md.nose_hoover_chain import IsotropicMTKNPT
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary, ZeroRotation
from ase.md.verlet import VelocityVerlet
from rich.progress import Progress

from forcefit.reports import figures

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


@dataclass(frozen=True)
class MDSettings:
    """What to simulate."""

    steps: int
    timestep_fs: float = 0.5
    temperature_K: float = 300.0  # initial velocities; the NVT/NPT target
    ensemble: str = "nve"  # ENSEMBLES
    pressure_GPa: float = 1e-4  # NPT target
    friction_per_fs: float = 0.01  # Langevin (NVT)
    seed: int = 0


@dataclass(frozen=True)
class MDRecording:
    """What a run keeps: every `sample_every` steps a recorded step (energies, T, P, volume,
    the model's signals; a `log` line, and with `keep_frames` a copy of the atoms), an ASE
    `trajectory` frame every `trajectory_interval` steps, and the frames whose largest
    extrapolation grade exceeds `record_gamma`."""

    sample_every: int = 1
    log: str | None = None
    trajectory: str | None = None
    trajectory_interval: int = 1
    keep_frames: bool = False
    record_gamma: float | None = None
    progress: bool = True


@dataclass(frozen=True)
class MDLimits:
    """When a run stops early: optional thresholds on the extrapolation count and a committee's
    force disagreement, and the safety limits, on by default (module docstring), on the
    extrapolation grade, the share of atoms outside the training range and the temperature
    (a factor of max(target, 100 K))."""

    max_extrapolation: int | None = None
    max_force_std: float | None = None  # eV/Å
    max_gamma: float | None = MAX_GAMMA
    max_extrapolating_fraction: float | None = 0.5
    max_temperature_factor: float | None = 5.0


def check_md_arguments(atoms, settings: MDSettings, recording: MDRecording = MDRecording()) -> None:
    """Refuse arguments that cannot make a run, before any force is computed."""
    ensemble, temperature_K = settings.ensemble, settings.temperature_K
    if ensemble not in ENSEMBLES:
        raise ValueError(f"ensemble {ensemble!r}: expected one of {list(ENSEMBLES)}")
    if settings.steps < 1:
        raise ValueError(f"steps: {settings.steps}; expected at least 1")
    if not 0 < settings.timestep_fs <= 10:
        raise ValueError(f"timestep: {settings.timestep_fs} fs; expected 0 < timestep ≤ 10 fs")
    if not temperature_K >= 0:
        raise ValueError(f"temperature: {temperature_K} K; expected ≥ 0")
    if ensemble != "nve" and temperature_K <= 0:
        raise ValueError(f"{ensemble.upper()} needs a target temperature above 0 K")
    if recording.sample_every < 1 or recording.trajectory_interval < 1:
        raise ValueError("sampling and trajectory intervals must be at least 1 step")
    if ensemble == "npt" and not atoms.pbc.all():
        raise ValueError("NPT needs a cell periodic in all three directions")
    if ensemble == "npt" and not np.isfinite(settings.pressure_GPa):
        raise ValueError(f"pressure: {settings.pressure_GPa} GPa")


def _dynamics(atoms, settings: MDSettings):
    """ASE's integrator for the ensemble, from Maxwell–Boltzmann velocities (no net momentum,
    and for a molecule no net rotation)."""
    MaxwellBoltzmannDistribution(atoms, temperature_K=settings.temperature_K, rng=np.random.default_rng(settings.seed))
    Stationary(atoms)
    if not atoms.pbc.any():
        ZeroRotation(atoms)
    timestep = settings.timestep_fs * units.fs
    if settings.ensemble == "nve":
        return VelocityVerlet(atoms, timestep)
    if settings.ensemble == "nvt":
        atoms.set_constraint(FixCom())
        friction = settings.friction_per_fs / units.fs
        return Langevin(
            atoms,
            timestep,
            temperature_K=settings.temperature_K,
            friction=friction,
            fixcm=False,
            rng=np.random.default_rng(settings.seed + 1),
        )
    pressure = settings.pressure_GPa * units.GPa
    return IsotropicMTKNPT(
        atoms, timestep, temperature_K=settings.temperature_K, pressure_au=pressure, tdamp=100 * timestep, pdamp=1000 * timestep
    )


def _bare_copy(atoms):
    """The atoms as a structure: without the thermostat's FixCom."""
    frame = atoms.copy()
    frame.constraints = []
    return frame


class _Recorder:
    """Each recorded step: the numbers MDResult holds, a log line, the frames asked for, and
    the reason to stop if a limit is crossed (`stopped`, `unsafe`)."""

    def __init__(self, atoms, dyn, settings: MDSettings, recording: MDRecording, limits: MDLimits, log_handle):
        self.atoms, self.dyn, self.recording, self.limits, self.log_handle = atoms, dyn, recording, limits, log_handle
        self.periodic = bool(atoms.pbc.all())
        self.records, self.frames, self.gammas, self.high_gamma = [], [], [], []
        self.extrapolating, self.max_force_std, self.stopped, self.unsafe = 0, 0.0, "", False
        factor = limits.max_temperature_factor
        self.hottest = None if factor is None else factor * max(settings.temperature_K, 100.0)

    def record(self) -> None:
        atoms = self.atoms
        forces = atoms.get_forces()
        time_fs = self.dyn.get_time() / units.fs
        if not np.all(np.isfinite(forces)):
            raise FloatingPointError(f"the model's forces became non-finite at {time_fs:.1f} fs; the run was stopped")
        epot, ekin = atoms.get_potential_energy(), atoms.get_kinetic_energy()
        results = atoms.calc.results
        spread = float(results.get("max_force_std", 0.0))
        pressure = -np.trace(atoms.get_stress(voigt=False, include_ideal_gas=True)) / 3 / units.GPa if self.periodic else float("nan")
        volume = atoms.get_volume() if self.periodic else float("nan")
        temperature = atoms.get_temperature()
        self.records.append((time_fs / 1000, epot, ekin, temperature, pressure, volume, spread))
        if self.log_handle:
            self.log_handle.write(
                f"{self.dyn.nsteps:8d} {time_fs / 1000:10.5f} {epot:16.8f} {ekin:14.8f} {epot + ekin:16.8f} {temperature:10.3f} "
                f"{pressure:12.6f} {volume:14.5f} {spread:10.5f}\n"
            )
        if self.recording.keep_frames:
            self.frames.append(_bare_copy(atoms))
        self.max_force_std = max(self.max_force_std, spread)
        self._check(results, spread, temperature, time_fs)

    def _check(self, results: dict, spread: float, temperature: float, time_fs: float) -> None:
        limits, count = self.limits, int(results.get("extrapolation", 0))
        self.extrapolating += count > 0
        if "max_gamma" in results:
            self.gammas.append(results["max_gamma"])
            if self.recording.record_gamma is not None and self.gammas[-1] > self.recording.record_gamma:
                self.high_gamma.append(_bare_copy(self.atoms))
            if limits.max_gamma is not None and self.gammas[-1] > limits.max_gamma:
                self._stop(f"extrapolation grade γ = {self.gammas[-1]:.3g} at {time_fs:.1f} fs (limit {limits.max_gamma:g})", unsafe=True)
        if limits.max_extrapolation is not None and count > limits.max_extrapolation:
            self._stop(f"{count} symmetry-function values outside the training range at {time_fs:.1f} fs")
        if limits.max_force_std is not None and spread > limits.max_force_std:
            self._stop(f"committee force disagreement {spread:.3f} eV/Å at {time_fs:.1f} fs")
        outside, share = results.get("extrapolating_atoms"), limits.max_extrapolating_fraction
        if share is not None and outside is not None and np.mean(outside) > share:
            self._stop(
                f"{int(np.sum(outside))} of {len(self.atoms)} atoms outside the training range at {time_fs:.1f} fs (limit {share:.0%})",
                unsafe=True,
            )
        if self.hottest is not None and temperature > self.hottest:
            self._stop(f"temperature {temperature:.0f} K at {time_fs:.1f} fs (limit {self.hottest:.0f} K)", unsafe=True)

    def _stop(self, why: str, unsafe: bool = False) -> None:
        self.stopped, self.unsafe = why, self.unsafe or unsafe

    def result(self) -> MDResult:
        t, pot, kin, temp, pressure, volume, spreads = (np.array(x) for x in zip(*self.records))
        total, n = pot + kin, len(self.atoms)
        return MDResult(
            t, total, pot, temp, energy_drift(t, total, n) if len(t) > 1 else float("nan"), float(np.std(total / n) * 1000.0),
            self.extrapolating, self.max_force_std, self.stopped, spreads, self.frames if self.recording.keep_frames else None,
            pressure, volume, self.unsafe, np.array(self.gammas) if self.gammas else None, self.recording.record_gamma,
            self.high_gamma if self.gammas else None, self.limits.max_gamma,
        )  # fmt: skip


def run_md(atoms, calculator, settings: MDSettings, recording: MDRecording = MDRecording(), limits: MDLimits = MDLimits()) -> MDResult:
    """MD from Maxwell–Boltzmann velocities in the chosen ensemble.

    Every recorded step (each `recording.sample_every` steps) reads the calculator's
    extrapolation count and, for a committee, its largest per-atom force disagreement and,
    with a model that has an extrapolation grade γ (models/grade.py), the largest γ; the run
    stops early when one of them crosses its limit (`MDLimits`). `recording.log` writes one
    line per recorded step (LOG_COLUMNS); frames whose largest γ exceeds
    `recording.record_gamma` are kept (`high_gamma_frames`: candidates to label)."""
    check_md_arguments(atoms, settings, recording)
    atoms = atoms.copy()
    atoms.calc = calculator
    dyn = _dynamics(atoms, settings)
    if recording.trajectory:
        dyn.attach(Trajectory(recording.trajectory, "w", atoms).write, interval=recording.trajectory_interval)
    log_handle = Path(recording.log).open("w") if recording.log else None
    try:
        if log_handle:
            log_handle.write(
                f"# {settings.ensemble.upper()} {len(atoms)} atoms, timestep {settings.timestep_fs} fs, target T {settings.temperature_K} K"
                + (f", P {settings.pressure_GPa} GPa" if settings.ensemble == "npt" else "")
                + f"\n# {LOG_COLUMNS}\n"
            )
        recorder = _Recorder(atoms, dyn, settings, recording, limits, log_handle)
        recorder.record()
        with Progress(disable=not recording.progress, transient=True) as bar:
            task = bar.add_task(f"{settings.ensemble.upper()} MD", total=settings.steps)
            for _ in range(0, settings.steps, recording.sample_every):
                if recorder.stopped:
                    break
                dyn.run(recording.sample_every)
                recorder.record()
                bar.advance(task, recording.sample_every)
    finally:
        if log_handle:
            log_handle.close()
    return recorder.result()


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


def md_report(result: MDResult, atoms, settings: MDSettings, recording: MDRecording, seconds: float, rdf_max: float | None = None):
    """What `forcefit md` reports, line by line, and leaves beside its log or trajectory: the
    summary with the speed, an energy (NVE) or temperature plot, the signals of the model's
    range, the frames above `record_gamma` (<log or trajectory>.gamma.extxyz) and, with
    `rdf_max`, g(r) of the trajectory's second half (PNG + JSON). A run stopped by a safety
    limit raises RuntimeError after the summary: its numbers mean nothing."""
    n, timestep = len(atoms), settings.timestep_fs
    steps_done = int(round(result.times_ps[-1] * 1000 / timestep))
    yield (
        f"{settings.ensemble.upper()} {steps_done} steps × {timestep} fs ({n} atoms) in {seconds:.1f} s, "
        f"{steps_done * n / seconds:.3g} atom-steps/s: {summary(result, n, settings.ensemble, bool(atoms.pbc.all()))}"
    )
    beside = recording.log or recording.trajectory
    if beside and settings.ensemble == "nve":
        energy = 1000 * (result.total_energy - result.total_energy[0]) / n
        figures.xy_plot(result.times_ps, energy, "t (ps)", "E_total − E_total(0) (meV/atom)", Path(beside).with_suffix(".energy.png"))
    elif beside:
        label = f"T (K), target {settings.temperature_K:g} K"
        figures.xy_plot(result.times_ps, result.temperature, "t (ps)", label, Path(beside).with_suffix(".temperature.png"))
    if result.gamma is None:  # a model without a grade (pair potentials, older files): the range count
        yield f"extrapolation: {result.extrapolating_steps} of {len(result.times_ps)} recorded steps with descriptors outside the training range"
    if result.max_force_std > 0:
        yield f"largest committee force disagreement {result.max_force_std:.3f} eV/Å"
    if result.high_gamma_frames:
        target = Path(beside or "md").with_suffix(".gamma.extxyz")
        write(target, result.high_gamma_frames)
        yield f"{len(result.high_gamma_frames)} frames with γ > {recording.record_gamma:g} written to {target}"
    if result.unsafe:
        raise RuntimeError(
            f"MD stopped: {result.stopped}; the run left the region the model was trained on, so its numbers mean "
            "nothing (loosen with --max-gamma / --max-extrapolating-fraction / --max-temperature-factor)"
        )
    if result.stopped:
        yield f"[bold yellow]stopped early:[/] {result.stopped}"
    if rdf_max:
        frames = read(recording.trajectory, index=":")
        frames = frames[len(frames) // 2 :]
        r, g = partial_distributions(frames, rdf_max)
        path = Path(recording.trajectory)
        path.with_suffix(".rdf.json").write_text(json.dumps({"r": r.tolist(), **{k: v.tolist() for k, v in g.items()}}))
        figures.curves_plot(r, g, "r (Å)", "g(r)", path.with_suffix(".rdf.png"))
        yield (
            f"g(r) from the second half of the run ({len(frames)} frames): first peak at {r[np.argmax(g['all'])]:.2f} Å; "
            f"partial g(r) for {', '.join(k for k in g if k != 'all')}"
        )
