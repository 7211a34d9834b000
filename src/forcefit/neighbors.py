"""Neighbour pairs (with periodic image shifts) and angular triplets.

Pairs come from vesin (O(N) cell lists), full list: both i→j and j→i, including
an atom's own periodic images, and correct when the cutoff exceeds half the cell
(vesin returns every image within the cutoff). The displacement of pair p is

    r_p = positions[j_p] − positions[i_p] + shifts_p @ cell       (Å)

A triplet (p, q) is two pairs with the same centre i and p < q, i.e. an
unordered pair of neighbours {j, k} of i; the angle θ_jik is between r_p and r_q.
Everything here is computed once per structure, in NumPy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import vesin

from forcefit.structures import Structure


@dataclass
class Neighbors:
    """pair_i, pair_j: (n_pairs,) atom indices; shifts: (n_pairs, 3) integer
    lattice shifts; triplet_p, triplet_q: (n_triplets,) indices into the pairs."""

    pair_i: np.ndarray
    pair_j: np.ndarray
    shifts: np.ndarray
    triplet_p: np.ndarray
    triplet_q: np.ndarray


def neighbor_pairs(structure: Structure, cutoff: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All ordered pairs (i, j, shift) with |r_ij| < cutoff, sorted by i then j.

    vesin handles free, mixed and full periodic boundaries (free axes may have a
    zero lattice vector)."""
    i, j, shifts = vesin.NeighborList(cutoff=cutoff, full_list=True).compute(
        points=structure.positions,
        box=structure.cell,
        periodic=[bool(p) for p in structure.pbc],
        quantities="ijS",
    )
    order = np.argsort(i.astype(np.int64) * len(structure.positions) + j, kind="stable")  # by i, then j (as lexsort, twice as fast)
    return i[order].astype(np.int64), j[order].astype(np.int64), np.asarray(shifts, dtype=np.int64)[order]


# Limits of one neighbour list, by the memory of its index arrays (a pair: i, j, shift and its
# vector, 64 B; a triplet: two pair indices, 16 B): 2e8 triplets are 3.2 GB. The evaluation itself
# runs in chunks of bounded memory (models/forces.py). Raise the limits with the environment variables.
BYTES_PER_PAIR, BYTES_PER_TRIPLET = 64, 16
MAX_PAIRS = int(float(os.environ.get("FORCEFIT_MAX_PAIRS", 5e7)))
MAX_TRIPLETS = int(float(os.environ.get("FORCEFIT_MAX_TRIPLETS", 2e8)))


def estimate_neighbors(structure: Structure, cutoff: float, angular_cutoff: float = 0.0) -> tuple[float, float]:
    """Expected numbers of pairs and triplets from the atom density, before building them.

    Periodic along all axes: each atom sees n·(4/3)π r_c³ neighbours (images included),
    n = N/V; otherwise at most N − 1 per atom (each periodic axis multiplies by the
    images within r_c along it)."""
    n = structure.n_atoms
    if structure.pbc.all():
        density = n / abs(np.linalg.det(structure.cell))
        per_atom = density * 4.0 / 3.0 * np.pi * cutoff**3
        angular = density * 4.0 / 3.0 * np.pi * angular_cutoff**3
    else:
        images = np.prod([2 * np.ceil(cutoff / np.linalg.norm(v)) + 1 for v, p in zip(structure.cell, structure.pbc) if p] or [1.0])
        per_atom = angular = n * images - 1.0
    return n * per_atom, n * angular * angular / 2.0


def check_size(structure: Structure, cutoff: float, angular_cutoff: float = 0.0) -> None:
    """Refuse, with the numbers, a neighbour list that would exhaust memory."""
    pairs, triplets_ = estimate_neighbors(structure, cutoff, angular_cutoff)
    where = f" ({structure.source})" if structure.source else ""
    if pairs > MAX_PAIRS or triplets_ > MAX_TRIPLETS:
        raise ValueError(
            f"structure{where}: a cutoff of {cutoff:g} Å (angular {angular_cutoff:g} Å) on {structure.n_atoms} atoms would give about "
            f"{pairs:.3g} pairs and {triplets_:.3g} triplets (limits {MAX_PAIRS:.3g} and {MAX_TRIPLETS:.3g}, about "
            f"{(pairs * BYTES_PER_PAIR + triplets_ * BYTES_PER_TRIPLET) / 1e9:.3g} GB of neighbour indices): choose a smaller cutoff, or raise the limits with the environment "
            "variables FORCEFIT_MAX_PAIRS and FORCEFIT_MAX_TRIPLETS"
        )


def triplets(pair_i: np.ndarray, pair_mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (p, q), p < q, of pairs sharing a centre; pairs sorted by centre.

    `pair_mask` limits the triplets to pairs inside the angular cutoff.
    """
    candidates = np.arange(len(pair_i)) if pair_mask is None else np.flatnonzero(pair_mask)
    centres = pair_i[candidates]
    if len(candidates) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    boundaries = np.flatnonzero(np.diff(centres)) + 1
    starts = np.concatenate(([0], boundaries))
    counts = np.diff(np.concatenate((starts, [len(centres)])))
    position = np.arange(len(centres)) - np.repeat(starts, counts)
    partners = np.repeat(counts, counts) - position - 1  # later pairs of the same centre
    first = np.repeat(np.arange(len(centres)), partners)
    group_start = np.repeat(np.cumsum(partners) - partners, partners)
    second = first + 1 + (np.arange(len(first)) - group_start)
    return candidates[first], candidates[second]


def build_neighbors(structure: Structure, cutoff: float, angular_cutoff: float | None = None) -> Neighbors:
    """Pairs within `cutoff` and triplets whose two legs are within `angular_cutoff`
    (refused up front when they would not fit in memory: check_size)."""
    check_size(structure, cutoff, angular_cutoff or 0.0)
    pair_i, pair_j, shifts = neighbor_pairs(structure, cutoff)
    if angular_cutoff is None or angular_cutoff <= 0:
        empty = np.zeros(0, dtype=np.int64)
        return Neighbors(pair_i, pair_j, shifts, empty, empty)
    vectors = structure.positions[pair_j] - structure.positions[pair_i] + shifts @ structure.cell
    inside = np.linalg.norm(vectors, axis=1) < angular_cutoff
    p, q = triplets(pair_i, inside)
    return Neighbors(pair_i, pair_j, shifts, p, q)
