"""Client hints, opt-in: Sec-CH-DPR, Sec-CH-Width and Save-Data refine URLs that list them in `ch`.

Off (the default), nothing changes and nothing splits a CDN cache; on, a `ch` URL is served as
the explicit URL the hints make it (one cache entry), with `Vary` naming those hints.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.client_hints import ClientHintsSettings, Hints, parse_hints, refine
from origin.core.errors import Problem
from origin.core.request import RenditionOptions, canonical_query, parse_options
from tests.support.app import in_process
from tests.support.corpus import AVIF_ACCEPT
from tests.support.images import decode, sniff

PHOTO = "flower_640x427.jpg"
ON = {"EDGE_CLIENT_HINTS_ENABLED": "true"}
SETTINGS = ClientHintsSettings(enabled=True)


def test_ch_is_one_canonical_signed_option_and_names_known_hints_only():
    opts = parse_options({"w": "400", "ch": "width,dpr,width"})
    assert opts.ch == "dpr,width"
    assert canonical_query(opts) == "ch=dpr,width&w=400"
    # Not a rendering option: it never reaches a rendition key by itself.
    assert canonical_query(opts, rendering_only=True) == "w=400"
    with pytest.raises(Problem) as e:
        parse_options({"ch": "viewport-width"})
    assert e.value.status == 400 and e.value.extra == {"option": "ch"}


def test_hints_are_parsed_and_malformed_ones_ignored():
    assert parse_hints([(b"sec-ch-dpr", b"2.625"), (b"sec-ch-width", b"1170"), (b"save-data", b"on")]) == Hints(
        2.625, 1170, True
    )
    assert parse_hints([(b"sec-ch-dpr", b"-1"), (b"sec-ch-width", b"wide"), (b"save-data", b"off")]) == Hints()
    assert parse_hints([(b"sec-ch-dpr", b"nan"), (b"sec-ch-width", b"0")]) == Hints()


@pytest.mark.parametrize(
    ("url", "hints", "expected"),
    [
        # DPR replaces the URL's dpr, rounded to a half and capped at max_dpr.
        ({"w": 400, "ch": "dpr"}, Hints(dpr=2.625), {"w": 400, "dpr": 2.5}),
        ({"w": 400, "dpr": 2.0, "ch": "dpr"}, Hints(dpr=1.0), {"w": 400, "dpr": 1.0}),
        ({"w": 400, "ch": "dpr"}, Hints(dpr=8.0), {"w": 400, "dpr": 3.0}),
        ({"w": 400, "ch": "dpr"}, Hints(), {"w": 400, "dpr": 1.0}),
        # Width (device pixels) is rounded up to 100 and divided by the dpr; h keeps the ratio.
        ({"w": 400, "ch": "width"}, Hints(width=1170), {"w": 1200}),
        ({"w": 400, "ch": "dpr,width"}, Hints(dpr=3.0, width=1170), {"w": 400, "dpr": 3.0}),
        ({"w": 400, "h": 200, "ch": "width"}, Hints(width=801), {"w": 900, "h": 450}),
        ({"h": 200, "ch": "width"}, Hints(width=800), {"h": 200}),
        ({"w": 400, "ch": "width"}, Hints(width=99_999), {"w": 4096}),
        # A hint the URL does not list changes nothing.
        ({"w": 400, "ch": "width"}, Hints(dpr=2.0, save_data=True), {"w": 400}),
        # Save-Data: the format's Save-Data quality unless q is given, and dpr 1.
        ({"w": 400, "ch": "save-data"}, Hints(save_data=True), {"w": 400, "q": 50}),
        ({"w": 400, "q": 90, "dpr": 2.0, "ch": "save-data"}, Hints(save_data=True), {"w": 400, "q": 90}),
        ({"w": 400, "ch": "dpr,save-data,width"}, Hints(dpr=3.0, width=1200, save_data=True), {"w": 400, "q": 50}),
    ],
)
def test_refine_turns_hints_into_explicit_options(url, hints, expected):
    assert refine(RenditionOptions(**url), hints, "webp", SETTINGS) == RenditionOptions(**expected)


def test_save_data_quality_follows_the_format():
    assert refine(RenditionOptions(ch="save-data"), Hints(save_data=True), "avif", SETTINGS).q == 30
    assert refine(RenditionOptions(ch="save-data"), Hints(save_data=True), "png", SETTINGS).q is None


def test_settings_are_validated():
    with pytest.raises(ValueError, match="max_dpr"):
        ClientHintsSettings(max_dpr=9)
    with pytest.raises(ValueError, match="save_data_jpeg_quality"):
        ClientHintsSettings(save_data_jpeg_quality=0)


def test_hints_on_refine_a_ch_url_and_vary_on_what_it_lists(tmp_path: Path):
    with in_process(tmp_path, ON) as server, server.client() as http:
        url = server.url(PHOTO, w=200, ch="dpr,save-data")
        plain = http.get(url, headers={"Accept": AVIF_ACCEPT})
        assert plain.status_code == 200 and decode(plain.content).width == 200
        assert plain.headers["vary"] == "Accept, Sec-CH-DPR, Save-Data"
        assert plain.headers["accept-ch"] == "Sec-CH-DPR, Sec-CH-Width"

        dense = http.get(url, headers={"Accept": AVIF_ACCEPT, "Sec-CH-DPR": "2"})
        assert sniff(dense.content) == "avif" and decode(dense.content).width == 400
        # Served as the explicit URL it stands for: the same entry, the same ETag.
        explicit = http.get(server.url(PHOTO, w=200, dpr=2), headers={"Accept": AVIF_ACCEPT})
        assert explicit.headers["etag"] == dense.headers["etag"] != plain.headers["etag"]
        assert explicit.headers["vary"] == "Accept"
        assert (
            http.get(
                url, headers={"Accept": AVIF_ACCEPT, "Sec-CH-DPR": "2", "If-None-Match": dense.headers["etag"]}
            ).status_code
            == 304
        )

        saving = http.get(url, headers={"Accept": AVIF_ACCEPT, "Sec-CH-DPR": "2", "Save-Data": "on"})
        assert decode(saving.content).width == 200 and len(saving.content) < len(plain.content)

        # Without `ch` nothing varies on hints, whatever the request sends.
        other = http.get(server.url(PHOTO, w=200), headers={"Accept": AVIF_ACCEPT, "Sec-CH-DPR": "2"})
        assert other.headers["vary"] == "Accept" and decode(other.content).width == 200
        # Every response asks for the hints, HTML and problems included.
        assert http.get(server.base + "/healthz").headers["accept-ch"] == "Sec-CH-DPR, Sec-CH-Width"


def test_width_hint_sizes_an_explicit_format_url(tmp_path: Path):
    with in_process(tmp_path, ON) as server, server.client() as http:
        r = http.get(server.url(PHOTO, w=100, fm="jpeg", ch="width"), headers={"Sec-CH-Width": "333"})
        assert decode(r.content).width == 400 and r.headers["vary"] == "Sec-CH-Width"


@pytest.mark.parametrize("env", [{}, {**ON, "EDGE_RULES_CLOSED_WORLD": "true"}], ids=["off", "closed-world"])
def test_hints_off_or_under_closed_world_change_nothing_and_split_no_cache(tmp_path: Path, env: dict[str, str]):
    masters = Path(__file__).parents[2] / "edge" / "demo" / "masters"
    with in_process(tmp_path, env, masters=masters) as server, server.client() as http:
        photo = sorted(p for p in masters.iterdir() if p.suffix == ".jpg")[0]
        # The master at its own size: what closed world allows without a rule (sitemaps link it).
        r = http.get(server.url(photo.name, ch="dpr,width"), headers={"Sec-CH-DPR": "3", "Sec-CH-Width": "300"})
        assert r.status_code == 200, r.text
        assert "accept-ch" not in r.headers and r.headers["vary"] == "Accept"
        assert decode(r.content).width == decode(photo.read_bytes()).width
