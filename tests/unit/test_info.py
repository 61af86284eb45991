"""GET /info/{path}: dimensions as displayed, version, placeholders and kept rights, signed for the
/info/ route only, or keyless under closed world for a master a rule covers."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from origin.core.request import RenditionOptions
from tests.support.app import InProcess, in_process
from tests.support.images import decode


def info_url(server: InProcess, path: str, **opts: object) -> str:
    return server.base + server.signer.sign_url(path, RenditionOptions(**opts), route="info")  # type: ignore[arg-type]


def version_of(server: InProcess, path: str) -> str:
    return server.run(server.services.masters.lookup(path)).short_version


def test_info_says_what_a_layout_needs(server: InProcess, http: httpx.Client):
    path = "exif_orientation_6_640x360.jpg"
    r = http.get(info_url(server, path, v=version_of(server, path)))
    assert r.status_code == 200, r.text
    doc = r.json()
    rendition = decode(http.get(server.url(path, fm="png")).content)  # the master as displayed
    assert (doc["width"], doc["height"]) == (rendition.width, rendition.height)
    assert (doc["format"], doc["has_alpha"], doc["animated"], doc["frames"]) == ("jpeg", False, False, 1)
    assert doc["version"] == version_of(server, path) and doc["path"] == path
    assert doc["placeholder"]["data_uri"].startswith("data:image/webp;base64,")
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    again = http.get(info_url(server, path, v=version_of(server, path)), headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304


def test_info_carries_the_rights_renditions_keep_and_nothing_else(server: InProcess, http: httpx.Client):
    doc = http.get(info_url(server, "gps_exif_xmp_1920x1280.jpg")).json()
    assert doc["rights"]["exif:Artist"].startswith("Test Person")
    assert doc["rights"]["dc:creator"] == "Test Person"
    assert not any("gps" in k.lower() or "Make" in k for k in doc["rights"])
    flower = http.get(info_url(server, "flower_640x427.jpg")).json()["rights"]
    assert flower == {"iptc:CopyrightNotice": "http://www.vultilion.de"}  # the photo's own IPTC notice
    assert http.get(info_url(server, "rocket_640x427.jpg")).json()["rights"] == {}
    animated = http.get(info_url(server, "animated_24f_160x90.gif")).json()
    assert animated["animated"] is True and animated["frames"] == 24


@pytest.mark.parametrize(
    "mangle, status",
    [
        (lambda u: u.split("?")[0], 403),  # unsigned, closed world off
        (lambda u: u.replace("kid=", "kid=x"), 403),
        (lambda u: u.replace("/info/", "/img/"), 403),  # an info signature is not a rendition's
    ],
)
def test_info_urls_must_be_signed_for_info(server: InProcess, http: httpx.Client, mangle, status):
    assert http.get(mangle(info_url(server, "flower_640x427.jpg"))).status_code == status
    # nor is a rendition's signature good for /info
    img = server.url("flower_640x427.jpg")
    assert http.get(img.replace("/img/", "/info/")).status_code == 403


def test_a_signed_info_url_with_rendering_options_is_a_400_naming_one(server: InProcess, http: httpx.Client):
    r = http.get(info_url(server, "flower_640x427.jpg", w=100))
    assert r.status_code == 400 and r.json()["option"] == "w"
    assert http.get(info_url(server, "no/such.jpg")).status_code == 404


def test_keyless_info_under_closed_world_only_for_masters_a_rule_covers(tmp_path: Path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "site.yaml").write_text("rules:\n  flower:\n    masters: ['flower_640x427.jpg']\n    sizes: 100vw\n")
    env = {"EDGE_RULES_DIR": str(rules), "EDGE_RULES_CLOSED_WORLD": "true"}
    with in_process(tmp_path, env) as app, app.client() as http:
        keyless = http.get(app.base + "/info/flower_640x427.jpg")
        assert keyless.status_code == 200 and keyless.json()["width"] == 640
        assert keyless.headers["cache-control"].startswith("public, max-age=300")  # no v: may change
        assert http.get(app.base + "/info/rocket_640x427.jpg").status_code == 403  # no rule covers it
        assert http.get(app.base + "/info/flower_640x427.jpg?w=10").status_code == 403  # keyless takes nothing
