"""One trainer for every model: mini-batch Adam (or full-batch L-BFGS) on the
force-matching loss, learning-rate reduction on a validation plateau, early
stopping, and a checkpoint after every epoch that `resume` continues exactly.

Optional stage two (as in MACE's second stage): when the main stage ends (epoch limit,
early stopping or wall-time budget), training continues from the best model for
`stage_two_epochs` more epochs with other loss weights and a new learning rate —
typically a larger energy weight and a smaller rate, to settle energies once the
forces are learnt. Validation tracking restarts there, since the loss has changed.

Reproducibility: the order of the training set in epoch k is drawn from
(seed, k) alone, so an interrupted run resumed from its checkpoint follows the
same path as an uninterrupted one.

Many processes (training/distributed.py): each rank evaluates its share of every global
batch and of the validation set, gradients and error sums are added over ranks, and only
rank 0 writes the checkpoint; the wall-time budget uses the slowest rank's clock, so that
every rank stops after the same epoch.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from forcefit.data import Batch, collate
from forcefit.files import atomic_save
from forcefit.models.base import Potential
from forcefit.models.forces import predict
from forcefit.training.distributed import Group
from forcefit.training.loss import force_matching_loss, loss_weights
from forcefit.training.metrics import ErrorSums
from forcefit.training.settings import TrainingConfig


class Trainer:
    def __init__(
        self,
        model: Potential,
        train: list[Batch],
        validation: list[Batch],
        config: TrainingConfig,
        run_dir=None,
        names: list[str] | None = None,
        console: Console | None = None,
        fingerprint: dict | None = None,
        group: Group | None = None,
    ):
        if not train:
            raise ValueError("no training structures")
        self.model, self.train, self.validation, self.config = model, train, validation, config
        self.device = model.energy_offset.device  # batches are moved here (a no-op for graphs already there)
        self.names = names or [f"training structure {n + 1}" for n in range(len(train))]
        self.fingerprint = fingerprint  # the settings a resume must not change (checked against the checkpoint)
        self.run_dir = Path(run_dir) if run_dir else None
        self.group = group or Group()
        self.console = console or Console(quiet=not self.group.main)
        self.stage, self.stage_two_start = 1, None
        self.weights = loss_weights(config, 1)
        self.parameters = parameters = [p for p in model.parameters() if p.requires_grad]
        if config.optimizer == "ridge":
            raise ValueError("training.optimizer 'ridge' is a closed-form solve, not an iterative trainer (see LinearModel.fit_ridge)")
        if config.optimizer == "adam":
            self.optimizer = torch.optim.Adam(parameters, lr=config.learning_rate)
        else:
            self.optimizer = torch.optim.LBFGS(
                parameters,
                lr=config.learning_rate,
                max_iter=20,
                history_size=20,
                tolerance_grad=1e-14,
                tolerance_change=1e-18,
                line_search_fn="strong_wolfe",
            )
        self.scheduler = self._new_scheduler()
        self.epoch = 0
        self.history: list[dict] = []
        self.best_loss = math.inf
        self.best_state = None
        self.stale_epochs = 0
        self.elapsed = 0.0

    def _new_scheduler(self):
        config = self.config
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, factor=config.lr_factor, patience=config.lr_patience, min_lr=config.min_learning_rate
        )

    # ------------------------------------------------------------ checkpoints

    @property
    def checkpoint_path(self) -> Path | None:
        return self.run_dir / "checkpoint.pt" if self.run_dir else None

    def state(self) -> dict:
        return {
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "history": self.history,
            "best_loss": self.best_loss,
            "best_state": self.best_state,
            "stale_epochs": self.stale_epochs,
            "elapsed": self.elapsed,
            "stage": self.stage,
            "stage_two_start": self.stage_two_start,
            "fingerprint": self.fingerprint,
        }

    def load_checkpoint(self, path=None) -> None:
        path = Path(path or self.checkpoint_path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no checkpoint to resume from")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:
            raise ValueError(
                f"{path}: the checkpoint cannot be read (empty, truncated or damaged: {str(err)[:200]}); "
                "train again without --resume, into a new output directory"
            ) from None
        if state.get("fingerprint") is not None and self.fingerprint is not None:
            refuse_changed_settings(state["fingerprint"], self.fingerprint, str(path))
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch = state["epoch"]
        self.history = state["history"]
        self.best_loss = state["best_loss"]
        self.best_state = state["best_state"]
        self.stale_epochs = state["stale_epochs"]
        self.elapsed = state["elapsed"]
        self.stage, self.stage_two_start = state.get("stage", 1), state.get("stage_two_start")  # older checkpoints: one stage
        self.weights = loss_weights(self.config, self.stage)

    # --------------------------------------------------------------- training

    def _share_loss(self, indices, total: int):
        """(This rank's share of `indices`) the loss weighted by the share's fraction of
        `total` structures, backpropagated; returns (loss, prediction, batch, share size),
        or Nones when the share is empty."""
        share = self.group.share(indices)
        if len(share) == 0:
            return None, None, None, 0
        loss, prediction, batch = self._loss(share)
        (loss * (len(share) / total) if len(share) != total else loss).backward()
        return loss, prediction, batch, len(share)

    def _loss(self, indices):
        """Loss on the training structures `indices`; a non-finite loss names its culprits."""
        names = self.names
        batch = collate([self.train[i] for i in indices]).to(device=self.device)
        prediction = predict(self.model, batch, forces=self.weights.forces > 0, stress=self.weights.stress > 0, training=True)
        loss = force_matching_loss(prediction, batch, self.weights)
        if not torch.isfinite(loss):
            culprits = [names[i] for i, bad in zip(indices, _non_finite_structures(prediction, batch)) if bad]
            listed = ", ".join(culprits or [names[i] for i in indices])
            raise FloatingPointError(
                f"epoch {self.epoch + 1}: the loss became {loss.item()} on structure(s) {listed}; "
                "training stopped before writing a broken model (check these structures or lower the learning rate)"
            )
        return loss, prediction, batch

    def evaluate(self, graphs: list) -> tuple[float, float, float]:
        """(loss, energy RMSE meV/atom, force RMSE meV/Å) in one pass over `graphs`."""
        total, errors = 0.0, ErrorSums()
        for start in self.group.share(range(0, len(graphs), 64)):
            batch = collate(graphs[start : start + 64]).to(device=self.device)
            prediction = predict(self.model, batch, forces=True, stress=self.weights.stress > 0)
            total += float(force_matching_loss(prediction, batch, self.weights)) * batch.n_structures
            errors.add(prediction, batch)
        (total,) = self.group.sum([total])
        errors.combine(self.group)
        return (total / len(graphs), *errors.rmse())

    def _epoch_adam(self, order, progress, task) -> tuple[float, float, float]:
        size = self.config.batch_size
        loss_sum, errors = 0.0, ErrorSums()
        for start in range(0, len(order), size):
            indices = order[start : start + size]
            self.optimizer.zero_grad(set_to_none=True)
            loss, prediction, batch, n = self._share_loss(indices, len(indices))
            self.group.sum_gradients(self.parameters)
            self.optimizer.step()
            if n:
                loss_sum += loss.item() * n
                errors.add(prediction, batch)
            progress.advance(task)
        (loss_sum,) = self.group.sum([loss_sum])
        errors.combine(self.group)
        return (loss_sum / len(order), *errors.rmse())

    def _epoch_lbfgs(self, progress, task) -> tuple[float, float, float]:
        everything = np.arange(len(self.train))
        size = self.config.batch_size

        def closure():
            self.optimizer.zero_grad(set_to_none=True)
            total = 0.0
            for start in range(0, len(everything), size):
                loss, _, _, n = self._share_loss(everything[start : start + size], len(everything))
                total += loss.item() * n / len(everything) if n else 0.0
            self.group.sum_gradients(self.parameters)
            return torch.tensor(self.group.sum([total])[0])

        self.optimizer.step(closure)
        progress.advance(task, len(range(0, len(everything), size)))
        return self.evaluate(self.train)

    def _run_stage(self, last_epoch: int, progress, n_batches: int, budget: float | None) -> None:
        """Epochs up to `last_epoch`, early stopping on validation, or until `budget` seconds of training."""
        config = self.config
        while self.epoch < last_epoch and self.stale_epochs < config.early_stopping:
            if budget is not None and self.elapsed >= budget:
                self.console.print(f"stopping: wall-time budget of {budget:.0f} s reached")
                break
            started = time.perf_counter()
            task = progress.add_task("train", total=n_batches, epoch=self.epoch + 1)
            if config.optimizer == "adam":
                order = np.random.default_rng([config.seed, self.epoch]).permutation(len(self.train))
                loss, e_rmse, f_rmse = self._epoch_adam(order, progress, task)
            else:
                loss, e_rmse, f_rmse = self._epoch_lbfgs(progress, task)
            progress.remove_task(task)
            val_loss, val_e, val_f = self.evaluate(self.validation or self.train)
            if not self.validation:
                val_e = val_f = float("nan")
            self.scheduler.step(val_loss)
            self.epoch += 1
            if val_loss < self.best_loss:
                self.best_loss, self.stale_epochs = val_loss, 0
                self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            else:
                self.stale_epochs += 1
            self.elapsed = self.group.max(self.elapsed + time.perf_counter() - started)
            record = {
                "epoch": self.epoch,
                "stage": self.stage,
                "loss": loss,
                "validation_loss": val_loss,
                "train_energy_rmse": e_rmse,
                "train_forces_rmse": f_rmse,
                "validation_energy_rmse": val_e,
                "validation_forces_rmse": val_f,
                "learning_rate": self.optimizer.param_groups[0]["lr"],
                "seconds": self.elapsed,
            }
            self.history.append(record)
            self.console.print(
                f"epoch {self.epoch:4d}  loss {loss:.3e}  E/F RMSE train {e_rmse:.2f} meV/atom {f_rmse:.1f} meV/Å"
                f"  val {val_e:.2f} {val_f:.1f}  lr {record['learning_rate']:.1e}  {self.elapsed:.0f} s",
                soft_wrap=True,
                highlight=False,
            )
            if self.checkpoint_path and self.group.main:
                atomic_save(self.state(), self.checkpoint_path)
        if self.stale_epochs >= config.early_stopping:
            self.console.print(f"early stopping: no validation improvement for {self.stale_epochs} epochs")

    def _begin_stage_two(self) -> None:
        """From the best model of the main stage: new loss weights, learning rate and validation tracking."""
        config = self.config
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        self.stage, self.weights = 2, loss_weights(config, 2)
        if config.stage_two_learning_rate is not None:
            for group in self.optimizer.param_groups:
                group["lr"] = config.stage_two_learning_rate
        self.scheduler = self._new_scheduler()
        self.best_loss, self.best_state, self.stale_epochs = math.inf, None, 0
        self.stage_two_start = self.epoch
        w = self.weights
        self.console.print(
            f"stage two from epoch {self.epoch}: {config.stage_two_epochs} epochs, energy weight {w.energy:g}, "
            f"force weight {w.forces:g}, learning rate {self.optimizer.param_groups[0]['lr']:.1e}"
        )

    def fit(self, resume: bool = False) -> list[dict]:
        if resume:
            self.load_checkpoint()
            self.console.print(f"resumed from {self.checkpoint_path} after epoch {self.epoch}")

        config = self.config
        n_batches = len(range(0, len(self.train), config.batch_size))
        progress = Progress(
            TextColumn("epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
        )
        with progress:
            if self.stage == 1:
                self._run_stage(config.epochs, progress, n_batches, budget=config.max_seconds)
                if config.stage_two_epochs:
                    self._begin_stage_two()
            if self.stage == 2:
                self._run_stage(self.stage_two_start + config.stage_two_epochs, progress, n_batches, budget=None)
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        return self.history


def refuse_changed_settings(started_with: dict, now: dict, where: str) -> None:
    """A resume with settings other than the run's own (flat {"section.key": value}) is an error listing them."""
    changed = [
        f"{k}: {started_with.get(k)!r} → {now.get(k)!r}" for k in sorted(set(started_with) | set(now)) if started_with.get(k) != now.get(k)
    ]
    if changed:
        raise ValueError(
            f"{where}: --resume continues a run only with the settings it started with (epoch counts and time "
            f"budgets may change). Changed: {'; '.join(changed)}"
        )


def _non_finite_structures(prediction, batch) -> list[bool]:
    """Per structure: does its prediction or reference hold inf/NaN (NaN reference = unlabelled is fine)?"""
    with torch.no_grad():
        energy_bad = ~torch.isfinite(prediction.reference_energy) | torch.isinf(batch.ref_energy)
        atom_bad = torch.zeros(batch.numbers.shape[0], dtype=torch.bool, device=batch.numbers.device)
        if prediction.forces is not None:
            atom_bad = (~torch.isfinite(prediction.forces) | torch.isinf(batch.ref_forces)).any(dim=1)
        structure_bad = torch.zeros(batch.n_structures, dtype=torch.bool, device=atom_bad.device).index_put(
            (batch.structure_index,), atom_bad, accumulate=True
        )
        return (energy_bad | structure_bad).tolist()
