"""Data-parallel training over processes (torch.distributed), and the training device.

Started by torchrun (`torchrun --nproc_per_node N -m forcefit train config.yaml`), every
process ("rank") builds the same model from the same seed and walks the same sequence of
global batches; each evaluates its share of a batch (structures rank, rank + N, …), the
gradients are summed over ranks, and every rank takes the same optimiser step. The loss
of a share is weighted by its fraction of the global batch, so the summed gradient is the
gradient of the whole batch's loss: N ranks follow the path of one rank with the same
global batch, up to the order of floating-point sums. Only rank 0 writes files.

Outside torchrun (no WORLD_SIZE in the environment) the group is a single process and
every collective is a no-op.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable

import torch
import torch.distributed as dist

BACKENDS = {"cpu": "gloo", "cuda": "nccl"}


class Group:
    """This process's place among the training processes."""

    def __init__(self, rank: int = 0, world: int = 1, local_rank: int = 0):
        self.rank, self.world, self.local_rank = rank, world, local_rank
        self.device_for_collectives = torch.device("cpu")  # NCCL: the GPU of this rank

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def share(self, indices):
        """This rank's part of a global batch."""
        return indices[self.rank :: self.world] if self.active else indices

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def sum(self, values: list[float]) -> list[float]:
        """Sum of each number over ranks (float64)."""
        if not self.active:
            return values
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device_for_collectives)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def max(self, value: float) -> float:
        if not self.active:
            return value
        tensor = torch.tensor([value], dtype=torch.float64, device=self.device_for_collectives)
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return float(tensor)

    def from_main(self, compute: Callable):
        """`compute()` on rank 0, its (picklable) result on every rank."""
        if not self.active:
            return compute()
        box = [compute() if self.main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def sum_gradients(self, parameters: list[torch.nn.Parameter]) -> None:
        """Sum .grad over ranks in one collective. A parameter no rank has a gradient for
        keeps none (as in a one-process run, where the optimiser then skips it)."""
        if not self.active:
            return
        device = parameters[0].device
        present = torch.tensor([p.grad is not None for p in parameters], dtype=torch.float64, device=device)
        dist.all_reduce(present)
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in parameters]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        at = 0
        for p, has, g in zip(parameters, present.tolist(), grads):
            n = g.numel()
            p.grad = flat[at : at + n].view_as(p).clone() if has else None
            at += n


def start(device: str) -> Group:
    """The process group torchrun describes in the environment (a single process when
    there is none), with the backend for `device`'s kind: gloo on CPUs, NCCL on GPUs."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    if world <= 1:
        return Group()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", 0))
    kind = "cuda" if device.startswith("cuda") or (device == "auto" and torch.cuda.is_available()) else "cpu"
    if not dist.is_initialized():
        # caching descriptors on rank 0 can take long: a generous timeout for the first barrier
        dist.init_process_group(BACKENDS.get(kind, "gloo"), timeout=datetime.timedelta(hours=6))
    group = Group(rank, world, local_rank)
    if kind == "cuda":
        group.device_for_collectives = torch.device(resolve_device(device, local_rank))
    return group


def stop(group: Group) -> None:
    if group.active and dist.is_initialized():
        dist.destroy_process_group()


def resolve_device(name: str, local_rank: int = 0) -> str:
    """`training.device`: cpu, cuda (this process's GPU under torchrun), cuda:N, or auto
    (a GPU when torch sees one). Asking for a GPU that is not there is an error."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"training.device: {name!r}, but torch sees no GPU here (use cpu or auto)")
        if name == "cuda":
            name = f"cuda:{local_rank % torch.cuda.device_count()}"
        torch.cuda.set_device(torch.device(name))
        return name
    if name != "cpu":
        raise ValueError(f"training.device: {name!r}; expected cpu, cuda, cuda:N or auto")
    return name
