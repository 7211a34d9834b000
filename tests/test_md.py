"""Molecular dynamics: thermostat and barostat sample what they claim, logs and checks."""

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.io import read

from forcefit.workflows.md import LOG_COLUMNS, MDRecording, MDSettings, partial_distributions, run_md
from test_cli import DATA


def test_nvt_mean_temperature_of_a_small_molecule_is_the_target():
    """Ethanol (9 atoms) at 500 K: the mean kinetic temperature over the run equals the
    target within its statistical error (ASE's fixcm=True Langevin gave ~660 K here)."""
    atoms = read(DATA, index=0)
    settings = MDSettings(steps=4000, timestep_fs=0.5, temperature_K=500.0, ensemble="nvt", friction_per_fs=0.05, seed=3)
    result = run_md(atoms, EMT(), settings, MDRecording(progress=False))
    temperatures = result.temperature[200:]
    blocks = temperatures[: len(temperatures) // 20 * 20].reshape(20, -1).mean(axis=1)
    error = blocks.std(ddof=1) / np.sqrt(len(blocks))
    assert error < 25.0, "the run is too short to test anything"
    assert abs(temperatures.mean() - 500.0) < 3.0 * error, f"mean T {temperatures.mean():.1f} K ± {error:.1f} K"


def test_npt_keeps_pressure_and_logs_it(tmp_path):
    atoms = bulk("Cu", "fcc", a=3.7, cubic=True).repeat((2, 2, 2))
    log = tmp_path / "md.log"
    result = run_md(
        atoms,
        EMT(),
        MDSettings(steps=1500, timestep_fs=2.0, temperature_K=300.0, ensemble="npt", pressure_GPa=0.0),
        MDRecording(progress=False, log=str(log), trajectory=str(tmp_path / "md.traj"), trajectory_interval=100),
    )
    lines = log.read_text().splitlines()
    assert lines[1] == f"# {LOG_COLUMNS}" and len(lines) == 2 + 1501
    assert np.all(np.isfinite(result.pressure)) and result.volume[-1] != result.volume[0]
    assert abs(result.pressure[750:].mean()) < 1.0, "the barostat holds the mean pressure near the 0 GPa target"
    frames = read(tmp_path / "md.traj", index=":")
    assert len(frames) == 16
    r, g = partial_distributions(frames[8:], 3.5)
    assert set(g) == {"all", "Cu-Cu"} and np.allclose(g["all"], g["Cu-Cu"])


@pytest.mark.parametrize(
    "bad, message",
    [
        (dict(steps=0), "steps"),
        (dict(timestep_fs=-1.0), "timestep"),
        (dict(ensemble="nvt", temperature_K=0.0), "temperature above 0 K"),
        (dict(ensemble="npt"), "periodic in all three directions"),
        (dict(ensemble="nph"), "ensemble 'nph'"),
    ],
)
def test_md_arguments_are_checked_before_the_run(bad, message):
    class Explodes(EMT):
        def calculate(self, *args, **kwargs):
            raise AssertionError("no force may be computed for a run that cannot start")

    options = dict(steps=10, timestep_fs=0.5, temperature_K=300.0) | bad
    with pytest.raises(ValueError, match=message):
        run_md(read(DATA, index=0), Explodes(), MDSettings(**options), MDRecording(progress=False))
