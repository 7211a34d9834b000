"""Properties of a potential through ASE: relaxation, equation of state, elastic
constants, harmonic vibrations and phonons. Each takes an ASE calculator (a
forcefit one or any reference) so the same function measures both; units are eV,
Å, GPa and cm⁻¹.

- Equation of state: energies of isotropically scaled cells fitted with the
  Birch–Murnaghan form (ase.eos); B in GPa.
- Elastic constants: C_ij = ∂σ_i/∂ε_j by central differences of the stress under
  ±δ Voigt strains applied to the relaxed cell (positions relaxed at each strain
  unless `relax_ions=False`); 6×6 matrix in GPa.
- Vibrations: finite-difference Hessian (ase.vibrations), real frequencies in cm⁻¹
  after dropping the 6 (5 for linear) rigid-body modes.
- Phonons: finite displacements in a supercell (ase.phonons; by default the smallest
  even one ≥ 10 Å on each side); energies at the lattice's high-symmetry points in
  meV and a band-structure/DOS plot in meV.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from ase import units
from ase.eos import EquationOfState
from ase.filters import FrechetCellFilter
from ase.optimize import BFGS

from forcefit.reports import figures

VOIGT = [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]
# eV/Å: a property is measured at the model's own minimum, the structure relaxed first to this
# largest force (the cell too for crystals); relax_fmax=None measures the structure as given
RELAX_FMAX = 1e-4


def relax(atoms, calculator, fmax: float = 1e-3, cell: bool = False, steps: int = 1000):
    """Relaxed copy of `atoms` (positions, and the cell through the stress if `cell`)."""
    atoms = atoms.copy()
    atoms.calc = calculator
    target = FrechetCellFilter(atoms) if cell else atoms
    converged = BFGS(target, logfile=None).run(fmax=fmax, steps=steps)
    if not converged:
        raise RuntimeError(f"relaxation did not reach fmax = {fmax} eV/Å in {steps} steps")
    return atoms


def at_minimum(atoms, calculator, relax_fmax: float | None, cell: bool):
    """`atoms` relaxed to `relax_fmax` (RELAX_FMAX), or as given for None."""
    return atoms if relax_fmax is None else relax(atoms, calculator, fmax=relax_fmax, cell=cell)


def equation_of_state(
    atoms, calculator, strain: float = 0.01, points: int = 9, plot: str | None = None, relax_fmax: float | None = RELAX_FMAX
) -> dict:
    """E(V) of cells scaled by 1 ± `strain` (linear; default ±1 %, the harmonic region
    where B is defined) around the relaxed cell (`at_minimum`); returns v0 (Å³/cell), e0
    (eV), B (GPa), a0 scale and the relaxed cell's lengths (Å)."""
    if not 0 < strain < 0.2:
        raise ValueError(f"EOS strain {strain}: expected between 0 and 0.2 (a fraction of the lattice constant)")
    atoms = at_minimum(atoms, calculator, relax_fmax, cell=True)
    volumes, energies = [], []
    for s in np.linspace(1 - strain, 1 + strain, points):
        scaled = atoms.copy()
        scaled.set_cell(atoms.cell * s, scale_atoms=True)
        scaled.calc = calculator
        volumes.append(scaled.get_volume())
        energies.append(scaled.get_potential_energy())
    eos = EquationOfState(volumes, energies, eos="birchmurnaghan")
    v0, e0, bulk = eos.fit()
    if plot:
        eos.plot(plot, show=False)
    return {
        "v0": float(v0),
        "e0": float(e0),
        "bulk_modulus": float(bulk / units.GPa),
        "lattice_scale": float((v0 / atoms.get_volume()) ** (1 / 3)),
        "volumes": volumes,
        "energies": energies,
        "cell_lengths": atoms.cell.lengths().tolist(),
    }


