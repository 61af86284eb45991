"""The rules' public description (rules.public): what /rules.json and `edge rules export` give the
JavaScript package, the shared test vectors made from it, and keyless widths snapped per master."""

from __future__ import annotations

import json

import pytest

from edge.config import DEMO_MASTERS
from origin.core.errors import Problem
from origin.core.master import MasterHeader
from rules.keyless import Keyless, declared_options
from rules.loader import load_rules
from rules.public import describe
from rules.settings import BUNDLED_RULES
from rules.srcset import plan
from tests.support.app import in_process
from tests.support.cli import run_cli
from tests.support.planning import CAPACITY
from tests.support.vectors import VECTORS, files

SMALL = MasterHeader("jpeg", 640, 427, 3, False, 1)


def test_the_shared_vectors_are_what_the_python_code_makes_now():
    for name, text in files().items():
        committed = (VECTORS / name).read_text(encoding="utf-8")
        assert committed == text, f"integrations/vectors/{name} is stale: run .venv/bin/python -m tests.support.vectors"


def test_the_description_has_every_rule_and_nothing_secret():
    ruleset = load_rules(BUNDLED_RULES)
    doc = describe(ruleset, CAPACITY, keyless=True)
    assert set(doc["rules"]) == {r.name for r in ruleset.rules}
    hero = doc["rules"]["hero"]
    assert hero["sizes"] == "100vw" and hero["lcp"] is True
    assert [r["min_viewport"] for r in hero["ranges"]] == [0, 768, 1280]
    assert hero["ranges"][0]["framing"]["aspect"] == [4, 5] and hero["ranges"][0]["framing"]["focal"] == [0.62, 0.45]
    text = json.dumps(doc)
    assert "secret" not in text and "k1" not in text


def test_declared_widths_are_the_plan_of_a_master_too_large_to_cap_them():
    ruleset = load_rules(BUNDLED_RULES)
    huge = MasterHeader("jpeg", 20000, 20000, 3, False, 1)
    doc = describe(ruleset, CAPACITY, keyless=True)
    for rule in ruleset.rules:
        planned = plan(rule, huge, CAPACITY)
        assert doc["rules"][rule.name]["img"]["widths"] == [c.width for c in planned.img.candidates], rule.name


def test_a_declared_width_past_a_small_masters_candidates_snaps_to_the_one_that_serves_it():
    ruleset = load_rules(BUNDLED_RULES)
    rule = ruleset.named("hero")
    declared = describe(ruleset, CAPACITY, keyless=True)["rules"]["hero"]["img"]["widths"]
    candidates = [c.width for c in plan(rule, SMALL, CAPACITY).img.candidates]
    assert declared[-1] > candidates[-1]
    for width in declared:
        opts = declared_options(Keyless("hero", width, None), rule, SMALL, CAPACITY)
        assert opts.w == next((c for c in candidates if c >= width), candidates[-1])
    with pytest.raises(Problem) as refused:  # a width no rule declares stays refused
        declared_options(Keyless("hero", declared[-1] + 1, None), rule, SMALL, CAPACITY)
    assert refused.value.status == 403


def test_rules_json_is_what_edge_rules_export_prints(tmp_path, capsys):
    assert run_cli("rules", "export") == 0
    exported = json.loads(capsys.readouterr().out)
    with in_process(tmp_path, masters=DEMO_MASTERS) as app, app.client(base_url=app.base) as client:
        r = client.get("/rules.json")
        assert r.status_code == 200 and r.headers["cache-control"] == "public, max-age=60"
        assert r.json() == exported
        assert client.get("/rules.json", headers={"If-None-Match": r.headers["etag"]}).status_code == 304
