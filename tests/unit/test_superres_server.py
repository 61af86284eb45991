"""Super-resolution inside the real server: when it runs, what the response says, and the
progressive upgrade when a model run will not fit a request's time budget (CPU-only hosts)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import pyvips

from origin.imaging.metadata import rights_of
from origin.masters.index import version_hash
from origin.superres.registry import available_models
from tests.support.app import InProcess, start_app, stop_app
from tests.support.corpus import CORPUS
from tests.support.images import decode, mean_abs_diff
from tests.support.metrics import scrape, value

pytestmark = pytest.mark.skipif(not available_models(), reason="no super-resolution model is installed")
CAT = "chelsea_cat_451x300.png"
VERSION = version_hash((CORPUS / CAT).read_bytes())[:16]


def model_label() -> str:
    return available_models()[0].label


@pytest.fixture(scope="module")
def patient(tmp_path_factory: pytest.TempPathFactory):
    """A server that waits for the model (a generous budget), with a rule that forbids it for one master."""
    tmp = tmp_path_factory.mktemp("sr")
    rules = tmp / "rules"
    rules.mkdir()
    (rules / "site.yaml").write_text(
        "rules:\n  logo:\n    masters: ['rocket_640x427.jpg']\n    sizes: 200px\n    enhance: never\n"
        f"  cat:\n    masters: ['{CAT}']\n    sizes: 100vw\n"
    )
    srv = start_app(tmp, {"EDGE_SUPERRES_BUDGET_S": "120", "EDGE_RULES_DIR": str(rules)})
    yield srv
    stop_app(srv)


def test_a_high_dpr_miss_beyond_the_master_is_made_by_the_model(patient: InProcess):
    r = patient.get(patient.url(CAT, w=400, dpr=2, fm="png", v=VERSION), timeout=120)
    assert r.status_code == 200, r.text
    assert r.headers["x-upscale"].startswith(model_label().split("@")[0])
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    image = decode(r.content)
    assert (image.width, image.height) == (800, 532)
    lanczos = decode((CORPUS / CAT).read_bytes()).resize(800 / 451, vscale=532 / 300, kernel="lanczos3")
    assert 0.3 < mean_abs_diff(image, lanczos) < 10  # the same picture, with different detail


def test_missing_pixels_get_the_model_whatever_the_url_spells(patient: InProcess):
    """A srcset `w` candidate past the master (w=800, no dpr) is the same request as w=400&dpr=2."""
    by_width = patient.get(patient.url(CAT, w=800, fm="png", v=VERSION), timeout=120)
    by_dpr = patient.get(patient.url(CAT, w=400, dpr=2, fm="png", v=VERSION), timeout=120)
    assert by_width.headers["x-upscale"].startswith(model_label().split("@")[0])
    assert by_width.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert decode(by_width.content).width == decode(by_dpr.content).width == 800
    assert mean_abs_diff(decode(by_width.content), decode(by_dpr.content)) < 0.5  # one set of pixels


def test_the_widest_candidates_the_rules_emit_are_made_by_the_model(patient: InProcess):
    """The headline case: a 3x phone picks the widest `w` candidate of `edge srcset`, wider than
    the master; that URL (no dpr in it) gets the model, for <img> and every <picture> source."""
    doc = patient.get(f"{patient.base}/srcset/cat/{CAT}").json()
    sources = [doc["img"], *doc["picture"]["sources"]]
    for source in sources:
        widest = max(source["candidates"], key=lambda c: c["width"])
        assert widest["width"] > 451, source  # past the master: the rule lets a model double it
        r = patient.get(patient.base + widest["url"] if widest["url"].startswith("/") else widest["url"], timeout=120)
        assert r.status_code == 200, r.text
        assert r.headers["x-upscale"].startswith(model_label().split("@")[0]), (widest, r.headers["x-upscale"])
        assert decode(r.content).width == widest["width"]


def test_small_enlargements_stay_lanczos(patient: InProcess):
    assert patient.get(patient.url(CAT, w=500, fm="png")).headers["x-upscale"] == "lanczos"  # x1.1
    assert patient.get(patient.url(CAT, w=250, dpr=2, fm="png")).headers["x-upscale"] == "lanczos"  # x1.1
    assert patient.get(patient.url(CAT, w=200, dpr=2, fm="png")).headers["x-upscale"] == "none"


def test_a_rule_that_says_never_keeps_the_model_away(patient: InProcess):
    r = patient.get(patient.url("rocket_640x427.jpg", w=600, dpr=2, fm="jpeg"), timeout=120)
    assert r.headers["x-upscale"] == "lanczos"


def test_model_runs_are_counted(patient: InProcess):
    r = patient.get(patient.url(CAT, w=420, dpr=2, fm="webp"), timeout=120)
    assert value(scrape(patient), "edge_superres_runs_total", model=r.headers["x-upscale"]) >= 1


def master_with_rights(folder: Path) -> str:
    """A 300 px master carrying EXIF Copyright and Artist, XMP dc:rights and IPTC copyright."""
    image = pyvips.Image.new_from_file(str(CORPUS / "flower_640x427.jpg")).resize(300 / 640).copy()
    image.set_type(pyvips.GValue.gstr_type, "exif-ifd0-Copyright", "(c) 2026 Jane Doe")
    image.set_type(pyvips.GValue.gstr_type, "exif-ifd0-Artist", "Jane Doe")
    xmp = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:rights><rdf:Alt>'
        '<rdf:li xml:lang="x-default">All rights reserved</rdf:li></rdf:Alt></dc:rights></rdf:Description>'
        "</rdf:RDF></x:xmpmeta>"
    )
    image.set_type(pyvips.GValue.blob_type, "xmp-data", xmp.encode())
    (folder / "rights_300.jpg").write_bytes(image.jpegsave_buffer(Q=90, keep="all"))
    return "rights_300.jpg"


def test_rights_survive_super_resolution_as_on_every_other_path(patient: InProcess):
    name = master_with_rights(patient.masters)
    wanted = {"exif:Copyright": "(c) 2026 Jane Doe", "exif:Artist": "Jane Doe", "dc:rights": "All rights reserved"}
    for fm in ("jpeg", "webp", "avif", "png"):
        plain = patient.get(patient.url(name, w=150, fm=fm), timeout=120)
        enhanced = patient.get(patient.url(name, w=600, fm=fm), timeout=120)
        assert plain.headers["x-upscale"] == "none"
        assert enhanced.headers["x-upscale"].startswith(model_label().split("@")[0]), fm
        for r in (plain, enhanced):
            rights = rights_of(pyvips.Image.new_from_buffer(r.content, ""))
            assert {k: v for k, v in rights.items() if k in wanted} == wanted, (fm, r.headers["x-upscale"], rights)


def test_progressive_upgrade_when_the_model_will_not_fit_the_budget(tmp_path: Path):
    srv = start_app(tmp_path, {"EDGE_SUPERRES_BUDGET_S": "0"})
    try:
        url = srv.url(CAT, w=430, dpr=2, fm="webp", v=VERSION)
        first = srv.get(url)
        assert first.status_code == 200
        assert first.headers["x-upscale"] == "lanczos"
        assert first.headers["cache-control"] == "private, no-cache"  # no CDN keeps the stand-in
        assert decode(first.content).width == 860
        deadline = time.monotonic() + 120
        while True:
            later = srv.get(url, headers={"If-None-Match": first.headers["etag"]})
            if later.headers.get("x-upscale", "lanczos") != "lanczos" or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert later.status_code == 200 and later.headers["x-upscale"].startswith(model_label().split("@")[0])
        assert later.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert later.headers["etag"] != first.headers["etag"]
        assert value(scrape(srv), "edge_superres_fallbacks_total", reason="budget") >= 1
    finally:
        stop_app(srv)
