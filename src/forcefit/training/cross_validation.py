"""K-fold cross-validation of the closed-form ridge fit (`LinearModel.solve_ridge`): for
choosing λ and the loss weights on the training file itself, with every training structure
held out once, instead of on one small random validation split.

The folds are dealt per configuration group (each group shuffled, then dealt round robin),
so that every fold holds its share of each kind of structure. One pass over the data builds
the design rows (energy, force and stress rows per structure, `LinearModel.design`) and
keeps them: with the data in `recompute` mode the descriptor Jacobians (per pair, about 30×
larger for a crystal) are never held, only the rows, n_rows × n_θ float64 numbers. The
loss's normal equations are sums over structures, so each fold's terms come from its rows;
the fit without fold k is the sum of the other folds' terms (rescaled so that λ weighs the
same against the data as in a fit on the whole set), solved for every setting of the grid,
and predicts fold k's rows. The fit on the whole set is the sum of every fold's terms.

On a small set the out-of-fold errors depend on how the folds happen to fall (mlearn Mo, 194
structures of which 9 surfaces: two fold assignments of the same setting gave 2.57 and 2.01
meV/atom), so the split can be repeated with other seeds (`repeats`): every repetition's terms
come from the same kept rows, and the errors pool all repetitions.

Out-of-fold errors are those of `metrics.error_statistics`: energy MAE over structures of
|ΔE|/n_atoms (meV/atom) on the reference's scale (Σ E_i − b), force MAE over Cartesian
components (meV/Å), overall and per group.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch

from forcefit.models.linear import TERMS, weighted_gram
from forcefit.training.loss import LossWeights
from forcefit.training.settings import CrossValidationSettings


def fold_labels(groups: list[str], n_folds: int, seed: int = 0) -> np.ndarray:
    """The fold (0 … n_folds − 1) of each structure: each group shuffled with `seed` and dealt round robin."""
    if n_folds < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, not {n_folds}")
    if len(groups) < n_folds:
        raise ValueError(f"{len(groups)} structures cannot fill {n_folds} folds")
    rng = np.random.default_rng(seed)
    labels = np.empty(len(groups), dtype=np.int64)
    start = 0
    for group in sorted(set(groups)):
        members = rng.permutation([i for i, g in enumerate(groups) if g == group])
        labels[members] = (start + np.arange(len(members))) % n_folds
        start += len(members)  # the next group starts where this one left off: folds stay level
    return labels


@dataclass(frozen=True)
class Setting:
    energy_weight: float
    ridge: float
    smoothness: float = 0.0  # the prior's exponent p (LinearModel.ridge_penalty)
    group_weights: tuple[tuple[str, float], ...] = ()  # (group, factor) pairs: that group's structures weigh factor × more

    def weight_of(self, group: str) -> float:
        return dict(self.group_weights).get(group, 1.0)

    def describe(self) -> str:
        groups = "".join(f", {name} × {w:g}" for name, w in self.group_weights)
        return f"w_E {self.energy_weight:g}, λ {self.ridge:g}, p {self.smoothness:g}{groups}"


class CrossValidation:
    """The design rows of `graphs` and their normal-equation terms per fold (`folds`: the fold of
    each structure, or one such row per repetition of the k-fold split, (n_repeats, n_structures));
    force and stress weights and energy_per_atom from `weights` (the energy weight is a setting).
    With repetitions, each structure is held out once per repetition and the out-of-fold errors
    pool them all (with the same count per repetition, the mean of the repetitions' MAEs)."""

    def __init__(self, model, graphs, groups: list[str], folds: np.ndarray, weights: LossWeights, weighted_groups=()):
        folds = np.atleast_2d(folds)
        if len(groups) != len(graphs) or folds.shape[1] != len(graphs):
            raise ValueError(f"{len(graphs)} structures, {len(groups)} group labels and {folds.shape[1]} folds")
        self.model, self.folds, self.n_folds = model, torch.as_tensor(folds), int(folds.max()) + 1
        self.names = sorted(set(groups))
        unknown = sorted(set(weighted_groups) - set(self.names))
        if unknown:
            raise ValueError(f"cross-validation group weights name {unknown}; the training groups are {self.names}")
        self.group_of = torch.tensor([self.names.index(g) for g in groups])
        # the normal-equation terms are kept per fold and bucket: one bucket per group a setting
        # may weigh (`weighted_groups`), one for the rest
        self.buckets = sorted(weighted_groups)
        bucket_of = torch.tensor([self.buckets.index(g) if g in self.buckets else len(self.buckets) for g in groups])
        self.per_atom = weights.energy_per_atom
        unit = LossWeights(energy=1.0, forces=weights.forces, energy_per_atom=weights.energy_per_atom, stress=weights.stress)
        # terms[r][k][b][term]: the (XᵀWX, XᵀWy) of bucket b's structures in fold k of repetition
        # r, so that a setting's group weights scale them without another pass
        n_buckets = len(self.buckets) + 1
        self.rows = []
        self.terms = [[[{t: [0.0, 0.0] for t in TERMS} for _ in range(n_buckets)] for _ in range(self.n_folds)] for _ in folds]
        first = 0
        for X, y, w, ends, atoms in model._chunks(graphs, unit):
            structures = torch.arange(first, first + ends[0])
            row_structure = torch.cat([structures, structures.repeat_interleave(3 * atoms), structures.repeat_interleave(9)])
            self.rows.append((X, y, w, row_structure, ends, atoms))
            for term, begin, end in zip(TERMS, (0, *ends[:2]), ends):
                for r, terms in enumerate(self.terms):
                    for k, rows in self._fold_rows(r, row_structure, begin, end, keep=w > 0):
                        bucket = bucket_of[row_structure[rows]]
                        for b in torch.unique(bucket).tolist():
                            mine = rows[bucket == b]
                            A, rhs = weighted_gram(X[mine], y[mine], w[mine])
                            total = terms[k][b][term]
                            terms[k][b][term] = [total[0] + A, total[1] + rhs]
            first += ends[0]
        self.sizes = np.stack([np.bincount(f, minlength=self.n_folds) for f in folds])

    def _fold_rows(self, r: int, row_structure, begin: int, end: int, keep=None):
        """(k, rows of fold k of repetition r in begin:end) for each fold with any."""
        fold = self.folds[r, row_structure[begin:end]]
        for k in range(self.n_folds):
            mine = fold == k if keep is None else (fold == k) & keep[begin:end]
            rows = torch.nonzero(mine).squeeze(1) + begin
            if rows.numel():
                yield k, rows

    def _solve(self, setting: Setting, r: int, folds: list[int]) -> None:
        """Set the model to the fit on the structures of `folds` of repetition r (λ weighed as on the whole set)."""
        if set(dict(setting.group_weights)) - set(self.buckets):
            raise ValueError(f"{setting.describe()} weighs groups other than those this cross-validation keeps apart, {self.buckets}")
        rescale = float(self.sizes[r].sum() / self.sizes[r, folds].sum())
        factors = [rescale * setting.weight_of(name) for name in self.buckets] + [rescale]
        terms = self.terms[r]
        total = {t: [sum(f * terms[k][b][t][i] for k in folds for b, f in enumerate(factors)) for i in (0, 1)] for t in TERMS}
        A = setting.energy_weight * total["energy"][0] + total["forces"][0] + total["stress"][0]
        rhs = setting.energy_weight * total["energy"][1] + total["forces"][1] + total["stress"][1]
        self.model.solve_ridge((A, rhs), setting.ridge, setting.smoothness)

    def fit(self, setting: Setting):
        """The model fitted on every structure with `setting` (equal to `fit_ridge` on all graphs)."""
        self._solve(setting, 0, list(range(self.n_folds)))
        return self.model

    def errors(self, settings: list[Setting]) -> list[dict]:
        """Out-of-fold errors of each setting: one dict per setting, in order, with energy_mae
        (meV/atom) and forces_mae (meV/Å) over all structures and under "groups" per group."""
        thetas = {}  # per repetition and fold: (n_θ, n_settings) of the fits without it
        for r in range(len(self.terms)):
            for k in range(self.n_folds):
                columns = []
                for setting in settings:
                    self._solve(setting, r, [j for j in range(self.n_folds) if j != k])
                    columns.append(self.model._theta().detach())
                thetas[r, k] = torch.stack(columns, dim=1)
        shape = (len(self.names), len(settings))
        sums = {t: torch.zeros(shape, dtype=torch.float64) for t in ("energy", "forces")}
        counts = {t: torch.zeros(len(self.names), dtype=torch.float64) for t in ("energy", "forces")}
        for X, y, w, row_structure, ends, atoms in self.rows:
            for (term, begin, end), r in itertools.product((("energy", 0, ends[0]), ("forces", ends[0], ends[1])), range(len(self.terms))):
                for k, rows in self._fold_rows(r, row_structure, begin, end, keep=w > 0):
                    error = (X[rows] @ thetas[r, k] - y[rows, None]).abs()
                    if term == "energy" and not self.per_atom:
                        error = error / atoms[rows, None].double()  # energy rows are the chunk's first
                    group = self.group_of[row_structure[rows]]
                    sums[term].index_add_(0, group, error)
                    counts[term].index_add_(0, group, torch.ones(rows.numel(), dtype=torch.float64))

        def mae(term: str, s: int, group: int | None = None) -> float:
            total = sums[term][:, s].sum() if group is None else sums[term][group, s]
            count = counts[term].sum() if group is None else counts[term][group]
            return 1000.0 * float(total / count) if count else float("nan")

        return [
            {
                "energy_weight": setting.energy_weight,
                "ridge": setting.ridge,
                "smoothness": setting.smoothness,
                "group_weights": dict(setting.group_weights),
                "energy_mae": mae("energy", s),
                "forces_mae": mae("forces", s),
                "groups": {
                    name: {"energy_mae": mae("energy", s, g), "forces_mae": mae("forces", s, g)} for g, name in enumerate(self.names)
                },
            }
            for s, setting in enumerate(settings)
        ]


def score(results: list[dict], targets: list[float] | None = None) -> list[float]:
    """Lower is better. Without targets: energy and force MAE, each relative to the best of the
    grid, added (scale-free: a 10 % worse energy weighs like a 10 % worse force). With targets
    (energy meV/atom, forces meV/Å): the larger of the two MAE/target ratios, so that the
    choice is the setting closest to meeting both."""
    if targets is not None:
        return [max(r["energy_mae"] / targets[0], r["forces_mae"] / targets[1]) for r in results]
    best_e = min(r["energy_mae"] for r in results)
    best_f = min(r["forces_mae"] for r in results)
    return [r["energy_mae"] / best_e + r["forces_mae"] / best_f for r in results]


def grid_settings(grid: CrossValidationSettings) -> list[Setting]:
    """Every combination of the grid's energy weights, ridges, smoothness exponents and group weights."""
    return [
        Setting(w, r, p, tuple(sorted(g.items())))
        for w in grid.energy_weights
        for r in grid.ridges
        for p in grid.smoothness
        for g in grid.group_weights or [{}]
    ]


def choose_and_fit(model, graphs, groups: list[str], weights: LossWeights, grid: CrossValidationSettings, console=None) -> dict:
    """Cross-validate every setting of `grid` (training.cross_validation, completed by the
    config), fit the model on all of `graphs` with the best by `score`, and return
    {"chosen": its results, "grid": all results}."""
    folds = np.stack([fold_labels(groups, grid.folds, grid.seed + r) for r in range(grid.repeats)])
    settings = grid_settings(grid)
    weighted = {name for setting in settings for name, _ in setting.group_weights}
    cv = CrossValidation(model, graphs, groups, folds, weights, weighted)
    results = cv.errors(settings)
    for result, value in zip(results, score(results, grid.targets)):
        result["score"] = value
    best = min(range(len(settings)), key=lambda s: results[s]["score"])
    cv.fit(settings[best])
    if console is not None:
        repeats = f", {len(folds)} repetitions (seeds {grid.seed}…{grid.seed + len(folds) - 1})" if len(folds) > 1 else ""
        console.print(f"{grid.folds}-fold cross-validation{repeats} of {len(settings)} settings (out-of-fold MAE):")
        for s in sorted(range(len(settings)), key=lambda s: results[s]["score"])[:5]:
            console.print(f"  {settings[s].describe()}: {results[s]['energy_mae']:.2f} meV/atom, {results[s]['forces_mae']:.1f} meV/Å")
        chosen = results[best]
        console.print(f"chosen: {settings[best].describe()}; per group:")
        for name, r in chosen["groups"].items():
            console.print(f"  {name}: {r['energy_mae']:.2f} meV/atom, {r['forces_mae']:.1f} meV/Å")
    return {"chosen": results[best], "grid": results}
