"""Run every benchmark in turn (slow: about two hours; calibration uses the demo model if present). Results land in benchmarks/results/."""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = (
    ("n2p2_water_speed.py", []),
    ("pair_fits.py", []),
    ("calibration.py", []),
    ("active_learning_evidence.py", []),
    ("mlearn.py", ["--elements", "Si"]),
    ("mlearn.py", ["--elements", "Mo"]),
    ("mlearn.py", ["--elements", "Si", "--families", "ace-linear"]),
    ("mlearn.py", ["--elements", "Mo", "--families", "ace-linear"]),
    ("pareto.py", []),  # times the Si models the two runs above wrote
    ("ethanol_peer.py", []),
)
for script, arguments in SCRIPTS:
    print(f"== {script}", flush=True)
    subprocess.run([sys.executable, str(HERE / script), *arguments], check=True)