def elastic_constants(
    atoms, calculator, delta: float = 0.005, relax_ions: bool = True, relax_fmax: float | None = RELAX_FMAX
) -> np.ndarray:
    """6×6 elastic matrix in GPa (Voigt order xx, yy, zz, yz, xz, xy) of the relaxed cell
    (`at_minimum`), the ions relaxed in every strained cell unless `relax_ions` is False."""
    atoms = at_minimum(atoms, calculator, relax_fmax, cell=True)
    C = np.zeros((6, 6))
    for j, (a, b) in enumerate(VOIGT):
        stresses = []
        for sign in (1, -1):
            strain = np.zeros((3, 3))
            value = sign * delta if a == b else sign * delta / 2  # engineering shear strain δ
            strain[a, b] = strain[b, a] = value
            deformed = atoms.copy()
            deformed.set_cell(atoms.cell @ (np.eye(3) + strain), scale_atoms=True)
            deformed.calc = calculator
            if relax_ions and len(deformed) > 1:
                deformed = relax(deformed, calculator, fmax=relax_fmax or RELAX_FMAX)
            stresses.append(deformed.get_stress(voigt=True))
        C[:, j] = (stresses[0] - stresses[1]) / (2 * delta) / units.GPa
    return C


def vibrational_frequencies(atoms, calculator, delta: float = 0.005, relax_fmax: float | None = RELAX_FMAX) -> np.ndarray:
    """Harmonic frequencies (cm⁻¹, ascending) of a molecule at its relaxed geometry (`at_minimum`).

    The 6 (linear: 5) rigid-body modes, the smallest in magnitude, are dropped;
    an imaginary mode (not at a minimum) is reported by its magnitude."""
    from ase.vibrations import Vibrations

    atoms = at_minimum(atoms, calculator, relax_fmax, cell=False).copy()
    atoms.calc = calculator
    with tempfile.TemporaryDirectory() as directory:
        vib = Vibrations(atoms, delta=delta, name=str(Path(directory) / "vib"))
        vib.run()
        magnitudes = np.sort(np.abs(vib.get_energies())) / units.invcm
    moments = atoms.get_moments_of_inertia()
    rigid = 5 if len(atoms) == 2 or moments.min() < 1e-6 * moments.max() else 6
    return magnitudes[rigid:]


def default_supercell(atoms, minimum_length: float = 10.0) -> tuple[int, int, int]:
    """The smallest even repetition along each lattice vector reaching `minimum_length` Å:
    even, so that zone-boundary q-points (X, L, H, …) are commensurate with it."""
    return tuple(int(2 * np.ceil(minimum_length / (2 * length))) for length in atoms.cell.lengths())


def phonon_frequencies(
    atoms,
    calculator,
    supercell=None,
    qpoints: dict | None = None,
    delta: float = 0.01,
    plot: str | None = None,
    relax_fmax: float | None = RELAX_FMAX,
) -> dict:
    """Phonon energies (meV) at named q-points (fractional, reciprocal basis of `atoms`'
    cell); default: the high-symmetry points of its own Bravais lattice (ASE's special
    points, e.g. Γ X W K L U for fcc, Γ H N P for bcc), of the relaxed cell (`at_minimum`).
    Supercell default: default_supercell."""
    from ase.phonons import Phonons

    atoms = at_minimum(atoms, calculator, relax_fmax, cell=True)

    supercell = supercell or default_supercell(atoms)
    qpoints = qpoints or {("Γ" if name == "G" else name): point for name, point in atoms.cell.bandpath(npoints=0).special_points.items()}
    with tempfile.TemporaryDirectory() as directory:
        ph = Phonons(atoms, calculator, supercell=supercell, delta=delta, name=str(Path(directory) / "phonon"))
        ph.run()
        ph.read(acoustic=True)
        # imaginary modes come back as negative energies (ASE's own warnings, printed for round-off at Γ, are off)
        out = {name: np.sort(ph.band_structure([q], verbose=False)[0]) * 1000.0 for name, q in qpoints.items()}
        if plot:
            figures.phonon_plot(ph, atoms, plot)
    return out
