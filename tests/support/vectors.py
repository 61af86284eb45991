"""The shared test vectors of the JavaScript package (integrations/vectors), made by the Python code.

    .venv/bin/python -m tests.support.vectors      rewrite them after a deliberate change

tests/unit/test_vectors.py fails when the files are not what this module makes now, and
integrations/js/test checks the package against the same files: so the two implementations of
the canonical form, the signature and the srcset planner cannot drift apart silently.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edge.signing import Signer, SigningKey
from origin.core.errors import Problem
from origin.core.master import MasterHeader
from origin.core.request import parse_options
from rules.loader import load_rules
from rules.markup import build_markup
from rules.public import describe
from rules.settings import BUNDLED_RULES
from tests.support.planning import CAPACITY

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "integrations" / "vectors"
RULE_SETS = {"examples": Path(BUNDLED_RULES), "vectors": VECTORS / "rules"}
KEYS = [
    SigningKey("k1", b"test-secret-0123456789abcdef"),
    SigningKey("rot-2026.b", "ünïcödé secret, with spaces & symbols".encode()),
]
BASE_URL = "https://img.example.com"

# (path, options, route): every option, paths with non-ASCII and reserved characters.
SIGNING_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("cat.jpg", {"w": 640, "fm": "avif"}, "img"),
    ("cat.jpg", {}, "img"),
    ("cat.jpg", {"w": 640, "dpr": 1, "fit": "cover", "g": "center", "fm": "auto"}, "img"),  # defaults dropped
    ("photos/2026/été à Paris.jpg", {"w": 1280, "h": 720, "fit": "contain"}, "img"),
    ("日本/猫 #1.png", {"w": 300, "dpr": 2.5, "q": "auto"}, "img"),
    ("a b+c&d=e?f;g,h:i@j$k!l'm(n)o*p~q_r.s-t.webp", {"w": 100}, "img"),
    ("100%/x%2Fy.jpg", {"h": 90, "fm": "webp", "q": 82}, "img"),
    ("deep/er/path/img.jpeg", {"w": 800, "h": 600, "g": "focal", "fx": 0.3333, "fy": 0.75}, "img"),
    ("deep/er/path/img.jpeg", {"w": 800, "h": 600, "g": "focal", "fx": 0.5}, "img"),  # the focal default
    ("scan.tif", {"crop": "10,20,300,400", "w": 150, "fit": "fill"}, "img"),
    ("hero.jpg", {"w": 1920, "max_bytes": 150000, "fm": "jpeg"}, "img"),
    ("hero.jpg", {"w": 640, "ch": "width,dpr,save-data"}, "img"),
    ("hero.jpg", {"w": 640, "v": "0123456789abcdef", "exp": 1893456000}, "img"),
    ("hero.jpg", {"w": 640, "g": "smart", "fit": "outside", "fm": "png"}, "img"),
    ("hero.jpg", {"w": 640, "kid": "rot-2026.b"}, "img"),
    ("hero.jpg", {"dpr": 3, "w": 48, "h": 48, "g": "ne", "fm": "gif"}, "img"),
    ("img/cat.jpg", {"w": 10}, "img"),  # a folder named like the route stays in the path
    ("info/x.jpg", {"v": "0123456789abcdef"}, "info"),
    ("hero.jpg", {"v": "0123456789abcdef"}, "info"),
    ("hero.jpg", {"exp": 1893456000, "kid": "rot-2026.b"}, "info"),
]

# Masters the markup vectors plan for: (name, header, short version).
MASTERS: list[tuple[str, MasterHeader, str]] = [
    ("large.jpg", MasterHeader("jpeg", 6000, 4000, 3, False, 1), "a1b2c3d4e5f60718"),
    ("small.jpg", MasterHeader("jpeg", 300, 200, 3, False, 1), "0badc0ffee123456"),
    ("tiny.png", MasterHeader("png", 40, 30, 4, True, 1), "feedfacecafe0001"),
    ("portrait alpha.png", MasterHeader("png", 800, 1200, 4, True, 1), "1234567890abcdef"),
    ("moving/clip.webp", MasterHeader("webp", 480, 270, 4, True, 12), "abcdefabcdef0123"),
    ("narrow.jpg", MasterHeader("jpeg", 90, 40, 3, False, 1), "9999999999999999"),
]


def signing_vectors() -> dict[str, Any]:
    cases = []
    for path, options, route in SIGNING_CASES:
        key = next((k for k in KEYS if k.kid == options.get("kid")), KEYS[0])
        signer = Signer([key, *(k for k in KEYS if k is not key)])
        opts = parse_options({name: str(value) for name, value in options.items()})
        cases.append({"path": path, "options": options, "route": route, "url": signer.sign_url(path, opts, route)})
    return {"keys": [{"id": k.kid, "secret": k.secret.decode()} for k in KEYS], "cases": cases}


def rule_sets() -> dict[str, Any]:
    return {name: describe(load_rules(str(path)), CAPACITY, keyless=True) for name, path in RULE_SETS.items()}


def markup_vectors() -> dict[str, Any]:
    sign = Signer(KEYS).url_signer(BASE_URL)
    cases = []
    for set_name, path in RULE_SETS.items():
        ruleset = load_rules(str(path))
        for rule in ruleset.rules:
            for master, header, version in MASTERS:
                info = {
                    "width": header.width,
                    "height": header.height,
                    "has_alpha": header.has_alpha,
                    "animated": header.animated,
                    "version": version,
                }
                case: dict[str, Any] = {"rule_set": set_name, "rule": rule.name, "path": master, "master": info}
                try:
                    markup = build_markup(rule, master, header, version, sign, CAPACITY, alt="A <test> & 'quote'")
                except Problem as problem:
                    case["error"] = problem.detail
                else:
                    case |= {
                        "img_html": markup.img_html(),
                        "picture_html": markup.picture_html(),
                        "link": {"img": markup.link_header("img"), "picture": markup.link_header("picture")},
                        "preload_html": {"img": markup.preload_html("img"), "picture": markup.preload_html("picture")},
                    }
                cases.append(case)
    return {"key": {"id": KEYS[0].kid, "secret": KEYS[0].secret.decode()}, "base_url": BASE_URL, "cases": cases}


def files() -> dict[str, str]:
    """Every vectors file: name -> its text."""
    docs = {"signing.json": signing_vectors(), "rules.json": rule_sets(), "markup.json": markup_vectors()}
    return {name: json.dumps(doc, indent=1, ensure_ascii=False) + "\n" for name, doc in docs.items()}


if __name__ == "__main__":
    for name, text in files().items():
        (VECTORS / name).write_text(text, encoding="utf-8")
        print(f"wrote {VECTORS / name}")
