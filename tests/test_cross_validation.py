"""K-fold cross-validation of the closed-form ridge fit: folds per group, and out-of-fold errors
equal to refitting without each fold and evaluating it with the metrics everyone else uses."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from forcefit.data import collate
from forcefit.models import predict
from forcefit.training.cross_validation import CrossValidation, Setting, fold_labels, score
from forcefit.training.loss import LossWeights
from forcefit.training.metrics import collect, error_statistics
from test_linear import linear_setup


def test_folds_deal_every_group_evenly():
    groups = ["bulk"] * 10 + ["surface"] * 7 + ["vacancy"] * 3
    folds = fold_labels(groups, 3, seed=1)
    assert sorted(np.bincount(folds)) == [6, 7, 7]
    for g in set(groups):
        share = np.bincount(folds[np.array(groups) == g], minlength=3)
        assert share.max() - share.min() <= 1
    assert (fold_labels(groups, 3, seed=1) == folds).all() and not (fold_labels(groups, 3, seed=2) == folds).all()
    with pytest.raises(ValueError, match="at least 2 folds"):
        fold_labels(groups, 1)


@pytest.mark.parametrize("per_atom", [True, False])
def test_out_of_fold_errors_equal_refits_without_each_fold(per_atom):
    model, graphs = linear_setup(30)
    groups = ["a"] * 12 + ["b"] * 18
    folds = fold_labels(groups, 3)
    settings = [Setting(100.0, 1e-8), Setting(1.0, 1e-4), Setting(100.0, 1e-8, 0.0, (("b", 5.0),))]
    weights = LossWeights(energy=1.0, forces=1.0, energy_per_atom=per_atom)
    cv = CrossValidation(model, graphs, groups, folds, weights, weighted_groups={"b"})
    results = cv.errors(settings)
    assert results[2]["group_weights"] == {"b": 5.0} and results[2]["energy_mae"] != results[0]["energy_mae"]
    for setting, result in zip(settings, results):
        energy, forces = {"a": [], "b": []}, {"a": [], "b": []}
        # the refit weighs group b's structures by the setting's factor through their own w_s
        weighed = [replace(g, weight=g.weight * setting.weight_of(name)) for g, name in zip(graphs, groups)]
        for k in range(3):
            inside = [g for g, f in zip(weighed, folds) if f != k]
            model.fit_ridge(inside, LossWeights(setting.energy_weight, 1.0, per_atom), setting.ridge)
            for group in ("a", "b"):
                held = [g for g, f, name in zip(graphs, folds, groups) if f == k and name == group]
                r = collect(model, held)
                energy[group].append(np.abs(r["reference_energy"] - r["ref_energy"]) / r["n_atoms"] * 1000.0)
                forces[group].append(np.abs(r["forces"] - r["ref_forces"]).ravel() * 1000.0)
        for group in ("a", "b"):
            assert result["groups"][group]["energy_mae"] == pytest.approx(np.concatenate(energy[group]).mean(), rel=1e-7)
            assert result["groups"][group]["forces_mae"] == pytest.approx(np.concatenate(forces[group]).mean(), rel=1e-7)
        every = np.concatenate(forces["a"] + forces["b"]).mean()
        assert result["forces_mae"] == pytest.approx(every, rel=1e-7)
        assert result["energy_mae"] == pytest.approx(np.concatenate(energy["a"] + energy["b"]).mean(), rel=1e-7)
    # the fit on every structure is fit_ridge's, and the metrics module's MAE has the definition used above
    cv.fit(settings[1])
    direct = collect(model, graphs)
    model.fit_ridge(graphs, LossWeights(settings[1].energy_weight, 1.0, per_atom), settings[1].ridge)
    again = collect(model, graphs)
    for key in ("reference_energy", "forces"):
        np.testing.assert_allclose(direct[key], again[key], rtol=1e-9, atol=1e-9)
    r = collect(model, graphs[:5])
    assert error_statistics(r, model.elements)["forces_mae"] == pytest.approx(np.abs(r["forces"] - r["ref_forces"]).mean() * 1000)


def test_repeated_folds_pool_the_repetitions():
    """With the k-fold split repeated (one row of folds per seed), the out-of-fold errors are
    those of each repetition on its own, pooled: every structure is held out once per
    repetition, so the pooled MAE is the mean of the repetitions' MAEs, overall and per group;
    the fit on everything does not depend on the repetitions."""
    model, graphs = linear_setup(30)
    groups = ["a"] * 12 + ["b"] * 18
    settings = [Setting(100.0, 1e-8), Setting(1.0, 1e-4)]
    weights = LossWeights(energy=1.0, forces=1.0)
    folds = np.stack([fold_labels(groups, 3, seed) for seed in (0, 1)])
    assert not (folds[0] == folds[1]).all()
    with pytest.raises(ValueError, match="needs a descriptor with polynomial degrees .ace., not symmetry_functions"):
        CrossValidation(model, graphs, groups, folds, weights).errors([Setting(1.0, 1e-4, 2.0)])
    repeated = CrossValidation(model, graphs, groups, folds, weights)
    pooled = repeated.errors(settings)
    each = [CrossValidation(model, graphs, groups, f, weights).errors(settings) for f in folds]
    for s in range(len(settings)):
        for key in ("energy_mae", "forces_mae"):
            assert pooled[s][key] == pytest.approx(0.5 * (each[0][s][key] + each[1][s][key]), rel=1e-10)
            assert each[0][s][key] != pytest.approx(each[1][s][key], rel=1e-6)  # the repetitions differ
            for g in ("a", "b"):
                assert pooled[s]["groups"][g][key] == pytest.approx(
                    0.5 * (each[0][s]["groups"][g][key] + each[1][s]["groups"][g][key]), rel=1e-10
                )
    repeated.fit(settings[1])
    fitted = collect(model, graphs)
    model.fit_ridge(graphs, LossWeights(settings[1].energy_weight, 1.0), settings[1].ridge)
    direct = collect(model, graphs)
    for key in ("reference_energy", "forces"):
        np.testing.assert_allclose(fitted[key], direct[key], rtol=1e-9, atol=1e-9)


def test_train_chooses_by_cross_validation_from_yaml(tmp_path):
    import json

    import yaml

    from conftest import ROOT
    from forcefit.config import load_config
    from forcefit.data import collate
    from forcefit.models import predict
    from forcefit.run import train_from_config

    grid = {"folds": 3, "energy_weights": [1.0, 100.0], "ridges": [1e-8, 1e-2], "smoothness": [0.0, 2.0]}
    config = {
        "data": {"train": str(ROOT / "data" / "ethanol_gfn2xtb_500K.extxyz"), "max_structures": 40},
        "model": {"kind": "linear", "cutoff": 4.0, "descriptor": "ace", "ace": {"n_radial": 3, "l_max": 2, "n_radial_4": 2, "l_max_4": 1}},
        "training": {"optimizer": "ridge", "cross_validation": grid},
        "output": str(tmp_path / "run"),
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    model, _ = train_from_config(load_config(path))
    report = json.loads((tmp_path / "run" / "cross_validation.json").read_text())
    assert len(report["grid"]) == 8
    best = min(report["grid"], key=lambda r: r["score"])
    assert report["chosen"] == best
    best_e, best_f = min(r["energy_mae"] for r in report["grid"]), min(r["forces_mae"] for r in report["grid"])
    for r in report["grid"]:
        assert r["score"] == pytest.approx(r["energy_mae"] / best_e + r["forces_mae"] / best_f)
    # the saved model is the fit on the whole training split with the chosen setting
    from forcefit.run import build_model, read_split
    from forcefit.training.loss import LossWeights

    loaded = load_config(path)
    train, _, _ = read_split(loaded)
    refit = build_model(loaded, train)
    graphs = [refit.graph(s, triplets=False) for s in train]
    refit.cache_descriptors(graphs)
    refit.initialise(graphs)
    refit.fit_ridge(graphs, LossWeights(energy=best["energy_weight"]), best["ridge"], best["smoothness"])
    batch = collate(graphs[:5])
    np.testing.assert_allclose(predict(model, batch).forces.numpy(), predict(refit, batch).forces.numpy(), rtol=1e-7, atol=1e-9)


def test_cross_validation_settings_are_checked():
    from forcefit.config import config_from_dict

    base = {"data": {"train": "x.extxyz"}, "model": {"kind": "linear"}}
    with pytest.raises(ValueError, match="unknown"):
        config_from_dict({**base, "training": {"optimizer": "ridge", "cross_validation": {"fold": 5}}})
    with pytest.raises(ValueError, match="needs training.optimizer: ridge"):
        config_from_dict({**base, "training": {"cross_validation": {"folds": 5}}})
    with pytest.raises(ValueError, match="ridges"):
        config_from_dict({**base, "training": {"optimizer": "ridge", "cross_validation": {"ridges": [-1.0]}}})
    grid = config_from_dict({**base, "training": {"optimizer": "ridge", "ridge": 1e-4, "cross_validation": {"energy_weights": [1, 10]}}})
    expected = {"folds": 5, "seed": 0, "repeats": 1, "energy_weights": [1.0, 10.0], "ridges": [1e-4], "smoothness": [0.0]}
    assert grid.training.cross_validation.model_dump() == {**expected, "targets": None, "group_weights": None}
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="repeats"):
            config_from_dict({**base, "training": {"optimizer": "ridge", "cross_validation": {"repeats": bad}}})
    with pytest.raises(ValueError, match="targets"):
        config_from_dict({**base, "training": {"optimizer": "ridge", "cross_validation": {"targets": [2.2]}}})
    grid = config_from_dict({**base, "training": {"optimizer": "ridge", "cross_validation": {"group_weights": [{}, {"Surface": 3}]}}})
    assert grid.training.cross_validation.group_weights == [{}, {"Surface": 3.0}]
    for bad in ([{"Surface": 0}], {"Surface": 3}, [["Surface"]]):
        with pytest.raises(ValueError, match="group_weights"):
            config_from_dict({**base, "training": {"optimizer": "ridge", "cross_validation": {"group_weights": bad}}})
    with pytest.raises(ValueError, match="training.group_weights"):
        config_from_dict({**base, "training": {"group_weights": {"Surface": -1}}})


def test_targets_choose_the_setting_closest_to_meeting_both():
    results = [{"energy_mae": 2.4, "forces_mae": 40.0}, {"energy_mae": 2.2, "forces_mae": 50.0}, {"energy_mae": 2.0, "forces_mae": 70.0}]
    assert np.argmin(score(results, [2.2, 60.0])) == 1  # only the second meets both
    assert np.argmin(score(results)) == 0  # relative sum: 1.2 + 1.0 against 1.1 + 1.25 and 1.0 + 1.75


def test_group_weights_of_a_run_weigh_that_groups_structures_in_the_loss(tmp_path):
    from conftest import ROOT
    from forcefit.config import config_from_dict
    from forcefit.io import read_extxyz, write_extxyz
    from forcefit.run import build_model, read_split, train_from_config
    from forcefit.training.loss import weigh_groups

    structures = read_extxyz(ROOT / "data" / "ethanol_gfn2xtb_500K.extxyz")[:24]
    for k, s in enumerate(structures):
        s.group = "hot" if k % 3 == 0 else "cold"
    path = tmp_path / "grouped.extxyz"
    write_extxyz(path, structures)
    settings = {
        "data": {"train": str(path), "split": [1.0, 0.0, 0.0]},
        "model": {"kind": "linear", "cutoff": 4.0, "descriptor": "ace", "ace": {"n_radial": 3, "l_max": 2, "n_radial_4": 2, "l_max_4": 1}},
        "training": {"optimizer": "ridge", "ridge": 1e-6, "energy_weight": 10.0, "group_weights": {"hot": 20.0}},
    }
    model, _ = train_from_config(config_from_dict({**settings, "output": str(tmp_path / "run")}))
    # the same fit by hand, with the factor put into each structure's own weight
    config = config_from_dict({**settings, "output": str(tmp_path / "unused")})
    train, _, _ = read_split(config)
    weighed = [replace(s, weight=20.0 if s.group == "hot" else 1.0) for s in train]
    assert [s.weight for s in weigh_groups(train, {"hot": 20.0}, train)] == [s.weight for s in weighed]
    by_hand, plain = build_model(config, train), build_model(config, train)
    for m, data in ((by_hand, weighed), (plain, train)):
        graphs = [m.graph(s, triplets=False) for s in data]
        m.cache_descriptors(graphs)
        m.initialise(graphs)
        m.fit_ridge(graphs, LossWeights(energy=10.0), 1e-6)
    # 978 coefficients against 672 labels: λ alone fixes some directions, where rounding-level
    # differences of the design rows (the run's Jacobians per structure, these in one batch)
    # move the coefficients; compare what a user sees, the fitted energies (with b: every structure
    # has one composition, so the split between b and the energies per element is not fixed) and forces
    batch = collate([by_hand.graph(s, triplets=False) for s in train])
    run, hand, unweighted = (predict(m, batch) for m in (model, by_hand, plain))
    np.testing.assert_allclose(run.reference_energy.detach(), hand.reference_energy.detach(), rtol=0, atol=1e-6)  # one composition: E + b
    np.testing.assert_allclose(run.forces.detach(), hand.forces.detach(), rtol=0, atol=1e-6)
    assert not torch.allclose(run.forces, unweighted.forces, rtol=1e-3, atol=1e-3 * float(hand.forces.abs().max()))
    with pytest.raises(ValueError, match=r"names \['Hot'\]; the training structures' groups are \['cold', 'hot'\]"):
        train_from_config(config_from_dict({**settings, "training": {"group_weights": {"Hot": 2.0}}, "output": str(tmp_path / "r2")}))
