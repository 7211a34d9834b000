"""Does committee disagreement pick better training data than chance?

Pool: the bundled ethanol GFN2-xTB 500 K MD (frames 0–799; a label is "bought"
only when a frame is selected); held-out test: frames 800–999. Both strategies
start from the same 16 random frames and add 16 per round:
  - uncertainty: the pool frames with the largest committee force disagreement
    max_i σ_F,i, at least 5 frames (50 fs) apart;
  - random: 16 pool frames drawn at random.
Each round trains a 3-member committee (seeds differ) and records its held-out
force MAE. Also reports the Spearman rank correlation between σ_F and the true
force error of the final uncertainty-selected committee on the test frames.

    python benchmarks/active_learning_evidence.py [--rounds 6]

Writes benchmarks/results/active_learning_evidence.{md,png}.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from scipy.stats import spearmanr

from forcefit.data import collate, make_graph
from forcefit.descriptors import SymmetryFunctions, generate_symmetry_functions
from forcefit.io import read_extxyz
from forcefit.models import BPNN, Committee
from forcefit.models.committee import spread
from forcefit.training.metrics import collect, error_statistics
from forcefit.training.trainer import Trainer, TrainingConfig

DATA = Path(__file__).resolve().parents[1] / "data" / "ethanol_gfn2xtb_500K.extxyz"
ELEMENTS = ["H", "C", "O"]
BATCH, START, SPACING, MEMBERS = 16, 16, 5, 3


def committee_on(graphs, descriptor, epochs, seed) -> Committee:
    members = []
    for k in range(MEMBERS):
        torch.manual_seed(seed + k)
        model = BPNN(descriptor, hidden=[24, 24])
        model.initialise(graphs)
        config = TrainingConfig(epochs=epochs, batch_size=8, learning_rate=3e-3, lr_patience=15, early_stopping=epochs,
                                energy_weight=1000.0, seed=seed + k)
        Trainer(model, graphs, [], config, console=Console(quiet=True)).fit()
        members.append(model)
    return Committee(members)


def disagreement(committee: Committee, graphs) -> np.ndarray:
    values = []
    for start in range(0, len(graphs), 100):
        batch = collate(graphs[start : start + 100])
        members = committee.member_predictions(batch)
        per_atom = spread(members["energy"], members["forces"])["forces_std"]
        values.append(torch.zeros(batch.n_structures, dtype=per_atom.dtype).index_reduce(0, batch.structure_index, per_atom, "amax").numpy())
    return np.concatenate(values)


def pick_uncertain(scores: np.ndarray, available: np.ndarray, count: int) -> list[int]:
    chosen: list[int] = []
    for i in available[np.argsort(-scores[available], kind="stable")]:
        if all(abs(int(i) - c) >= SPACING for c in chosen):
            chosen.append(int(i))
        if len(chosen) == count:
            break
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=150)
    args = parser.parse_args()
    console = Console()
    structures = read_extxyz(DATA)
    descriptor = SymmetryFunctions(ELEMENTS, generate_symmetry_functions(ELEMENTS, 4.0, 6, 2), "tanh")
    probe = BPNN(descriptor)
    graphs = [make_graph(s, probe.cutoff, probe.angular_cutoff) for s in structures]
    probe.cache_descriptors(graphs)
    pool, test = graphs[:800], graphs[800:]
    rng = np.random.default_rng(0)
    start = list(rng.choice(800, START, replace=False))
    curves = {}
    for strategy in ("uncertainty", "random"):
        chosen, curve = list(start), []
        for round_ in range(args.rounds + 1):
            committee = committee_on([pool[i] for i in chosen], descriptor, args.epochs, seed=100 * round_)
            mae = error_statistics(collect(committee, test), ELEMENTS)["forces_mae"]
            curve.append((len(chosen), mae))
            console.print(f"{strategy:11s} round {round_}: {len(chosen):4d} labelled, test force MAE {mae:6.1f} meV/Å")
            if round_ == args.rounds:
                break
            available = np.setdiff1d(np.arange(800), chosen)
            if strategy == "uncertainty":
                chosen += pick_uncertain(disagreement(committee, pool), available, BATCH)
            else:
                chosen += list(rng.choice(available, BATCH, replace=False))
        curves[strategy] = curve
        if strategy == "uncertainty":
            final = committee
    sigma = disagreement(final, test)
    results = collect(final, test)
    n = np.array([g.numbers.shape[0] for g in test])
    errors = np.linalg.norm(results["forces"] - results["ref_forces"], axis=1)
    true_error = np.array([errors[a:b].max() for a, b in zip(np.cumsum(n) - n, np.cumsum(n))])
    rho = spearmanr(sigma, true_error).statistic
    lines = ["| labelled | uncertainty: test F MAE (meV/Å) | random: test F MAE (meV/Å) |", "|---|---|---|"]
    for (count, a), (_, b) in zip(curves["uncertainty"], curves["random"]):
        lines.append(f"| {count} | {a:.1f} | {b:.1f} |")
    lines += ["", "| error reached by random selection (meV/Å) | labels, random | labels, uncertainty |", "|---|---|---|"]
    for count, target in curves["random"][1:]:
        needed = next((c for c, m in curves["uncertainty"] if m <= target), None)
        lines.append(f"| {target:.1f} | {count} | {needed if needed is not None else '> ' + str(curves['uncertainty'][-1][0])} |")
    lines.append("")
    lines.append(f"Spearman rank correlation between committee max σ_F and true max force error on {len(test)} test frames: {rho:.2f}")
    table = "\n".join(lines)
    console.print(table)
    out = Path(__file__).with_name("results")
    out.mkdir(exist_ok=True)
    (out / "active_learning_evidence.md").write_text(table + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4))
    for strategy, curve in curves.items():
        ax.plot(*zip(*curve), "o-", label=strategy)
    ax.set_xlabel("labelled structures")
    ax.set_ylabel("test force MAE (meV/Å)")
    ax.legend()
    bx.scatter(sigma, true_error, s=6)
    bx.set_xlabel("committee max σ_F (eV/Å)")
    bx.set_ylabel("true max |ΔF| (eV/Å)")
    bx.set_title(f"Spearman ρ = {rho:.2f}")
    fig.tight_layout()
    fig.savefig(out / "active_learning_evidence.png", dpi=110)


if __name__ == "__main__":
    main()
