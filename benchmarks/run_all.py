"""Run every benchmark in turn (slow: about three hours; calibration uses the demo model if
present). Results land in benchmarks/results/, which holds exactly what this regenerates
(benchmarks/README.md lists each script, its time and its result files)."""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = (
    ("n2p2_water_speed.py", []),
    ("pair_fits.py", []),
    ("calibration.py", []),
    ("active_learning_evidence.py", ["--repeats", "4"]),
    # the three Si families in one run: its result file and model files are what pareto.py and
    # ace_scaling.py read (mlearn_Si_bpnn_ace-linear_ace-bpnn.json)
    ("mlearn.py", ["--elements", "Si", "--families", "bpnn", "ace-linear", "ace-bpnn", "--max-seconds", "1200"]),
    ("mlearn.py", ["--elements", "Mo"]),
    ("mlearn.py", ["--elements", "Mo", "--families", "ace-linear"]),
    ("pareto.py", []),
    ("ace_scaling.py", []),
    ("ethanol_peer.py", []),
    ("engine_scaling.py", ["--peer-repeats", "1", "2"]),
    ("descriptor_cache.py", []),
    ("training_scale.py", []),
    ("grade_calibration.py", []),
    ("lammps_scaling.py", ["--million"]),
)
for script, arguments in (*SCRIPTS, ("summary.py", [])):  # the summary table last, from the results
    print(f"== {script}", flush=True)
    subprocess.run([sys.executable, str(HERE / script), *arguments], check=True)
