"""docs/config.md is the config classes' own reference: every key documented, and the file
regenerated whenever a key or its comment changes."""

from conftest import ROOT
from forcefit.config_reference import SECTIONS, reference, undocumented


def test_every_config_key_is_documented():
    assert not undocumented(), f"config keys without a documenting comment in forcefit/config.py: {undocumented()}"


def test_the_reference_in_docs_is_the_generated_one():
    written = (ROOT / "docs" / "config.md").read_text()
    assert written == reference(), "docs/config.md is out of date: python -m forcefit.config_reference > docs/config.md"


def test_a_key_without_a_comment_would_be_caught():
    from dataclasses import dataclass

    import forcefit.config_reference as module

    @dataclass
    class Probe:
        documented: int = 1  # a meaning
        bare: int = 2

    SECTIONS["probe"] = Probe
    try:
        assert module.undocumented() == ["probe.bare"]
    finally:
        del SECTIONS["probe"]
