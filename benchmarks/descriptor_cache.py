"""Time to build the training cache (symmetry functions and their Jacobian) of the mlearn
training sets with the benchmark's settings (benchmarks/mlearn.py), one thread.

    python benchmarks/descriptor_cache.py [--elements Si Mo] [--baseline DIR]

`--baseline DIR` runs the same measurement with the forcefit tree in DIR (say, a checkout of
an earlier commit) in the same run, alternating with this tree, so the two figures share the
machine's state. Prints and writes results/descriptor_cache.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

ONE_RUN = r"""
import json, resource, sys, tempfile, time
from pathlib import Path
import torch
torch.set_num_threads(1)
import mlearn
from forcefit.run import build_model, read_split
try:
    from rich.console import Console
    from forcefit.training.cache import cached_graphs
    prepare = lambda model, structures: list(cached_graphs(model, structures, "train", Console(quiet=True)))
except ImportError:  # an older tree (--baseline)
    from forcefit.run import prepare
import forcefit
assert Path(forcefit.__file__).is_relative_to(Path(sys.argv[3]).resolve()), forcefit.__file__
config = mlearn.config_for("bpnn", sys.argv[2], None, Path(tempfile.mkdtemp()))  # the symmetry-function settings
train, _, _ = read_split(config)
model = build_model(config, train)
prepare(model, train[:2])  # warm-up: the compiled engine is loaded once per process
started = time.perf_counter()
graphs = prepare(model, train)
print(json.dumps({"structures": len(train), "pairs": sum(int(g.pair_i.shape[0]) for g in graphs), "seconds": time.perf_counter() - started,
                  "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}))
"""


def measure(tree: Path, element: str) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tree / "src"), str(HERE)]))  # the tree measured, and mlearn.py here
    done = subprocess.run(
        [sys.executable, "-c", ONE_RUN, str(HERE), element, str(tree / "src")], capture_output=True, text=True, env=env, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--elements", nargs="+", default=["Si", "Mo"])
    parser.add_argument("--baseline", type=Path, help="another forcefit tree to time in the same run")
    args = parser.parse_args()
    lines = ["Training descriptor cache (features + Jacobian), mlearn settings, one thread", ""]
    lines += ["| element | structures | pairs | tree | seconds | peak RSS (GB) |", "|---|---|---|---|---|---|"]
    for element in args.elements:
        trees = [("this tree", HERE.parent)] + ([("baseline", args.baseline)] if args.baseline else [])
        for name, tree in trees:
            r = measure(tree, element)
            lines.append(f"| {element} | {r['structures']} | {r['pairs']:.3g} | {name} | {r['seconds']:.1f} | {r['peak_gb']:.2f} |")
    table = "\n".join(lines)
    print(table)
    (HERE / "results" / "descriptor_cache.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
