"""The README's examples hold as printed: a newcomer copies them."""

from __future__ import annotations

import re
from pathlib import Path

from edge.config import Config, load_config
from origin.core.keys import PIPELINE_VERSION
from rules.public import SCHEMA
from tests.support.corpus import CORPUS

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_configuration_example_loads_and_names_every_section(tmp_path: Path):
    text = README.read_text()
    example = re.search(r"```toml\n(.*?)```", text[text.index("## Configuration") :], re.S)
    assert example
    path = tmp_path / "edge.toml"
    path.write_text(example.group(1))
    # Only the masters directory is this machine's (the example's /srv/masters is not here).
    config = load_config(path, env={"EDGE_MASTERS": str(CORPUS)})
    assert config.signing_keys()[0].kid == "k2"
    sections = {name for name in re.findall(r"^\[(\w+)\]", example.group(1), re.M)}
    assert sections == set(Config.__dataclass_fields__), "every section is in the example"


def test_the_changelog_names_the_contracts_as_they_are_now():
    """A bump of the pipeline version or the rules schema must be written down for upgraders."""
    changelog = (README.parent / "CHANGELOG.md").read_text()
    assert f"PIPELINE_VERSION {PIPELINE_VERSION}" in changelog
    assert f"schema {SCHEMA} (rules/public.py)" in changelog


def test_the_packages_say_they_are_typed():
    for package in ("edge", "origin", "rules", "sitemaps"):
        assert (README.parent / package / "py.typed").exists(), package
