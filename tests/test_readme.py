"""The README's key tables are the sections' own declarations (so docs and validation do not drift)."""
import re
from pathlib import Path

from snnbatch.orchestrator import keys, spec

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_the_key_tables_are_the_sections_declarations():
    block = re.search(r"<!-- keys: begin -->\n(.*)<!-- keys: end -->", README, re.S)
    assert block, "the README has no generated key tables"
    assert block.group(1) == keys.markdown(builtin_only=True), (
        "README key tables differ from the sections: regenerate them with `snnbatch keys --markdown --builtin`")


def test_every_key_has_a_meaning_and_every_top_level_key_is_documented():
    for heading, cls in keys.sections(builtin_only=True):
        undocumented = [k for k, f in cls.model_fields.items() if not f.description]
        assert not undocumented, f"{heading}: keys without a docstring: {undocumented}"
    for name in spec.Spec.model_fields:
        assert f"`{name}`" in README, name
