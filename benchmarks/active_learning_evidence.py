"""Does committee disagreement pick better training data than chance, and does the
extrapolation grade γ of a single model pick as well for less?

Pool: what MD of ethanol with GFN2-xTB visits, mostly ordinary and rarely hot: the
bundled 500 K trajectory (frames 0–799) plus the first `--hot` (default 40, i.e. 5%
of the pool) frames of a 1000 K trajectory (generated with data/make_ethanol.py on
first use, cached under runs/). A label is "bought" only when a frame is selected.
Held-out test, both regimes weighted alike: 500 K frames 900–999 and 1000 K frames
200–299. Both strategies start from the same 16 random pool frames and add 16 per
round:
  - uncertainty: the pool frames with the largest committee force disagreement
    max_i σ_F,i, at least 5 frames (50 fs) apart;
  - gamma: one model per round (on all labelled frames) with its active set; the pool
    frames with the largest max_i γ_i, at least 5 frames apart, as a D-optimal batch
    (`forcefit.workflows.active_learning.select_by_grade`, what `learn` with
    `selection: gamma` does);
  - random: 16 pool frames drawn at random.
The committee strategies train a 3-member committee per round (different seeds, each
member on a random 80% of the labelled frames); each strategy's model of the round is
scored by its held-out force MAE, and the CPU time of each loop (training and selection,
not the scoring) is recorded. The experiment is
repeated for several starting sets (--repeats, run --jobs at a time) and the curves
averaged; the two strategies are also compared pairwise (same start, same round). Also reports
the Spearman rank correlation between committee disagreement and true force error
on the test frames (per frame: max σ_F vs max |ΔF|; per atom: σ_F,i vs |ΔF_i|).

    python benchmarks/active_learning_evidence.py [--rounds 6] [--repeats 8] [--hot 40] [--jobs 2]

Writes benchmarks/results/active_learning_evidence.{md,png,json}.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from scipy.stats import spearmanr

from forcefit.config import TrainingConfig
from forcefit.data import collate
from forcefit.descriptors import SymmetryFunctions, generate_symmetry_functions
from forcefit.io import read_extxyz
from forcefit.models import BPNN, Committee
from forcefit.models.committee import spread
from forcefit.training.metrics import collect, error_statistics
from forcefit.training.trainer import Trainer
from forcefit.workflows.active_learning import select_by_grade

ROOT = Path(__file__).resolve().parents[1]
ORDINARY = ROOT / "data" / "ethanol_gfn2xtb_500K.extxyz"
HOT = ROOT / "runs" / "al_pool" / "ethanol_gfn2xtb_1000K.extxyz"
ELEMENTS = ["H", "C", "O"]
BATCH, START, SPACING, MEMBERS, MEMBER_FRACTION = 16, 16, 5, 3, 0.8
STRATEGIES = ("uncertainty", "gamma", "random")


def hot_trajectory() -> Path:
    """300 frames of 1000 K GFN2-xTB MD, made once with the bundled data's generator."""
    if not HOT.exists():
        spec = importlib.util.spec_from_file_location("make_ethanol", ROOT / "data" / "make_ethanol.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        HOT.parent.mkdir(parents=True, exist_ok=True)
        module.main(HOT, temperature=1000.0, n_frames=300, seed=7)
    return HOT


def trained(graphs, descriptor, epochs, seed) -> BPNN:
    torch.manual_seed(seed)
    model = BPNN(descriptor, hidden=[24, 24])
    model.initialise(graphs)
    config = TrainingConfig(
        epochs=epochs, batch_size=8, learning_rate=3e-3, lr_patience=15, early_stopping=epochs, energy_weight=1000.0, seed=seed
    )
    Trainer(model, graphs, [], config, console=Console(quiet=True)).fit()
    return model


def committee_on(graphs, descriptor, epochs, seed) -> Committee:
    members = []
    for k in range(MEMBERS):
        subset = np.random.default_rng([seed, k]).choice(len(graphs), int(round(MEMBER_FRACTION * len(graphs))), replace=False)
        members.append(trained([graphs[i] for i in np.sort(subset)], descriptor, epochs, seed + k))
    return Committee(members)


def graded_on(graphs, descriptor, epochs, seed) -> BPNN:
    """One model on every labelled frame, with the active set of its extrapolation grade."""
    model = trained(graphs, descriptor, epochs, seed)
    model.fit_grade(graphs)
    return model


def per_frame_grade(model: BPNN, graphs) -> np.ndarray:
    """max_i γ_i of every graph (their cached descriptors)."""
    return np.array([float(model.extrapolation_grade(g.features, model.species(g.numbers)).max()) for g in graphs])


def per_atom_disagreement(committee: Committee, graphs) -> tuple[np.ndarray, np.ndarray]:
    """σ_F,i for every atom of `graphs` (concatenated) and the index of its structure."""
    values, owners = [], []
    for start in range(0, len(graphs), 100):
        batch = collate(graphs[start : start + 100])
        members = committee.member_predictions(batch)
        values.append(spread(members["energy"], members["forces"])["forces_std"].numpy())
        owners.append(batch.structure_index.numpy() + start)
    return np.concatenate(values), np.concatenate(owners)


def per_frame_max(values: np.ndarray, owners: np.ndarray, n_frames: int) -> np.ndarray:
    out = np.zeros(n_frames)
    np.maximum.at(out, owners, values)
    return out


def pick_uncertain(scores: np.ndarray, available: np.ndarray, count: int) -> list[int]:
    chosen: list[int] = []
    for i in available[np.argsort(-scores[available], kind="stable")]:
        if all(abs(int(i) - c) >= SPACING for c in chosen):
            chosen.append(int(i))
        if len(chosen) == count:
            break
    return chosen


def labels_to_reach(counts: list[int], curve: np.ndarray, target: float) -> float | None:
    """Labelled count at which a (mean) learning curve first reaches `target`, by linear
    interpolation between rounds; None if it never does."""
    for k, value in enumerate(curve):
        if value <= target:
            if k == 0:
                return float(counts[0])
            fraction = (curve[k - 1] - target) / (curve[k - 1] - value)
            return counts[k - 1] + fraction * (counts[k] - counts[k - 1])
    return None


SHARED: dict = {}  # pool, test and descriptor, set before the worker processes fork


def one_experiment(repeat: int, rounds: int, epochs: int):
    """Learning curves of the three strategies from one random starting set, the CPU time of
    each loop, the share of hot frames selected, final errors per regime, and (σ_F,i,
    structure, |ΔF_i|) of the final uncertainty-driven committee on the test frames. Runs in a
    worker process, one thread."""
    pool, frames, test, descriptor = SHARED["pool"], SHARED["frames"], SHARED["test"], SHARED["descriptor"]
    torch.set_num_threads(1)
    console = Console()
    rng = np.random.default_rng(repeat)
    start = list(rng.choice(len(pool), START, replace=False))
    curves, hot_share, regimes, seconds = {}, {}, {}, {}
    for strategy in STRATEGIES:
        chosen, curve, cpu = list(start), [], 0.0
        for round_ in range(rounds + 1):
            started = time.process_time()
            graphs, seed = [pool[i] for i in chosen], 1000 * repeat + 100 * round_
            model = graded_on(graphs, descriptor, epochs, seed) if strategy == "gamma" else committee_on(graphs, descriptor, epochs, seed)
            cpu += time.process_time() - started
            mae = error_statistics(collect(model, test), ELEMENTS)["forces_mae"]
            curve.append((len(chosen), mae))
            console.print(f"repeat {repeat} {strategy:11s} round {round_}: {len(chosen):4d} labelled, test force MAE {mae:6.1f} meV/Å")
            if round_ == rounds:
                regimes[strategy] = [error_statistics(collect(model, part), ELEMENTS)["forces_mae"] for part in (test[:100], test[100:])]
                break
            started = time.process_time()
            available = np.setdiff1d(np.arange(len(pool)), chosen)
            if strategy == "uncertainty":
                sigma, owners = per_atom_disagreement(model, pool)
                chosen += pick_uncertain(per_frame_max(sigma, owners, len(pool)), available, BATCH)
            elif strategy == "gamma":
                gamma = per_frame_grade(model, pool)
                gamma[chosen] = -np.inf  # labelled already
                chosen += select_by_grade(model, frames, gamma, BATCH, SPACING)
            else:
                chosen += list(rng.choice(available, BATCH, replace=False))
            cpu += time.process_time() - started
        curves[strategy], seconds[strategy] = curve, cpu
        hot_share[strategy] = np.mean(np.array(chosen) >= 800)
        if strategy == "uncertainty":
            sigma, owners = per_atom_disagreement(model, test)
            results = collect(model, test)
            trust = (sigma, owners, np.linalg.norm(results["forces"] - results["ref_forces"], axis=1))
    return curves, hot_share, regimes, trust, seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=2, help="starting sets run in parallel, one thread each")
    parser.add_argument("--hot", type=int, default=40, help="1000 K frames in the pool (at most 200)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # before any work: the worker processes are forked from this one
    console = Console()
    ordinary, hot = read_extxyz(ORDINARY), read_extxyz(hot_trajectory())
    descriptor = SymmetryFunctions(ELEMENTS, generate_symmetry_functions(ELEMENTS, 4.0, 6, 2), "tanh")
    probe = BPNN(descriptor)
    graphs = [probe.graph(s) for s in ordinary + hot]
    probe.cache_descriptors(graphs)
    ordinary_graphs, hot_graphs = graphs[: len(ordinary)], graphs[len(ordinary) :]
    pool = ordinary_graphs[:800] + hot_graphs[: args.hot]
    frames = [s.to_atoms() for s in ordinary[:800] + hot[: args.hot]]
    test = ordinary_graphs[900:] + hot_graphs[200:]
    SHARED.update(pool=pool, frames=frames, test=test, descriptor=descriptor)
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("fork")) as workers:
        runs = list(workers.map(one_experiment, range(args.repeats), [args.rounds] * args.repeats, [args.epochs] * args.repeats))
    counts = [c for c, _ in runs[0][0]["random"]]
    curves = {s: np.array([[m for _, m in run[0][s]] for run in runs]) for s in STRATEGIES}
    mean = {s: c.mean(axis=0) for s, c in curves.items()}
    spread_of = {s: c.std(axis=0) for s, c in curves.items()}
    paired = curves["uncertainty"] - curves["random"]  # same starting set, same round
    paired_se = paired.std(axis=0, ddof=1) / np.sqrt(len(runs)) if len(runs) > 1 else np.zeros(len(counts))
    by_regime = {s: np.mean([run[2][s] for run in runs], axis=0) for s in STRATEGIES}
    cpu = {s: np.array([run[4][s] for run in runs]) for s in STRATEGIES}
    versus_committee = curves["gamma"] - curves["uncertainty"]
    versus_committee_se = versus_committee.std(axis=0, ddof=1) / np.sqrt(len(runs)) if len(runs) > 1 else np.zeros(len(counts))
    rho_frame, rho_atom = np.array(
        [
            (
                spearmanr(per_frame_max(sigma, owners, len(test)), per_frame_max(errors, owners, len(test))).statistic,
                spearmanr(sigma, errors).statistic,
            )
            for sigma, owners, errors in (run[3] for run in runs)
        ]
    ).T
    sigma, _, errors = runs[0][3]
    lines = [
        f"Mean over {args.repeats} starting sets (± standard deviation); committee of {MEMBERS}, each member on "
        f"{MEMBER_FRACTION:.0%} of the labelled frames (uncertainty, random); one model on all of them (gamma); "
        f"{args.epochs} epochs per model.",
        "",
        "| labelled | uncertainty: test F MAE (meV/Å) | gamma | random | paired u − r ± s.e. | paired gamma − u ± s.e. |",
        "|---|---|---|---|---|---|",
    ]
    for k, count in enumerate(counts):
        lines.append(
            f"| {count} | {mean['uncertainty'][k]:.1f} ± {spread_of['uncertainty'][k]:.1f} | "
            f"{mean['gamma'][k]:.1f} ± {spread_of['gamma'][k]:.1f} | {mean['random'][k]:.1f} ± {spread_of['random'][k]:.1f} | "
            f"{paired.mean(axis=0)[k]:+.1f} ± {paired_se[k]:.1f} | {versus_committee.mean(axis=0)[k]:+.1f} ± {versus_committee_se[k]:.1f} |"
        )
    lower = int((paired[:, 1:] < 0).sum())
    lines += [
        "",
        f"Uncertainty selection gave the lower error in {lower} of {paired[:, 1:].size} paired comparisons "
        "(every starting set, every round after the first).",
        "",
        "| error reached by random selection (meV/Å) | labels, random | labels, uncertainty (linear interpolation of the mean curve) |",
        "|---|---|---|",
    ]
    for count, target in list(zip(counts, mean["random"]))[1:]:
        needed = labels_to_reach(counts, mean["uncertainty"], target)
        lines.append(f"| {target:.1f} | {count} | {'> ' + str(counts[-1]) if needed is None else f'{needed:.0f}'} |")
    share = {s: np.mean([run[1][s] for run in runs]) for s in STRATEGIES}
    lines += [
        "",
        f"CPU time of one loop (training and selection, every round; mean over starting sets): uncertainty "
        f"{cpu['uncertainty'].mean():.0f} s, gamma {cpu['gamma'].mean():.0f} s, random {cpu['random'].mean():.0f} s; "
        f"gamma / uncertainty {np.mean(cpu['gamma'] / cpu['uncertainty']):.2f}. Gamma gave a lower error than the committee's "
        f"selection in {int((versus_committee[:, 1:] < 0).sum())} of {versus_committee[:, 1:].size} paired comparisons.",
        "",
        f"Share of 1000 K frames among the labelled frames after the last round: uncertainty {share['uncertainty']:.0%}, "
        f"gamma {share['gamma']:.0%}, random {share['random']:.0%} (pool: {args.hot / len(pool):.0%}). Test force MAE after "
        "the last round, 500 K / 1000 K frames: "
        + ", ".join(f"{s} {by_regime[s][0]:.1f} / {by_regime[s][1]:.1f}" for s in STRATEGIES)
        + " meV/Å.",
        "",
        f"Spearman rank correlation, committee disagreement vs true force error on the {len(test)} test frames, final "
        f"uncertainty-driven committee of each starting set (mean ± standard deviation): per frame (max σ_F vs max |ΔF|) "
        f"{rho_frame.mean():.2f} ± {rho_frame.std():.2f}; per atom (σ_F,i vs |ΔF_i|) {rho_atom.mean():.2f} ± {rho_atom.std():.2f}.",
    ]
    table = "\n".join(lines)
    console.print(table)
    out = Path(__file__).with_name("results")
    out.mkdir(exist_ok=True)
    (out / "active_learning_evidence.md").write_text(table + "\n")
    raw = {
        "labelled": counts,
        **{s: c.tolist() for s, c in curves.items()},
        "cpu_seconds": {s: c.tolist() for s, c in cpu.items()},
        "spearman_per_frame": rho_frame.tolist(),
        "spearman_per_atom": rho_atom.tolist(),
    }
    (out / "active_learning_evidence.json").write_text(json.dumps(raw, indent=1))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4))
    for strategy in STRATEGIES:
        ax.errorbar(counts, mean[strategy], yerr=spread_of[strategy], fmt="o-", capsize=3, label=strategy)
    ax.set_xlabel("labelled structures")
    ax.set_ylabel("test force MAE (meV/Å)")
    ax.legend()
    bx.scatter(sigma, errors, s=3, alpha=0.5)
    bx.set_xlabel("committee σ_F,i (eV/Å)")
    bx.set_ylabel("true |ΔF_i| (eV/Å)")
    bx.set_title(f"first starting set, per atom: Spearman ρ = {rho_atom[0]:.2f}")
    fig.tight_layout()
    fig.savefig(out / "active_learning_evidence.png", dpi=110)


if __name__ == "__main__":
    main()
