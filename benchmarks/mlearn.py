"""mlearn benchmark (Zuo et al., J. Phys. Chem. A 124, 731 (2020)): train forcefit's model
families on {Si,Mo}_train.extxyz, report test energy MAE (meV/atom), force MAE (eV/Å) and
wall time (one thread: descriptors, fit and evaluation), next to the published n2p2 NNP and
MTP figures and n2p2 trained here.

    python benchmarks/mlearn.py [--elements Si Mo] [--families bpnn ace-linear ace-bpnn]
                                [--max-seconds S] [--threads 1] [--set section.key=value ...]
                                [--stress-weight W] [--validation-only] [--tag NAME]

Families: `bpnn` (Behler–Parrinello networks on symmetry functions), `ace-linear` (the linear
model on body-ordered invariants, ridge in closed form), `ace-bpnn` (networks on those
invariants). Settings are chosen on validation (`--validation-only` reports validation errors
and never reads the test file; docs/accuracy-log.md logs every run); a run
without it evaluates the test set once, with the chosen settings.

Validation is a random 10% of the training file (its tail is all "Elastic" frames) for the
networks; the linear model's settings are chosen by 5-fold cross-validation over the whole
training file (`training.cross_validation`), and with `--validation-only` its out-of-fold
errors are reported.

`--stress-weight W` trains on the DFT stresses too (kept in the files as
`virial_stress_kbar_mlearn`, read with `stress_format: vasp-kbar`). For Si every run
also reports the fitted model's elastic constants and bulk modulus of diamond Si next
to DFT's, which come from the same data: the slopes of the DFT stress against strain
over the "Elastic" frames with |strain| ≤ 2 % (their ions are not relaxed, so the DFT
C44 is the clamped-ion one and is compared with the model's clamped-ion C44).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from ase import units
from ase.build import bulk
from rich.console import Console

from forcefit.config import Config, DataConfig, TrainingConfig, config_from_dict, model_settings
from forcefit.run import train_from_config

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "mlearn"
REFERENCE = {  # test E MAE meV/atom, F MAE eV/Å
    "Si": {"n2p2 NNP (mlearn)": (5.63, 0.109), "n2p2 trained here (860 s)": (10.4, 0.0995), "MTP": (2.21, 0.06)},
    "Mo": {"n2p2 NNP (mlearn)": (3.65, 0.125), "MTP": (2.83, 0.09)},
}


# Settings per model family and element (each system gets its own descriptors and weights,
# as n2p2 potentials do); every run behind these choices is logged in docs/accuracy-log.md.
SYMMETRY_FUNCTION_BPNN = dict(cutoff_type="tanh", angular_kind="wide", activation="tanh")
CROSS_VALIDATION = dict(folds=5, energy_weights=[1e3, 3e3, 1e4, 3e4, 1e5], ridges=[1e-8, 1e-6, 1e-4], smoothness=[0, 2])
# one basis for both crystals (chosen by cross-validation, docs/accuracy-log.md) with the closed
# form's weights chosen again by cross-validation for each; Mo's studies (cvJ–cvL) moved its
# cutoff to 6.0 Å (CV score 1.13 at 5.2 Å, 1.00 at 6.0, 1.01 at 6.5) and found its optimum at
# heavier energy weights, so its grid reaches 1e6 and picks the setting closest to both targets
LINEAR_ACE = dict(
    model=dict(
        kind="linear",
        descriptor="ace",
        r_min=1.5,
        ace=dict(n_radial=10, l_max=6, n_radial_4=5, l_max_4=4, body_order=5, n_radial_5=3, l_max_5=2),
    ),
    training=dict(optimizer="ridge", cross_validation=CROSS_VALIDATION),
)
LINEAR_ACE_MO = dict(
    model=dict(LINEAR_ACE["model"], cutoff=6.0),
    training=dict(
        LINEAR_ACE["training"], cross_validation=dict(CROSS_VALIDATION, energy_weights=[1e4, 3e4, 1e5, 3e5, 1e6], targets=[2.2, 90.0])
    ),
)
ACE_BPNN = dict(
    model=dict(descriptor="ace", r_min=1.5, activation="tanh", hidden=[48, 48], ace=dict(n_radial=6, l_max=4, n_radial_4=3, l_max_4=2)),
    training=dict(epochs=1000, energy_weight=20000.0, early_stopping=400),
)
SETTINGS = {
    "bpnn": {
        "Si": dict(
            model=dict(**SYMMETRY_FUNCTION_BPNN, r_min=1.5, n_radial=12, n_angular=5, zetas=[1.0, 4.0], hidden=[48, 48]),
            training=dict(epochs=1000, energy_weight=20000.0, early_stopping=400),
        ),
        "Mo": dict(
            model=dict(
                **SYMMETRY_FUNCTION_BPNN,
                r_min=2.0,
                n_radial=16,
                n_angular=6,
                angular_grid="shifted",
                zetas=[1.0, 2.0, 4.0, 16.0],
                hidden=[64, 64],
            ),
            training=dict(
                epochs=1600,
                energy_weight=5000.0,
                early_stopping=600,
                stage_two_epochs=300,
                stage_two_energy_weight=100000.0,
                stage_two_learning_rate=2e-4,
            ),
        ),
    },
    "ace-linear": {  # λ, w_E and the smoothness prior chosen by 5-fold cross-validation over the whole training file
        "Si": LINEAR_ACE,
        "Mo": LINEAR_ACE_MO,
    },
    "ace-bpnn": {  # set before any test run, not tuned: the Si symmetry-function network's size and weights
        "Si": ACE_BPNN,
        "Mo": ACE_BPNN,
    },
}
LABELS = {"bpnn": "BPNN on symmetry functions", "ace-linear": "linear on ACE (closed form)", "ace-bpnn": "BPNN on ACE"}


def config_for(family: str, element: str, max_seconds: float | None, out: Path) -> Config:
    settings = SETTINGS[family][element]
    closed_form = settings["training"].get("optimizer") == "ridge"
    trainer = {} if closed_form else dict(batch_size=4, learning_rate=2e-3, lr_patience=60, lr_factor=0.5, max_seconds=max_seconds)
    # cross-validation holds out every training structure in turn: no separate validation split
    split = [1.0, 0.0, 0.0] if settings["training"].get("cross_validation") else [0.9, 0.1, 0.0]
    return Config(
        data=DataConfig(train=str(SHARED / f"{element}_train.extxyz"), test=str(SHARED / f"{element}_test.extxyz"), split=split),
        model=model_settings(**{"cutoff": 5.2, **settings["model"]}),
        training=TrainingConfig(**trainer, **settings["training"]),
        output=str(out / (f"mlearn_{element}" + ("" if family == "bpnn" else f"_{family}"))),
    )


def dft_elastic_constants(path: Path) -> dict:
    """C11, C12, clamped-ion C44 and B (GPa) from the DFT stress-strain slopes of the
    "Elastic" frames (mode 0 strains xx, mode 3 shears one angle), |strain| ≤ 0.02."""
    import re

    from ase.io import read

    from forcefit.io.extxyz import stress_tensor

    frames = [a for a in read(path, index=":") if a.info.get("group") == "Elastic"]
    ground = next(a for a in frames if "Ground state" in a.info["description"])
    slopes = {}
    for mode in (0, 3):
        chosen = [ground] + [
            a
            for a in frames
            if (m := re.search(r"mode (\d+), strain ([-\d.]+)", a.info["description"]))
            and int(m.group(1)) == mode
            and abs(float(m.group(2))) <= 0.021
        ]
        strains, stresses = [], []
        for a in chosen:
            deformation = np.linalg.solve(ground.cell.array, a.cell.array)
            strains.append(0.5 * (deformation + deformation.T) - np.eye(3))
            stresses.append(stress_tensor(a.info["virial_stress_kbar_mlearn"], "vasp-kbar") / units.GPa)
        strains, stresses = np.array(strains), np.array(stresses)
        if mode == 0:
            slopes["C11"] = np.polyfit(strains[:, 0, 0], stresses[:, 0, 0], 1)[0]
            slopes["C12"] = np.polyfit(strains[:, 0, 0], stresses[:, 1, 1], 1)[0]
        else:  # the sheared pair (a, b): engineering strain 2ε_ab
            a, b = divmod(int(np.argmax(np.abs(strains).max(axis=0) * (1 - np.eye(3)))), 3)
            slopes["C44_clamped"] = np.polyfit(2 * strains[:, a, b], stresses[:, a, b], 1)[0]
    slopes["B"] = (slopes["C11"] + 2 * slopes["C12"]) / 3
    return {k: float(v) for k, v in slopes.items()}


def model_elastic_constants(model) -> dict:
    """C11, C12, C44 (relaxed ions), clamped-ion C44 and B (GPa) of diamond Si with the model."""
    from forcefit.calculator import Calculator
    from forcefit.workflows.properties import elastic_constants, relax

    calculator = Calculator(model)
    crystal = relax(bulk("Si", "diamond", a=5.4687, cubic=True), calculator, cell=True, fmax=1e-5)
    relaxed = elastic_constants(crystal, calculator)
    clamped = elastic_constants(crystal, calculator, relax_ions=False)
    return {
        "a0": float(crystal.cell.lengths()[0]),
        "C11": float(relaxed[0, 0]),
        "C12": float(relaxed[0, 1]),
        "C44": float(relaxed[3, 3]),
        "C44_clamped": float(clamped[3, 3]),
        "B": float((relaxed[0, 0] + 2 * relaxed[0, 1]) / 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--elements", nargs="+", default=["Si", "Mo"])
    parser.add_argument("--families", nargs="+", default=["bpnn"], choices=sorted(SETTINGS), help="model families, side by side")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=None,
        help="wall-time budget of the main training stage (default: none; a fixed epoch count keeps runs reproducible)",
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="runs/benchmarks")
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override settings, e.g. training.energy_weight=2e4 model.hidden=[64,64]",
    )
    parser.add_argument("--stress-weight", type=float, default=0.0, help="train on the DFT stresses with this loss weight (eV/Å³ units)")
    parser.add_argument(
        "--validation-only",
        action="store_true",
        help="studies: report validation errors and leave the test set untouched (it is evaluated once, with the chosen settings)",
    )
    parser.add_argument("--tag", default="", help="suffix of the result files (runs with other settings side by side)")
    parser.add_argument(
        "--resume", action="store_true", help="continue interrupted runs from their checkpoints (wall time then counts this process only)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    console = Console()
    results = {}
    split = "validation" if args.validation_only else "test"
    missing = [f"{family} on {element}" for element in args.elements for family in args.families if element not in SETTINGS[family]]
    if missing:
        parser.error(f"no settings for {', '.join(missing)} (SETTINGS in {Path(__file__).name})")
    runs = [(element, family) for element in args.elements for family in args.families]
    for element, family in runs:
        values = config_for(family, element, args.max_seconds, Path(args.out)).to_dict()
        values["data"].update(stress_key="virial_stress_kbar_mlearn", stress_format="vasp-kbar")  # reported; trained on only with a weight
        values["training"]["stress_weight"] = args.stress_weight
        values["output"] += f"_{args.tag}" if args.tag else ""
        if args.validation_only:
            values["data"]["test"] = None
        for item in args.set:
            key, value = item.split("=", 1)
            section, name = key.split(".")
            values[section][name] = yaml.safe_load(value)
        config = config_from_dict(values, "--set")  # checks names and converts numbers
        if Path(config.output).exists() and not args.resume:
            shutil.rmtree(config.output)
        started = time.perf_counter()
        model, stats = train_from_config(config, resume=args.resume, console=console)
        wall = time.perf_counter() - started
        result = {
            "element": element,
            "family": family,
            "model": model.summary(),
            "model_file": str(Path(config.output) / "model.ffm"),
            "wall_seconds": wall,
        }
        chosen = Path(config.output) / "cross_validation.json"
        if config.training.cross_validation:  # the closed form's setting, chosen on out-of-fold errors
            result["cross_validation"] = json.loads(chosen.read_text())["chosen"]
        if args.validation_only and config.training.cross_validation:
            cv = result["cross_validation"]
            result.update(energy_mae=cv["energy_mae"], forces_mae=cv["forces_mae"] / 1000.0, stress_mae_GPa=float("nan"))
        else:
            result.update(
                energy_mae=stats[split]["energy_mae"],
                forces_mae=stats[split]["forces_mae"] / 1000.0,
                stress_mae_GPa=stats[split]["stress_mae"],
            )
        if element == "Si":
            result["elastic_GPa"] = model_elastic_constants(model)
            result["dft_elastic_GPa"] = dft_elastic_constants(SHARED / "Si_train.extxyz")
        results[f"{element} {family}"] = result
    extra = f", stress weight {args.stress_weight:g}" if args.stress_weight else ""
    label = lambda r: f"forcefit {LABELS[r['family']]} ({args.threads} thread{extra})"  # noqa: E731
    lines = [
        f"| element | model | {split} E MAE (meV/atom) | {split} F MAE (eV/Å) | {split} σ MAE (GPa) | wall time |",
        "|---|---|---|---|---|---|",
    ]
    for element in args.elements:
        for r in (r for r in results.values() if r["element"] == element):
            lines.append(
                f"| {element} | {label(r)} | {r['energy_mae']:.2f} | {r['forces_mae']:.3f} | {r['stress_mae_GPa']:.3f} | {r['wall_seconds']:.0f} s |"
            )
        for name, (e, f) in REFERENCE[element].items() if not args.validation_only else ():
            lines.append(f"| {element} | {name} | {e} | {f} | | |")
    silicon = [r for r in results.values() if r["element"] == "Si"]
    if silicon:
        d = silicon[0]["dft_elastic_GPa"]
        lines += [
            "",
            "Diamond Si, GPa (model: relaxed cell, its a0 given)",
            "",
            "| | a0 (Å) | C11 | C12 | C44 (relaxed ions) | C44 (clamped ions) | B |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in silicon:
            m = r["elastic_GPa"]
            lines.append(
                f"| {label(r)} | {m['a0']:.4f} | {m['C11']:.1f} | {m['C12']:.1f} | {m['C44']:.1f} | {m['C44_clamped']:.1f} | {m['B']:.1f} |"
            )
        lines += [
            f"| DFT, slopes of the training data's Elastic frames | | {d['C11']:.1f} | {d['C12']:.1f} | – | {d['C44_clamped']:.1f} | {d['B']:.1f} |",
            "| DFT as published by mlearn (quoted in issue 9) | | | 57 | 74 | | |",
        ]
    table = "\n".join(lines)
    console.print(table)
    out = Path(__file__).with_name("results")
    out.mkdir(exist_ok=True)
    families = "" if args.families == ["bpnn"] else "_" + "_".join(args.families)
    name = "_".join(args.elements) + families + (f"_{args.tag}" if args.tag else "") + ("_validation" if args.validation_only else "")
    (out / f"mlearn_{name}.md").write_text(table + "\n" + ("\noverrides: " + " ".join(args.set) + "\n" if args.set else ""))
    (out / f"mlearn_{name}.json").write_text(json.dumps({"results": results, "overrides": args.set}, indent=2))


if __name__ == "__main__":
    main()
