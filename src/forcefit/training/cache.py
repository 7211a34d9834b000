"""Training data within a memory budget (`training.memory_gb`).

A descriptor model trains on cached symmetry functions G and their Jacobian
∂G_{i_p}/∂r_p (n_pairs × n_features × 3 numbers per structure): far more than the
structures themselves. Three ways to hold them, chosen by `training.cache`:

    memory     every split's graphs and descriptors in RAM (the fastest; what fits)
    disk       written once to a file in `training.cache_dir` and streamed from it,
               a batch at a time, through a read-only memory map
    recompute  only the structures are kept; a batch's graphs and descriptors are
               rebuilt by the compiled engine each time it is used

`auto` (the default) takes `memory` when the dense cache of all splits fits in the
budget, otherwise `disk` when the cache directory has room for it, otherwise
`recompute`, and says which in the log. All three give the same numbers bit for bit:
the same engine computes the same descriptors, only where they are kept changes.

The disk cache is named by a hash of the data (every structure's atoms, cell and
labels) and of the descriptor set, so a run on the same data reuses it (across runs
and resumes) and changed data or descriptors get a new file. It holds, after the
records, an index and a header naming its data hash, descriptor set and dtypes; a
file whose header does not match, whose size is wrong or whose record fails its
CRC-32 is refused with its path. Records are copied out of the map and the pages
released after each read, so the map does not count in the process's resident memory.
"""

from __future__ import annotations

import copy
import hashlib
import json
import mmap
import os
import shutil
import socket
import time
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from forcefit.data import Batch
from forcefit.files import default_cache_dir
from forcefit.memory import memory_budget_gb
from forcefit.neighbors import neighbor_pairs
from forcefit.structures import Structure

CACHE_CHUNK = 16  # structures per engine call while caching: bounds the memory of the Jacobian work
FORMAT = 1
MAGIC = b"FFCACHE1"
PAGE = mmap.PAGESIZE

# Every tensor field of a one-structure graph (Batch) as stored in a record, with its
# shape in terms of N atoms, P pairs and F features (graphs without stored triplets).
LAYOUT = (
    ("numbers", ("N",)),
    ("positions", ("N", 3)),
    ("cell", (1, 3, 3)),
    ("pbc", (1, 3)),
    ("structure_index", ("N",)),
    ("n_atoms", (1,)),
    ("pair_i", ("P",)),
    ("pair_j", ("P",)),
    ("pair_shift", ("P", 3)),
    ("pair_structure", ("P",)),
    ("triplet_p", (0,)),
    ("triplet_q", (0,)),
    ("ref_energy", (1,)),
    ("ref_forces", ("N", 3)),
    ("ref_stress", (1, 3, 3)),
    ("weight", (1,)),
    ("features", ("N", "F")),
    ("jacobian", ("P", "F", 3)),
)
# bytes per atom and per pair of a graph besides its descriptors (positions, labels, indices, shifts)
GRAPH_BYTES_PER_ATOM, GRAPH_BYTES_PER_PAIR = 80, 48


def _shape(shape, n_atoms: int, n_pairs: int, n_features: int) -> tuple[int, ...]:
    sizes = {"N": n_atoms, "P": n_pairs, "F": n_features}
    return tuple(sizes.get(d, d) for d in shape)


def dense_bytes(model, structures: list[Structure]) -> float:
    """What the graphs and descriptors of `structures` take in memory (exact pair counts)."""
    per_feature = model.descriptor.n_features * torch.finfo(model.energy_offset.dtype).bits // 8
    total = 0.0
    for s in structures:
        n_pairs = len(neighbor_pairs(s, model.cutoff)[0])
        total += s.n_atoms * (GRAPH_BYTES_PER_ATOM + per_feature) + n_pairs * (GRAPH_BYTES_PER_PAIR + 3 * per_feature)
    return total


