"""Model files are data: checksummed, validated field by field, and never import code unasked."""

import sys

import numpy as np
import pytest
import torch

from conftest import tiny_bpnn, water_cluster
from forcefit.models.forces import predict
from forcefit.models.saving import checksum, load_model, model_to_dict, save_model


def energy_and_forces(model, structure):
    p = predict(model, model.graph(structure))
    return p.energy.numpy(), p.forces.numpy()


def test_every_damaged_byte_is_refused_or_harmless(tmp_path):
    """One byte changed at 120 random offsets: each load either raises a ValueError naming
    the file or (a byte the content does not depend on) gives bit-identical predictions."""
    save_model(tiny_bpnn(), tmp_path / "m.ffm")
    original = (tmp_path / "m.ffm").read_bytes()
    structure = water_cluster(3)
    e0, f0 = energy_and_forces(load_model(tmp_path / "m.ffm"), structure)
    rng = np.random.default_rng(0)
    refused = 0
    for offset in rng.choice(len(original), 120, replace=False):
        damaged = bytearray(original)
        damaged[offset] ^= 1 << int(rng.integers(8))
        (tmp_path / "d.ffm").write_bytes(bytes(damaged))
        try:
            model = load_model(tmp_path / "d.ffm")
        except ValueError as err:
            assert "d.ffm" in str(err)
            refused += 1
            continue
        e, f = energy_and_forces(model, structure)
        assert np.array_equal(e, e0) and np.array_equal(f, f0), f"byte {offset} changed the predictions silently"
    assert refused > 60


def test_edited_content_fails_the_checksum_and_crafted_fields_are_refused(tmp_path):
    data = model_to_dict(tiny_bpnn())
    data["state"]["networks.0.0.bias"][0] += 0.01  # an edit without a new checksum
    torch.save(data, tmp_path / "edited.ffm")
    with pytest.raises(ValueError, match=r"edited.ffm: checksum mismatch"):
        load_model(tmp_path / "edited.ffm")
    crafted = model_to_dict(tiny_bpnn())
    crafted["config"]["descriptor"]["functions"][0]["rc"] = 262144.0  # once made the neighbour search hang
    crafted["checksum"] = checksum(crafted)
    torch.save(crafted, tmp_path / "crafted.ffm")
    with pytest.raises(ValueError, match=r"crafted.ffm: config.descriptor.functions\[0\].rc = 262144.0 Å is outside"):
        load_model(tmp_path / "crafted.ffm")
    crafted = model_to_dict(tiny_bpnn())
    crafted["config"]["hidden"] = "wide"  # once a raw TypeError
    crafted["checksum"] = checksum(crafted)
    torch.save(crafted, tmp_path / "typed.ffm")
    with pytest.raises(ValueError, match=r"typed.ffm: its config does not describe a valid bpnn model"):
        load_model(tmp_path / "typed.ffm")


def test_a_model_file_never_imports_code_without_consent(tmp_path, monkeypatch):
    """A kind: pair model names its φ as module:function. Loading it must not import that
    module (which could run anything) unless the user says trust_code / --trust-code."""
    from forcefit.cli import main
    from forcefit.models import CustomPair

    marker = tmp_path / "imported.txt"
    (tmp_path / "shared_form.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\ndef phi(r, p):\n    return p['a'] * (r - p['b']) ** 2\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    model = CustomPair(["Ar"], 5.0, {"Ar-Ar": {"a": 0.1, "b": 3.0}}, function="shared_form:phi")
    save_model(model, tmp_path / "pair.ffm")
    marker.unlink()
    del sys.modules["shared_form"]
    with pytest.raises(ValueError, match=r"pair.ffm: this model's pair function is Python code named in the file"):
        load_model(tmp_path / "pair.ffm")
    assert main(["info", str(tmp_path / "pair.ffm")]) == 1
    assert not marker.exists(), "nothing was imported"
    assert main(["info", str(tmp_path / "pair.ffm"), "--trust-code"]) == 0
    assert marker.exists()


def test_version_2_files_are_read_and_new_fields_are_required_in_version_3(tmp_path):
    """Files of format version 2 (before energies per element of pair potentials, the descriptors'
    inner cutoff and the core repulsion) load with those parts off and predict as they did;
    a version-3 file missing one of them is damage, refused."""
    from forcefit.models import LennardJones

    for model in (tiny_bpnn(), LennardJones(["H", "O"], 3.5, {k: {"epsilon": 0.02, "sigma": 1.1} for k in ("H-H", "H-O", "O-O")})):
        old = model_to_dict(model)
        old["version"] = 2
        old["state"] = {k: v for k, v in old["state"].items() if not k.endswith(("inner_radius", "element_energies"))}
        old["config"].pop("core_repulsion")
        old["checksum"] = checksum(old)
        torch.save(old, tmp_path / "v2.ffm")
        loaded = load_model(tmp_path / "v2.ffm")
        assert loaded.core_repulsion is None
        for a, b in zip(energy_and_forces(loaded, water_cluster(3)), energy_and_forces(model, water_cluster(3))):
            assert np.array_equal(a, b)
        old["version"] = 3
        old["checksum"] = checksum(old)
        torch.save(old, tmp_path / "v3.ffm")
        with pytest.raises(ValueError, match=r"v3.ffm: its tensors do not fit the model its config describes \(missing "):
            load_model(tmp_path / "v3.ffm")
