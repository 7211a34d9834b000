"""Run every benchmark in turn (slow: tens of minutes). Results land in benchmarks/results/."""
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
for script, arguments in (("n2p2_water_speed.py", []), ("pair_fits.py", []), ("mlearn.py", ["--elements", "Si", "Mo"])):
    print(f"== {script}", flush=True)
    subprocess.run([sys.executable, str(HERE / script), *arguments], check=True)