def data_key(model, structures: list[Structure]) -> tuple[str, str]:
    """(hash of the data, hash of the descriptor set): what a disk cache is valid for."""
    data = hashlib.sha256()
    for s in structures:
        for value in (s.numbers, s.positions, s.cell, s.pbc, s.forces, s.stress):
            data.update(b"-" if value is None else np.ascontiguousarray(value).tobytes())
        data.update(np.array([np.nan if s.energy is None else s.energy, s.weight]).tobytes())
    return data.hexdigest(), hashlib.sha256(json.dumps(descriptor_identity(model), sort_keys=True).encode()).hexdigest()


def descriptor_identity(model) -> dict:
    return {
        "format": FORMAT,
        "descriptor": model.descriptor.get_config(),
        "cutoff": model.cutoff,
        "angular_cutoff": model.angular_cutoff,
        "dtype": str(model.energy_offset.dtype),
        "inner_radius": model.descriptor.inner_radius.tolist(),  # set from the training data: part of what G is
    }


def cached_graphs(model, structures: list[Structure], label: str, console: Console):
    """Graphs (without stored triplets) with their descriptors, CACHE_CHUNK structures at
    a time, behind a progress bar; descriptors that are not finite are an error naming
    the structures."""
    started = time.perf_counter()
    columns = (TextColumn(f"descriptors {label}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("", total=len(structures))
        for start in range(0, len(structures), CACHE_CHUNK):
            chunk = structures[start : start + CACHE_CHUNK]
            graphs = [model.graph(s, triplets=False) for s in chunk]
            model.cache_descriptors(graphs)
            broken = [
                s.source or f"structure {start + k + 1}"
                for k, (s, g) in enumerate(zip(chunk, graphs))
                if not (torch.isfinite(g.features).all() and torch.isfinite(g.jacobian).all())
            ]
            if broken:
                raise FloatingPointError(
                    f"the descriptors of {label} structure(s) {', '.join(broken[:10])} are not finite"
                    " (overlapping atoms, with data.min_distance switched off?)"
                )
            yield from graphs
            progress.advance(task, len(chunk))
    console.print(f"descriptors and Jacobians {label}: {len(structures)} structures in {time.perf_counter() - started:.0f} s")


# ------------------------------------------------------------------ disk cache


def write_cache(path: Path, model, structures: list[Structure], data_hash: str, label: str, console: Console) -> None:
    """Write the records, the index and the header to a temporary file, then rename it:
    an interrupted write leaves no cache behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{socket.gethostname()}.{os.getpid()}.partial")
    index, dtypes = [], {}
    try:
        with partial.open("wb") as handle:
            handle.write(MAGIC)
            for g in cached_graphs(model, structures, label, console):
                n_atoms, n_pairs = g.numbers.shape[0], g.pair_i.shape[0]
                parts = []
                for name, shape in LAYOUT:
                    value = getattr(g, name).numpy()
                    expected = _shape(shape, n_atoms, n_pairs, model.descriptor.n_features)
                    if value.shape != expected:
                        raise AssertionError(f"disk cache: field {name} has shape {value.shape}, layout says {expected}")
                    dtypes.setdefault(name, value.dtype.str)
                    parts.append(np.ascontiguousarray(value).tobytes())
                record = b"".join(parts)
                index.append((handle.tell(), n_atoms, n_pairs, len(record), zlib.crc32(record)))
                handle.write(record)
            header = {
                **descriptor_identity(model),
                "data": data_hash,
                "n_structures": len(structures),
                "dtypes": dtypes,
                "deferred_angular_cutoff": model.angular_cutoff if model.angular_cutoff > 0 else None,
            }
            table = np.array(index, dtype=np.int64).reshape(-1, 5).tobytes()
            text = json.dumps(header).encode()
            handle.write(table + text + np.array([len(table), len(text)], dtype="<u8").tobytes() + MAGIC)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


class DiskGraphs(Sequence):
    """The graphs of one split, read from a disk cache on demand: `graphs[k]` is a
    Batch, a slice or an index array gives a view on the same file."""

    def __init__(self, path: Path, model, data_hash: str, rows: np.ndarray | None = None):
        self.path = Path(path)
        size = self.path.stat().st_size
        with self.path.open("rb") as handle:
            handle.seek(max(0, size - 24))
            tail = handle.read(24)
            if len(tail) < 24 or tail[16:] != MAGIC or handle.seek(0) != 0 or handle.read(8) != MAGIC:
                raise self._corrupt("it does not start and end as a forcefit descriptor cache")
            n_table, n_text = (int(x) for x in np.frombuffer(tail[:16], dtype="<u8"))
            if n_table + n_text + 32 > size:
                raise self._corrupt("its index runs past the start of the file")
            handle.seek(size - 24 - n_text - n_table)
            table = handle.read(n_table)
            try:
                header = json.loads(handle.read(n_text))
            except ValueError:
                raise self._corrupt("its header is not readable") from None
        expected = descriptor_identity(model)
        mismatch = sorted(k for k in expected if header.get(k) != expected[k])
        if mismatch:
            raise ValueError(
                f"{self.path}: this descriptor cache was written for another descriptor set ({', '.join(mismatch)} differ); "
                "delete it, or point training.cache_dir elsewhere"
            )
        if header.get("data") != data_hash:
            raise ValueError(f"{self.path}: this descriptor cache was written for other data; delete it to rebuild it")
        self.index = np.frombuffer(table, dtype=np.int64).reshape(-1, 5)
        if len(self.index) != header["n_structures"] or (
            len(self.index) and self.index[-1, 0] + self.index[-1, 3] > size - 24 - n_text - n_table
        ):
            raise self._corrupt("its index does not match its size")
        self.dtypes = {name: np.dtype(header["dtypes"][name]) for name, _ in LAYOUT} if len(self.index) else {}
        self.deferred = header["deferred_angular_cutoff"]
        self.n_features = model.descriptor.n_features
        self.rows = np.arange(len(self.index)) if rows is None else np.asarray(rows)
        self._map = None

    def _corrupt(self, why: str) -> ValueError:
        return ValueError(f"{self.path}: corrupt descriptor cache ({why}); delete it and run again to rebuild it")

    def __len__(self) -> int:
        return len(self.rows)

    def view(self, rows) -> DiskGraphs:
        other = copy.copy(self)
        other.rows, other._map = self.rows[np.asarray(rows)], None
        return other

    def __getitem__(self, k):
        if isinstance(k, slice):
            return [self._read(r) for r in self.rows[k]]
        return self._read(int(self.rows[k]))

    def __getstate__(self):  # a map is not copied to another process: it is reopened there
        return {**self.__dict__, "_map": None}

    def _read(self, row: int) -> Batch:
        if self._map is None:
            with self.path.open("rb") as handle:
                self._map = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        offset, n_atoms, n_pairs, length, crc = (int(x) for x in self.index[row])
        record = np.frombuffer(self._map, dtype=np.uint8, count=length, offset=offset).copy()
        start = offset // PAGE * PAGE
        self._map.madvise(mmap.MADV_DONTNEED, start, offset + length - start)  # pages leave this process, not the page cache
        if zlib.crc32(record) & 0xFFFFFFFF != crc & 0xFFFFFFFF:
            raise self._corrupt(f"record {row + 1} fails its checksum")
        values, at = {}, 0
        for name, shape in LAYOUT:
            dtype = self.dtypes[name]
            shape = _shape(shape, n_atoms, n_pairs, self.n_features)
            count = int(np.prod(shape))
            values[name] = torch.from_numpy(record[at : at + count * dtype.itemsize].view(dtype).reshape(shape))
            at += count * dtype.itemsize
        return Batch(**values, deferred_angular_cutoff=self.deferred)


class RecomputedGraphs(Sequence):
    """The graphs of one split rebuilt on demand (neighbours and, with `descriptors`, the
    descriptors and their Jacobian, by the model's descriptor on the CPU): nothing but the
    structures stays in memory."""

    def __init__(self, model, structures: list[Structure], descriptors: bool = True):
        self.model, self.structures, self.descriptors = model, structures, descriptors

    def __len__(self) -> int:
        return len(self.structures)

    def view(self, rows) -> RecomputedGraphs:
        return RecomputedGraphs(self.model, [self.structures[r] for r in np.asarray(rows)], self.descriptors)

    def __getitem__(self, k):
        if isinstance(k, slice):
            return [self._build(s) for s in self.structures[k]]
        return self._build(self.structures[k])

    def _build(self, structure: Structure) -> Batch:
        graph = self.model.graph(structure, triplets=False)
        if self.descriptors:
            self.model.cache_descriptors([graph])
        return graph


def without_jacobians(graphs) -> Sequence:
    """`graphs` for a pass that reads the descriptors but not their Jacobian (the feature
    statistics): recomputed graphs then skip the Jacobian, the costly part; cached graphs
    are read as they are."""
    return RecomputedGraphs(graphs.model, graphs.structures, descriptors=False) if isinstance(graphs, RecomputedGraphs) else graphs


def select(graphs, rows) -> Sequence:
    """The graphs at `rows`: a list for graphs in memory, a view otherwise."""
    return [graphs[r] for r in rows] if isinstance(graphs, list) else graphs.view(rows)


# ----------------------------------------------------------------- the choice


def training_data(model, splits: dict[str, list[Structure]], config, console: Console, group) -> dict[str, Sequence]:
    """Graphs of every split ({"train": [...], ...}) in the mode `config.cache` asks for
    (or `auto` chooses within `config.memory_gb`); a model without descriptors gets its
    graphs in memory. Under torch.distributed, rank 0 decides and the first process of
    each node writes the disk cache while the others wait."""
    if not model.uses_descriptors:
        return {name: [model.graph(s) for s in structures] for name, structures in splits.items()}
    model = copy.deepcopy(model).cpu()  # descriptors are computed on the CPU, whatever the training device
    budget = memory_budget_gb() if config.memory_gb is None else config.memory_gb
    cache_dir = Path(config.cache_dir) if config.cache_dir else default_cache_dir()
    everything = [s for structures in splits.values() for s in structures]
    mode, why = config.cache, "as training.cache asks"
    if mode == "auto":
        mode, why = group.from_main(lambda: _choose(model, everything, budget, cache_dir, config.optimizer == "ridge"))
    console.print(f"training data: {mode} ({why})", soft_wrap=True)
    if mode == "memory":
        return {name: list(cached_graphs(model, structures, name, console)) for name, structures in splits.items()}
    if mode == "recompute":
        return {name: RecomputedGraphs(model, structures) for name, structures in splits.items()}
    out = {}
    for name, structures in splits.items():
        data_hash, descriptor_hash = data_key(model, structures)
        path = cache_dir / f"{data_hash[:16]}-{descriptor_hash[:12]}.ffc"
        if group.local_rank == 0 and not path.exists():
            console.print(f"writing the {name} descriptor cache {path}")
            write_cache(path, model, structures, data_hash, name, console)
        group.barrier()
        out[name] = DiskGraphs(path, model, data_hash)
        console.print(f"{name}: {len(structures)} structures streamed from {path} ({path.stat().st_size / 1e9:.2f} GB)")
    return out


def _choose(model, structures: list[Structure], budget_gb: float, cache_dir: Path, one_pass: bool) -> tuple[str, str]:
    """`one_pass`: the fit reads the Jacobians once (the closed form), so a disk cache would be
    written to be read once: recomputing costs the same pass without the disk."""
    needed = dense_bytes(model, structures) / 1e9
    if needed <= budget_gb:
        return "memory", f"{needed:.2f} GB of descriptors fit in training.memory_gb = {budget_gb:.2f} GB"
    if one_pass:
        return "recompute", (
            f"{needed:.2f} GB of descriptors exceed training.memory_gb = {budget_gb:.2f} GB; "
            "the closed-form fit reads their Jacobians once, so they are not written to disk"
        )
    cache_dir.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(cache_dir).free / 1e9
    if free > 1.2 * needed:
        return "disk", f"{needed:.2f} GB of descriptors exceed training.memory_gb = {budget_gb:.2f} GB; {free:.0f} GB free in {cache_dir}"
    return "recompute", (
        f"{needed:.2f} GB of descriptors exceed training.memory_gb = {budget_gb:.2f} GB and the {free:.1f} GB free in {cache_dir}"
    )
