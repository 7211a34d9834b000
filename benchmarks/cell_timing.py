"""The 64-atom diamond Si cell and the timing loop `pareto.py` uses, with nothing but ASE
and the standard library, so that a peer's own environment (MACE pins another e3nn than
forcefit) times its calculator on exactly the same cell in exactly the same way:

    python benchmarks/cell_timing.py mace MODEL REPEATS   # in the MACE environment: prints the median ms
"""

from __future__ import annotations

import statistics
import sys
import time


def si_cell(repeat: int = 2):
    """A rattled diamond Si cell of 8 · repeat³ atoms (64 by default; a = 5.43 Å, 0.05 Å rattle, seed 0)."""
    from ase.build import bulk

    atoms = bulk("Si", "diamond", a=5.43, cubic=True).repeat(repeat)
    atoms.rattle(0.05, seed=0)
    return atoms


def median_ms(cells: list, repeats: int) -> list[float]:
    """Median ms of one energy + forces evaluation per cell (each with its calculator), the
    cells interleaved call by call (a drift of the machine then moves them alike), a new
    geometry each call, the first three calls of each left out (warm-up)."""
    times = [[] for _ in cells]
    for n in range(repeats + 3):
        for atoms, spent in zip(cells, times):
            atoms.positions[0, 0] += 1e-4
            started = time.perf_counter()
            atoms.get_potential_energy(), atoms.get_forces()
            if n >= 3:
                spent.append(time.perf_counter() - started)
    return [1000.0 * statistics.median(spent) for spent in times]


if __name__ == "__main__" and sys.argv[1:2] == ["mace"]:
    import torch
    from mace.calculators import MACECalculator

    torch.set_num_threads(1)
    cell = si_cell()
    cell.calc = MACECalculator(model_paths=sys.argv[2], device="cpu", default_dtype="float64")
    print(median_ms([cell], int(sys.argv[3]))[0])
