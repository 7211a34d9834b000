"""A robust screen of the reference labels before training.

One corrupted frame (forces ×10⁶, an energy off by 10⁶ eV) dominates a squared loss and
ruins the model without a word, so the labels are checked against the set's own
statistics, with medians and median absolute deviations (MAD) that such frames cannot
move:

- energy: the residual per atom of a least-squares fit of E on composition (with an
  intercept), r_s = (E_s − c − Σ_Z N_Z e_Z)/N_s; suspicious when |r_s − median| >
  `energy_z` · 1.4826 · MAD (a robust z-score; on the mlearn Si/Mo, ethanol and n2p2
  water sets the largest is 5.5).
- forces: the RMS force of a frame; suspicious when it exceeds `force_ratio` times the
  median RMS force (one-sided: perfect crystals have zero forces; the largest ratio on
  those sets is 4.3).

Sets of fewer than 10 labelled structures are not screened (no statistics to speak of).

Units (`check_units`, per file): a file in kcal/mol read as eV has every energy and force
23× too large, and trains without complaint. eV/Å data have a median |force component| of
0.3–0.7 eV/Å (mlearn Si and Mo, n2p2 water, ethanol at 500 K; a hot AIMD set a few times
more); the same data in kcal/mol/Å give 8–16. A median above MAX_MEDIAN_FORCE is refused
with the numbers and the unit keys to set; one below MIN_MEDIAN_FORCE (Hartree/Bohr read as
eV/Å: ~50× too small, or a set of relaxed structures) is reported.
"""

from __future__ import annotations

import numpy as np

OUTLIER_POLICIES = ("error", "exclude", "keep")  # what training does with suspicious labels (data.outliers)
MIN_STRUCTURES = 10
MAX_MEDIAN_FORCE = 5.0  # eV/Å: a median |force component| above this is not eV/Å data
MIN_MEDIAN_FORCE = 0.01  # eV/Å: below this, say so (Hartree/Bohr read as eV/Å, or relaxed structures only)


def suspicious_labels(structures, energy_z: float = 25.0, force_ratio: float = 30.0) -> list[tuple[int, str]]:
    """(index, reason) of every structure whose labels look corrupted."""
    flagged: dict[int, list[str]] = {}
    labelled = [k for k, s in enumerate(structures) if s.energy is not None]
    if len(labelled) >= MIN_STRUCTURES:
        elements = sorted({int(z) for k in labelled for z in structures[k].numbers})
        counts = np.array([[np.sum(structures[k].numbers == z) for z in elements] for k in labelled], dtype=float)
        energies = np.array([structures[k].energy for k in labelled])
        design = np.hstack([counts, np.ones((len(labelled), 1))])
        residual = (energies - design @ np.linalg.lstsq(design, energies, rcond=None)[0]) / counts.sum(axis=1)
        centre = np.median(residual)
        spread = 1.4826 * np.median(np.abs(residual - centre))
        if spread > 0:
            for k, r in zip(labelled, residual):
                z = abs(r - centre) / spread
                if z > energy_z:
                    flagged.setdefault(k, []).append(
                        f"energy {1000 * (r - centre):+.4g} meV/atom from the composition fit's median (robust z {z:.3g} > {energy_z:g})"
                    )
    with_forces = [k for k, s in enumerate(structures) if s.forces is not None]
    if len(with_forces) >= MIN_STRUCTURES:
        rms = np.array([np.sqrt(np.mean(structures[k].forces ** 2)) for k in with_forces])
        median = np.median(rms)
        if median > 0:
            for k, value in zip(with_forces, rms):
                if value > force_ratio * median:
                    flagged.setdefault(k, []).append(
                        f"RMS force {value:.4g} eV/Å, {value / median:.3g}× the median {median:.3g} (> {force_ratio:g}×)"
                    )
    return [(k, "; ".join(reasons)) for k, reasons in sorted(flagged.items())]


def screen(structures, policy: str = "error", energy_z: float = 25.0, force_ratio: float = 30.0, console=None) -> list:
    """Apply the screen: `error` refuses the set naming the frames, `exclude` drops them
    (and says so), `keep` trains on them (and says so)."""
    if policy not in OUTLIER_POLICIES:
        raise ValueError(f"data.outliers: {policy!r}; expected one of {list(OUTLIER_POLICIES)}")
    suspects = suspicious_labels(structures, energy_z, force_ratio)
    if not suspects:
        return structures
    listing = "\n".join(f"  {structures[k].source or f'structure {k + 1}'}: {reason}" for k, reason in suspects[:20])
    more = f"\n  … and {len(suspects) - 20} more" if len(suspects) > 20 else ""
    if policy == "error":
        raise ValueError(
            f"{len(suspects)} structure(s) have labels far outside the rest of the data set:\n{listing}{more}\n"
            "check them; to train without them set data.outliers: exclude, to train on them anyway data.outliers: keep"
        )
    if console is not None:
        action = "excluded from training" if policy == "exclude" else "kept (data.outliers: keep)"
        console.print(f"[bold yellow]{len(suspects)} structure(s) with suspicious labels {action}:[/]\n{listing}{more}", soft_wrap=True)
    if policy == "exclude":
        dropped = {k for k, _ in suspects}
        return [s for k, s in enumerate(structures) if k not in dropped]
    return structures


def check_units(structures, source: str, console=None) -> list:
    """Refuse a file whose forces cannot be in eV/Å (after the reader's unit conversion),
    naming the unit keys; report one whose forces are implausibly small. Returns `structures`."""
    forces = [s.forces.ravel() for s in structures if s.forces is not None]
    if not forces:
        return structures
    median = float(np.median(np.abs(np.concatenate(forces))))
    per_atom = [s.energy / len(s.numbers) for s in structures if s.energy is not None]
    spread = f", energy per atom spread (std) {np.std(per_atom):.3g} eV/atom" if len(per_atom) > 1 else ""
    numbers = f"{source}: median |force component| {median:.3g} eV/Å{spread}"
    if median > MAX_MEDIAN_FORCE:
        raise ValueError(
            f"{numbers}; eV/Å data sets have a median of 0.3–0.7 eV/Å, and a file in kcal/mol reads 23× larger. "
            "If the file is in other units, say so: data.energy_unit: kcal/mol (or hartree, with data.length_unit: bohr). "
            "If these forces are right, set data.check_units: false"
        )
    if median < MIN_MEDIAN_FORCE and console is not None:
        console.print(
            f"[bold yellow]note:[/] {numbers}, unusually small for eV/Å data: near-equilibrium structures only, "
            "or a file in Hartree/Bohr (set data.energy_unit: hartree and data.length_unit: bohr)",
            soft_wrap=True,
        )
    return structures
