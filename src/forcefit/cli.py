"""Command line: parse, load, call the library. Nothing else lives here.

    forcefit train config.yaml [--resume] [--output DIR]
    forcefit evaluate model.ffm data.extxyz [--energy-key K] [--forces-key K] [--output DIR]
    forcefit md model.ffm structure.xyz [--steps N] [--timestep FS] [--temperature K]
    forcefit import-n2p2 DIR -o model.ffm --length-unit bohr --energy-unit hartree
    forcefit export-n2p2 model.ffm DIR [--length-unit U] [--energy-unit U]
    forcefit lj-two-point --r0 R --energy U --force F
    forcefit export-lammps model.ffm pair.lammps
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console


def _train(args, console):
    from forcefit.config import load_config
    from forcefit.training.run import train_from_config

    config = load_config(args.config)
    if args.output:
        config.output = args.output
    train_from_config(config, resume=args.resume, console=console)


def _evaluate(args, console):
    from forcefit.io import read_structures
    from forcefit.models.saving import load_model
    from forcefit.training.run import evaluate_splits, prepare

    model = load_model(args.model)
    options = (
        {"length_unit": args.length_unit, "energy_unit": args.energy_unit}
        if str(args.data).endswith(".data")
        else {"energy_key": args.energy_key, "forces_key": args.forces_key}
    )
    structures = read_structures(args.data, **options)
    run_dir = Path(args.output) if args.output else None
    if run_dir:
        run_dir.mkdir(parents=True, exist_ok=True)
    evaluate_splits(model, {Path(args.data).name: prepare(model, structures)}, run_dir, console)


def _md(args, console):
    from ase.io import read

    from forcefit.calculator import Calculator
    from forcefit.workflows.md import run_nve

    atoms = read(args.structure, index=args.index)
    result = run_nve(atoms, Calculator.load(args.model), steps=args.steps, timestep_fs=args.timestep,
                     temperature_K=args.temperature, seed=args.seed, trajectory=args.trajectory)
    console.print(
        f"NVE {args.steps} steps × {args.timestep} fs ({len(atoms)} atoms): mean T {result.temperature.mean():.0f} K, "
        f"energy drift {result.drift:+.3f} meV/atom/ps, fluctuation {result.fluctuation:.3f} meV/atom"
    )


def _import_n2p2(args, console):
    from forcefit.config import unit_value
    from forcefit.io.n2p2 import load_potential
    from forcefit.models.saving import save_model

    model = load_potential(args.directory, length_unit=unit_value(args.length_unit, "--length-unit"),
                           energy_unit=unit_value(args.energy_unit, "--energy-unit"))
    save_model(model, args.output, metadata={"imported_from": str(args.directory)})
    console.print(f"{args.directory}: {model.elements}, {model.descriptor.n_features_per_element} symmetry functions, "
                  f"cutoff {model.cutoff:.4f} Å → {args.output}")


def _export_n2p2(args, console):
    from forcefit.config import unit_value
    from forcefit.io.n2p2 import save_potential
    from forcefit.models.saving import load_model

    save_potential(load_model(args.model), args.directory, length_unit=unit_value(args.length_unit, "--length-unit"),
                   energy_unit=unit_value(args.energy_unit, "--energy-unit"))
    console.print(f"wrote input.nn, scaling.data and weights.NNN.data to {args.directory}")


def _lj_two_point(args, console):
    from forcefit.models.pair import lj_from_two_points

    p = lj_from_two_points(args.r0, args.energy, args.force)
    console.print(f"A = {p['A']:.10g} eV Å¹²   B = {p['B']:.10g} eV Å⁶   ε = {p['epsilon']:.10g} eV   σ = {p['sigma']:.10g} Å", highlight=False)


def _export_lammps(args, console):
    from forcefit.io.lammps import write_lammps
    from forcefit.models.saving import load_model

    path = write_lammps(load_model(args.model), args.output)
    console.print(f"wrote {path} (include it after read_data; units metal)")


def _unit(text: str):
    try:
        return float(text)
    except ValueError:
        return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="forcefit", description="Fit interatomic potentials to quantum reference data.")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a model from a YAML config")
    train.add_argument("config")
    train.add_argument("--resume", action="store_true", help="continue from the run directory's checkpoint")
    train.add_argument("--output", help="run directory (overrides the config's output)")
    train.set_defaults(run=_train)

    evaluate = commands.add_parser("evaluate", help="error table and parity plots of a model on a dataset")
    evaluate.add_argument("model")
    evaluate.add_argument("data")
    evaluate.add_argument("--energy-key", default="energy")
    evaluate.add_argument("--forces-key", default="forces")
    evaluate.add_argument("--length-unit", type=float, default=1.0, help="input.data only: Å per file length unit")
    evaluate.add_argument("--energy-unit", type=float, default=1.0, help="input.data only: eV per file energy unit")
    evaluate.add_argument("--output", help="directory for errors.txt, metrics.json and parity plots")
    evaluate.set_defaults(run=_evaluate)

    md = commands.add_parser("md", help="NVE molecular dynamics with a model; reports energy drift")
    md.add_argument("model")
    md.add_argument("structure", help="any file ASE reads")
    md.add_argument("--index", default="0", help="frame of the structure file (default: 0)")
    md.add_argument("--steps", type=int, default=2000)
    md.add_argument("--timestep", type=float, default=0.5, help="fs")
    md.add_argument("--temperature", type=float, default=300.0, help="initial Maxwell–Boltzmann temperature, K")
    md.add_argument("--seed", type=int, default=0)
    md.add_argument("--trajectory", help="ASE .traj file to write")
    md.set_defaults(run=_md)
    importer = commands.add_parser("import-n2p2", help="convert an n2p2 potential directory into a forcefit model")
    importer.add_argument("directory")
    importer.add_argument("-o", "--output", required=True, help="model file to write (.ffm)")
    importer.add_argument("--length-unit", type=_unit, required=True, help="Å per file length unit, or 'bohr'/'angstrom'")
    importer.add_argument("--energy-unit", type=_unit, required=True, help="eV per file energy unit, or 'hartree'/'ev'")
    importer.set_defaults(run=_import_n2p2)

    exporter = commands.add_parser("export-n2p2", help="write a forcefit BPNN as n2p2 input.nn/scaling.data/weights files")
    exporter.add_argument("model")
    exporter.add_argument("directory")
    exporter.add_argument("--length-unit", type=_unit, default=1.0, help="Å per file length unit (default Å)")
    exporter.add_argument("--energy-unit", type=_unit, default=1.0, help="eV per file energy unit (default eV)")
    exporter.set_defaults(run=_export_n2p2)
    two_point = commands.add_parser("lj-two-point", help="exact Lennard-Jones A, B, ε, σ through one (r0, U0, F0) point")
    two_point.add_argument("--r0", type=float, required=True, help="distance, Å")
    two_point.add_argument("--energy", type=float, required=True, help="pair energy U(r0), eV")
    two_point.add_argument("--force", type=float, required=True, help="pair force F(r0) = −dU/dr, eV/Å (positive = repulsive)")
    two_point.set_defaults(run=_lj_two_point)

    lammps = commands.add_parser("export-lammps", help="write a pair potential as a LAMMPS input snippet")
    lammps.add_argument("model")
    lammps.add_argument("output", help="snippet file to write (a pair_style table also writes OUTPUT.table)")
    lammps.set_defaults(run=_export_lammps)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console()
    try:
        args.run(args, console)
    except (ValueError, FileNotFoundError, FileExistsError, FloatingPointError) as err:
        Console(stderr=True).print(f"[bold red]error:[/] {err}", soft_wrap=True, highlight=False)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
