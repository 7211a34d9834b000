"""What a user reads: MD summaries, whole numbers in piped output, errors instead of crashes
and wrong units, the version, a sampled max_structures, and the Python API."""

import json
import re

import numpy as np
import pytest
import yaml

import forcefit
from conftest import ROOT, tiny_bpnn, water_cluster
from forcefit.cli import main
from forcefit.config import config_from_dict
from forcefit.io import read_extxyz, write_extxyz
from forcefit.models.saving import save_model
from forcefit.run import read_split
from forcefit.workflows.md import MDResult, summary

ETHANOL = str(ROOT / "data" / "ethanol_gfn2xtb_500K.extxyz")


def test_md_summary_reports_the_equilibrated_half_with_its_label():
    """An NPT run whose first half still holds the drop from the initial velocities: the summary
    gives the second half's T, P and volume, says so, and no whole-run mean."""
    n = 100
    first, second = np.full(n, 500.0), np.full(n, 1000.0) + np.sin(np.arange(n))
    result = MDResult(
        times_ps=np.arange(2 * n) * 1e-3,
        total_energy=np.zeros(2 * n),
        potential_energy=np.zeros(2 * n),
        temperature=np.concatenate([first, second]),
        drift=float("nan"),
        fluctuation=float("nan"),
        pressure=np.concatenate([np.full(n, -2.0), np.full(n, 0.37)]),
        volume=np.concatenate([np.full(n, 640.0), np.full(n, 656.0)]),
    )
    line = summary(result, 32, "npt", periodic=True)
    assert re.search(r"T 1000 ± 1 K", line) and "P 0.370 ± 0.000 GPa" in line and "volume 20.5000" in line, line
    assert "second half: 100 of 200 recorded steps" in line
    nve = MDResult(result.times_ps, np.linspace(0, 1, 2 * n), result.potential_energy, result.temperature, 3.0, 0.5)
    assert "energy drift +3.000 meV/atom/ps" in summary(nve, 9, "nve", periodic=False)


def test_help_and_version_say_what_is_there(capsys):
    with pytest.raises(SystemExit):
        main(["md", "--help"])
    assert "NPT" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"forcefit {forcefit.__version__}"


@pytest.fixture
def water_files(tmp_path):
    """A tiny BPNN's model file and a labelled water file whose names are long."""
    model = tiny_bpnn()
    save_model(model, tmp_path / "model.ffm")
    structures = [water_cluster(s) for s in range(6)]
    rng = np.random.default_rng(0)
    for s in structures:
        s.energy = -1234.56789 + rng.normal()
        s.forces = rng.normal(scale=0.5, size=s.positions.shape)
    data = tmp_path / ("a_rather_long_folder_name_" * 3) / "water_clusters_with_a_long_name.extxyz"
    data.parent.mkdir()
    write_extxyz(data, structures)
    return tmp_path / "model.ffm", data


def test_piped_tables_print_every_number_whole(water_files, capsys):
    """Output to a file or a pipe is not a terminal: tables keep every digit (rich cut them to '…'
    at 80 columns)."""
    model, data = water_files
    assert main(["evaluate", str(model), str(data), "--worst", "3"]) == 0
    out = capsys.readouterr().out
    assert "…" not in out and str(data) in out, out


def test_export_n2p2_of_a_linear_model_says_where_it_goes_and_leaves_nothing(tmp_path, capsys):
    from conftest import tiny_functions
    from forcefit.descriptors import SymmetryFunctions
    from forcefit.models import LinearModel

    save_model(LinearModel(SymmetryFunctions(["H", "O"], tiny_functions(), "cos")), tmp_path / "linear.ffm")
    assert main(["export-n2p2", str(tmp_path / "linear.ffm"), str(tmp_path / "out")]) == 1
    assert "kind bpnn" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_forces_in_kcal_per_mol_read_as_ev_are_refused(tmp_path):
    """A file in kcal/mol read as eV: forces 23× too large. Refused with the numbers and the
    unit key; read with its unit, or with the check off, it trains."""
    structures = read_extxyz(ETHANOL)[:30]
    for s in structures:
        s.energy, s.forces = s.energy * 23.06, s.forces * 23.06
    write_extxyz(tmp_path / "kcal.extxyz", structures)
    values = {"data": {"train": str(tmp_path / "kcal.extxyz")}}
    with pytest.raises(ValueError, match=r"kcal\.extxyz: median \|force component\| 1\d\.\d eV/Å.*data\.energy_unit: kcal/mol"):
        read_split(config_from_dict(values))
    train, _, _ = read_split(config_from_dict({"data": {**values["data"], "energy_unit": "kcal/mol"}}))
    assert np.median(np.abs(np.concatenate([s.forces.ravel() for s in train]))) < 1.0
    read_split(config_from_dict({"data": {**values["data"], "check_units": False}}))


def test_max_structures_draws_across_the_file():
    """The first N frames of a file are often one kind (mlearn's files end in a block of
    Elastic cells): max_structures takes a seeded sample across the whole file."""
    config = config_from_dict({"data": {"train": ETHANOL, "max_structures": 40, "split": [1.0, 0.0, 0.0]}})
    train, _, _ = read_split(config)
    frames = sorted(int(s.source.rsplit("frame ", 1)[-1].split()[0].rstrip(")")) for s in train)
    assert len(train) == 40 and frames[-1] > 200, frames
    again, _, _ = read_split(config)
    assert [s.source for s in again] == [s.source for s in train]


def test_python_api_trains_loads_and_evaluates(tmp_path):
    """forcefit.train / load / evaluate: the README's example, end to end."""
    config = {
        "data": {"train": ETHANOL, "max_structures": 60, "split": [0.7, 0.15, 0.15]},
        "model": {"cutoff": 4.0, "n_radial": 4, "n_angular": 2, "hidden": [8, 8]},
        "training": {"epochs": 2, "batch_size": 8},
    }
    result = forcefit.train(config, output=tmp_path / "run")
    assert (result.run_dir / "model.ffm").is_file()
    assert result.metrics["test"]["energy_mae"] == json.loads((tmp_path / "run" / "metrics.json").read_text())["test"]["energy_mae"]
    model = forcefit.load(result.run_dir / "model.ffm")
    metrics = forcefit.evaluate(model, ETHANOL, output=tmp_path / "evaluation")
    assert metrics["n_structures"] == 1000 and np.isfinite(metrics["forces_mae"])
    assert forcefit.evaluate(result.run_dir / "model.ffm", ETHANOL)["forces_mae"] == metrics["forces_mae"]
    assert (tmp_path / "evaluation" / "metrics.json").is_file()
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({**config, "output": str(tmp_path / "from_yaml")}))
    assert forcefit.train(tmp_path / "config.yaml").run_dir == tmp_path / "from_yaml"
