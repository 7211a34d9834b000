"""Screened nuclear repulsion (Ziegler, Biersack & Littmark, The Stopping and Range of Ions
in Solids, 1985) where the training data stop: the physics a fitted model hands over to
at short range.

For a pair of elements with atomic numbers Z_a, Z_b at distance r (Å, eV):

    E_ZBL(r) = k Z_a Z_b / r · φ(r / a),   a = 0.46850 / (Z_a^0.23 + Z_b^0.23),   k = 14.399645 eV Å
    φ(x)     = 0.18175 e^(−3.19980 x) + 0.50986 e^(−0.94229 x) + 0.28022 e^(−0.40290 x) + 0.02817 e^(−0.20162 x)

switched off between an inner radius r_1 and an outer r_c exactly as LAMMPS's
`pair_style zbl inner outer` does, so that a LAMMPS run with `hybrid/overlay … zbl`
carries it to the last bit of its formula:

    E(r) = E_ZBL(r) + C + [r > r_1] (A/3 t³ + B/4 t⁴),   t = r − r_1,   E = 0 for r ≥ r_c
    A = (−3 E'_c + τ E''_c)/τ²,   B = (2 E'_c − τ E''_c)/τ³,   C = −E_c + τ E'_c/2 − τ² E''_c/12

with τ = r_c − r_1 and E_c, E'_c, E''_c the unswitched E_ZBL and its derivatives at r_c: E,
E' and E'' reach zero at r_c (C², no force kink) and the switch adds nothing to the force
below r_1.

Each element pair has its own r_c: the shortest distance of that pair in the training data
(`set_from_shortest_distances`), so the repulsion is exactly zero on every training structure
and the fit made on top of it sees its own data unchanged; r_1 = 0.75 r_c, where the
descriptors have let go of the pair (descriptors/cutoff.py's inner switch), so that the two
hand over across the same range. A pair the data never bring within the cutoff takes 0.6 × the
sum of the two covalent radii.
"""

from __future__ import annotations

import torch
from ase.data import atomic_numbers, covalent_radii
from torch import Tensor

from forcefit.descriptors.cutoff import INNER_END

COULOMB = 14.399645  # e²/(4π ε0) in eV Å: LAMMPS's qqr2e in units metal
SCREENING = ((0.18175, 3.19980), (0.50986, 0.94229), (0.28022, 0.40290), (0.02817, 0.20162))
INNER_FRACTION = INNER_END  # r_1 = INNER_FRACTION × r_c: fully on where the descriptors no longer see the pair
UNSEEN_FRACTION = 0.6  # r_c of a pair absent from the data: this × the sum of covalent radii


class CoreRepulsion(torch.nn.Module):
    """Per element pair ZBL with LAMMPS's switch; `outer` (n_elements, n_elements) Å, symmetric."""

    def __init__(self, elements: list[str], outer: Tensor | None = None):
        super().__init__()
        self.elements = list(elements)
        z = torch.tensor([float(atomic_numbers[e]) for e in self.elements], dtype=torch.float64)
        self.register_buffer("charge", z, persistent=False)
        if outer is None:
            outer = UNSEEN_FRACTION * self.covalent_sums()
        self.register_buffer("outer", outer.double().clone())

    def covalent_sums(self) -> Tensor:
        radii = torch.tensor([covalent_radii[atomic_numbers[e]] for e in self.elements], dtype=torch.float64)
        return radii[:, None] + radii[None, :]

    def set_from_shortest_distances(self, shortest: Tensor) -> None:
        """r_c per element pair from the training data's shortest distances (inf: never seen)."""
        fallback = UNSEEN_FRACTION * self.covalent_sums()
        with torch.no_grad():
            self.outer.copy_(torch.where(torch.isfinite(shortest), shortest.double(), fallback))

    def radii(self, a: int, b: int) -> tuple[float, float]:
        """(r_1, r_c) of the pair of element indices a, b, Å."""
        outer = float(self.outer[a, b])
        return INNER_FRACTION * outer, outer

    def _unswitched(self, r: Tensor, za: Tensor, zb: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """E_ZBL, dE/dr and d²E/dr² at r."""
        inverse_a = (za**0.23 + zb**0.23) / 0.46850
        prefactor = COULOMB * za * zb
        phi = dphi = d2phi = torch.zeros_like(r)
        for c, d in SCREENING:
            e = c * torch.exp(-d * inverse_a * r)
            phi, dphi, d2phi = phi + e, dphi - d * inverse_a * e, d2phi + (d * inverse_a) ** 2 * e
        energy = prefactor * phi / r
        slope = prefactor * (dphi / r - phi / r**2)
        curvature = prefactor * (d2phi / r - 2.0 * dphi / r**2 + 2.0 * phi / r**3)
        return energy, slope, curvature

    def pair_energies(self, r: Tensor, species_a: Tensor, species_b: Tensor) -> tuple[Tensor, Tensor]:
        """E(r) and dE/dr per pair (n_pairs,), zero at r ≥ r_c of the pair's elements. Only the
        pairs inside r_c are evaluated: in a structure like the data, none (one comparison)."""
        energy, slope = torch.zeros_like(r), torch.zeros_like(r)
        inside = torch.nonzero(r < self.outer[species_a, species_b].to(r)).squeeze(1)
        if inside.numel() == 0:
            return energy, slope
        a, b, x = species_a[inside], species_b[inside], r[inside]
        za, zb, outer = self.charge[a].to(r), self.charge[b].to(r), self.outer[a, b].to(r)
        inner = INNER_FRACTION * outer
        e_x, d_x, _ = self._unswitched(x, za, zb)
        e_c, d_c, dd_c = self._unswitched(outer, za, zb)
        tau = outer - inner
        A = (-3.0 * d_c + tau * dd_c) / tau**2
        B = (2.0 * d_c - tau * dd_c) / tau**3
        C = -e_c + 0.5 * tau * d_c - tau**2 * dd_c / 12.0
        t = (x - inner).clamp(min=0.0)
        energy[inside] = e_x + C + t**3 * (A / 3.0 + B / 4.0 * t)
        slope[inside] = d_x + t**2 * (A + B * t)
        return energy, slope

    def energies_and_pair_gradients(self, species: Tensor, vectors: Tensor, pair_i: Tensor, pair_j: Tensor) -> tuple[Tensor, Tensor]:
        """Atom energies (n_atoms,) eV, half of each pair's E on each side of the full list, and
        ∂E/∂r_p (n_pairs, 3) for the one helper that makes forces and stress (models/forces.py)."""
        r = torch.linalg.vector_norm(vectors, dim=1)
        energy, slope = self.pair_energies(r, species[pair_i], species[pair_j])
        atoms = vectors.new_zeros(species.shape[0]).index_add(0, pair_i, 0.5 * energy)
        return atoms, (0.5 * slope / r)[:, None] * vectors
