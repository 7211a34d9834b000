"""docs/config.md is the settings classes' own reference: every key documented, and the file
regenerated whenever a key or its meaning changes."""

from pydantic import Field

from conftest import ROOT
from forcefit.config_reference import SECTIONS, reference, undocumented
from forcefit.settings import Settings


def test_every_config_key_is_documented():
    assert not undocumented(), f"config keys without a description: {undocumented()}"


def test_the_reference_in_docs_is_the_generated_one():
    written = (ROOT / "docs" / "config.md").read_text()
    assert written == reference(), "docs/config.md is out of date: python -m forcefit.config_reference > docs/config.md"


def test_a_key_without_a_description_would_be_caught():
    class Probe(Settings):
        documented: int = Field(1, description="a meaning")
        bare: int = 2

    SECTIONS["probe"] = Probe
    try:
        assert undocumented() == ["probe.bare"]
        assert "| `documented` | `int` | `1` | a meaning |" in reference()
    finally:
        del SECTIONS["probe"]


def test_every_model_kind_has_its_keys_in_the_reference():
    from forcefit.models import MODELS

    headings = [line for line in reference().splitlines() if line.startswith("## `model, kind: ")]
    kinds = {kind for line in headings for kind in line.removeprefix("## `model, kind: ").rstrip("`").split(" | ")}
    assert kinds == {name for name, cls in MODELS.items() if cls.Settings is not None} == {"bpnn", "linear", "lj", "morse", "pair"}
