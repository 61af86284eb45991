"""A browser's view of renditions: formats, validators, caching headers. Real server, real HTTP."""

from __future__ import annotations

import time

import httpx

from origin.core.keys import master_tag
from origin.masters.index import version_hash
from tests.support.app import InProcess, in_process
from tests.support.corpus import AVIF_ACCEPT, MASTER_STAT_TTL_S, WEBP_ACCEPT
from tests.support.images import decode, frames, sniff

PHOTO = "flower_640x427.jpg"


def version_of(server: InProcess, path: str) -> str:
    return version_hash((server.masters / path).read_bytes())[:16]


def test_a_browser_that_accepts_avif_gets_avif(server: InProcess, http: httpx.Client):
    r = http.get(server.url(PHOTO, w=320, v=version_of(server, PHOTO)), headers={"Accept": AVIF_ACCEPT})
    assert r.status_code == 200
    assert sniff(r.content) == "avif" and r.headers["content-type"] == "image/avif"
    assert r.headers["vary"] == "Accept"
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert r.headers["etag"].startswith('"') and r.headers["timing-allow-origin"] == "*"
    assert int(r.headers["content-length"]) == len(r.content)
    image = decode(r.content)
    assert (image.width, image.height) == (320, 214)


def test_webp_only_gets_webp_and_wildcard_gets_jpeg(server: InProcess, http: httpx.Client):
    url = server.url(PHOTO, w=200)
    webp = http.get(url, headers={"Accept": WEBP_ACCEPT})
    jpeg = http.get(url, headers={"Accept": "*/*"})
    none = http.get(url, headers={"Accept": "image/avif;q=0, image/webp;q=0, */*"})
    assert (sniff(webp.content), sniff(jpeg.content), sniff(none.content)) == ("webp", "jpeg", "jpeg")
    assert webp.headers["etag"] != jpeg.headers["etag"]  # one ETag per representation
    assert jpeg.headers["etag"] == none.headers["etag"]


def test_explicit_format_wins_and_is_not_varied(server: InProcess, http: httpx.Client):
    r = http.get(server.url(PHOTO, w=200, fm="png"), headers={"Accept": AVIF_ACCEPT})
    assert sniff(r.content) == "png" and "vary" not in r.headers


def test_if_none_match_gives_304_with_the_same_validators(server: InProcess, http: httpx.Client):
    url = server.url(PHOTO, w=150, v=version_of(server, PHOTO))
    first = http.get(url, headers={"Accept": AVIF_ACCEPT})
    etag = first.headers["etag"]
    for header in (etag, f"W/{etag}", f'"nope", {etag}', "*"):
        r = http.get(url, headers={"Accept": AVIF_ACCEPT, "If-None-Match": header})
        assert r.status_code == 304, header
        assert r.content == b""
        assert r.headers["etag"] == etag
        assert r.headers["cache-control"] == first.headers["cache-control"]
        assert r.headers["vary"] == "Accept"
    assert http.get(url, headers={"Accept": AVIF_ACCEPT, "If-None-Match": '"other"'}).status_code == 200
    # Another representation of the same URL does not match this one's ETag.
    assert http.get(url, headers={"Accept": "*/*", "If-None-Match": etag}).status_code == 200


def test_head_has_the_headers_of_get_and_no_body(server: InProcess, http: httpx.Client):
    url = server.url(PHOTO, w=120)
    get = http.get(url, headers={"Accept": WEBP_ACCEPT})
    head = http.head(url, headers={"Accept": WEBP_ACCEPT})
    assert head.status_code == 200 and head.content == b""
    for name in ("content-type", "content-length", "etag", "cache-control", "vary"):
        assert head.headers[name] == get.headers[name]


def test_cache_control_follows_the_version(server: InProcess, http: httpx.Client):
    current = version_of(server, PHOTO)
    unversioned = http.get(server.url(PHOTO, w=100))
    stale = http.get(server.url(PHOTO, w=100, v="0123456789abcdef"))
    fresh = http.get(server.url(PHOTO, w=100, v=current))
    assert unversioned.headers["cache-control"] == "public, max-age=300, stale-while-revalidate=86400"
    assert stale.headers["cache-control"] == "public, max-age=60"
    assert fresh.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert stale.content == fresh.content  # a stale version still gets the current picture


def test_a_changed_master_gets_a_new_version_and_etag(server: InProcess, http: httpx.Client):
    path = "changing.jpg"
    target = server.masters / path
    target.write_bytes((server.masters / PHOTO).read_bytes())
    first_version = version_of(server, path)
    before = http.get(server.url(path, w=100, fm="jpeg"))
    target.write_bytes((server.masters / "rocket_640x427.jpg").read_bytes())
    time.sleep(MASTER_STAT_TTL_S + 0.05)  # the stat of the old master is trusted until then
    after = http.get(server.url(path, w=100, fm="jpeg", v=first_version))
    assert after.headers["etag"] != before.headers["etag"] and after.content != before.content
    assert after.headers["cache-control"] == "public, max-age=60"  # the URL's v is now stale


def test_cache_status_and_server_timing_tell_miss_from_hit(server: InProcess, http: httpx.Client):
    url = server.url(PHOTO, w=77)
    miss = http.get(url, headers={"Accept": "*/*"})
    hit = http.get(url, headers={"Accept": "*/*"})
    assert miss.headers["cache-status"] == "edge-disk; fwd=miss; stored, edge-memory; fwd=miss; stored"
    assert {part.split(";")[0] for part in miss.headers["server-timing"].split(", ")} == {"fetch", "render", "encode"}
    assert hit.headers["cache-status"] == "edge-memory; hit"
    assert hit.headers["server-timing"].startswith("cache;dur=")
    assert hit.content == miss.content and hit.headers["etag"] == miss.headers["etag"]


def test_option_spellings_share_one_cache_entry(server: InProcess, http: httpx.Client):
    a = http.get(server.url(PHOTO, w=91, q=70, fit="cover", dpr=1.0))
    b = http.get(server.url(PHOTO, q=70, w=91))
    assert a.headers["etag"] == b.headers["etag"]
    assert "hit" in b.headers["cache-status"]


def test_dpr_multiplies_and_the_response_says_how_it_upscaled(server: InProcess, http: httpx.Client):
    r = http.get(server.url(PHOTO, w=500, dpr=2, fm="jpeg"))
    assert decode(r.content).width == 1000
    assert r.headers["x-upscale"] != "none"  # a model (tests/test_superres_server.py) or Lanczos
    r = http.get(server.url(PHOTO, w=1000, fm="jpeg"))
    assert decode(r.content).width == 1000
    assert r.headers["x-upscale"] != "none"  # the same missing pixels as w=500&dpr=2
    r = http.get(server.url(PHOTO, w=300, dpr=2, fm="jpeg"))
    assert r.headers["x-upscale"] == "none"


def test_crop_fit_and_gravity_shape_the_output(server: InProcess, http: httpx.Client):
    cases = [
        (dict(w=200, h=200), (200, 200)),
        (dict(w=200, h=200, fit="contain"), (200, 133)),
        (dict(w=200, h=200, fit="fill"), (200, 200)),
        (dict(w=2000, h=2000, fit="inside"), (640, 427)),
        (dict(w=200, h=200, fit="outside"), (300, 200)),
        (dict(w=200, h=100, g="smart"), (200, 100)),
        (dict(w=200, h=100, g="focal", fx=0.1, fy=0.9), (200, 100)),
        (dict(crop="100,50,200,100"), (200, 100)),
        (dict(crop="100,50,200,100", w=400), (400, 200)),
    ]
    for opts, size in cases:
        r = http.get(server.url(PHOTO, fm="png", **opts))
        assert r.status_code == 200, (opts, r.text)
        image = decode(r.content)
        assert (image.width, image.height) == size, opts


def test_alpha_masters_never_become_jpeg(server: InProcess, http: httpx.Client):
    for path in ("rgba_alpha_1600x1000.webp", "tiny_1x1_transparent.png"):
        for accept, fmt in ((AVIF_ACCEPT, "avif"), (WEBP_ACCEPT, "webp"), ("*/*", "png"), ("image/jpeg", "png")):
            r = http.get(server.url(path, w=64), headers={"Accept": accept})
            assert sniff(r.content) == fmt, (path, accept)
            assert decode(r.content).hasalpha(), (path, accept)


def test_animated_masters_stay_animated(server: InProcess, http: httpx.Client):
    for path in ("animated_24f_160x90.gif", "animated_24f_160x90.webp"):
        webp = http.get(server.url(path, w=80), headers={"Accept": AVIF_ACCEPT})
        gif = http.get(server.url(path, w=80), headers={"Accept": "*/*"})
        assert (sniff(webp.content), frames(webp.content)) == ("webp", 24), path
        assert (sniff(gif.content), frames(gif.content)) == ("gif", 24), path
        assert decode(webp.content).width == 80
        # Asking for a still format explicitly gives the first frame.
        still = http.get(server.url(path, w=80, fm="jpeg"))
        assert (sniff(still.content), frames(still.content)) == ("jpeg", 1)


def test_a_masters_stat_is_trusted_for_its_ttl_and_a_purge_forgets_it(tmp_path):
    """The production default: a known master is not stat'ed again for a second (a hit on S3
    masters would otherwise cost a HEAD), so a replaced master shows within that; a purge acts
    at once."""
    env = {"EDGE_SERVER_MASTER_STAT_TTL_S": "1.0", "EDGE_ADMIN_TOKEN": "admin-token-0123456789"}
    with in_process(tmp_path, env) as app, app.client() as client:
        target = app.masters / "ttl.jpg"
        target.write_bytes((app.masters / PHOTO).read_bytes())
        first = client.get(app.url("ttl.jpg", w=90, fm="jpeg"))
        target.write_bytes((app.masters / "rocket_640x427.jpg").read_bytes())
        within = client.get(app.url("ttl.jpg", w=90, fm="jpeg"))
        assert within.headers["etag"] == first.headers["etag"]  # the old stat still stands
        purged = client.post(
            app.base + "/admin/purge/ttl.jpg", headers={"Authorization": "Bearer admin-token-0123456789"}
        )
        assert purged.status_code == 200
        after = client.get(app.url("ttl.jpg", w=90, fm="jpeg"))
        assert after.headers["etag"] != first.headers["etag"] and after.content != first.content
        for junk in ("%2E%2E/edge.toml", ".hidden.jpg", "a//b.jpg"):  # never a master: refused
            refused = client.post(
                app.base + "/admin/purge/" + junk, headers={"Authorization": "Bearer admin-token-0123456789"}
            )
            assert refused.status_code == 400 and refused.json()["option"] == "path", junk
        # The scheme is case-insensitive (RFC 9110); a bare token, without one, is refused.
        for auth, status in (
            ("admin-token-0123456789", 401),
            ("Basic admin-token-0123456789", 401),
            ("Bearer admin-token-012345678", 401),
            ("bearer admin-token-0123456789", 200),
            ("BEARER  admin-token-0123456789", 200),
        ):
            r = client.post(app.base + "/admin/purge/ttl.jpg", headers={"Authorization": auth})
            assert r.status_code == status, auth


def test_a_second_signature_is_a_forgery_not_a_bad_option(server: InProcess, http: httpx.Client):
    url = server.url(PHOTO, w=120)
    signature = url.rsplit("s=", 1)[1]
    for doubled in (f"{url}&s={signature}", f"{url}&s=AAAAAAAAAAAAAAAAAAAAAA"):
        r = http.get(doubled)
        assert r.status_code == 403 and "two" in r.json()["detail"], doubled


def test_an_expiring_url_is_never_fresh_in_any_cache_past_its_expiry(server: InProcess, http: httpx.Client):
    version = version_of(server, PHOTO)
    exp = int(time.time()) + 120
    r = http.get(server.url(PHOTO, w=64, fm="jpeg", v=version, exp=exp))
    assert r.status_code == 200
    value = r.headers["cache-control"]
    assert "immutable" not in value and "stale-while-revalidate" not in value
    age = int(value.split("max-age=")[1].split(",")[0])
    assert 110 <= age <= 120  # at most the seconds left, not a year
    revalidated = http.get(
        server.url(PHOTO, w=64, fm="jpeg", v=version, exp=exp), headers={"If-None-Match": r.headers["etag"]}
    )
    assert revalidated.status_code == 304 and revalidated.headers["cache-control"].startswith("public, max-age=1")
    lasting = http.get(server.url(PHOTO, w=64, fm="jpeg", v=version))
    assert lasting.headers["cache-control"] == "public, max-age=31536000, immutable"  # same bytes, no exp
    assert lasting.content == r.content


def test_until_expiry_keeps_the_shorter_freshness():
    from edge.headers import IMMUTABLE, UNVERSIONED, until_expiry

    assert until_expiry(IMMUTABLE, None, 1000.0) == IMMUTABLE
    assert until_expiry(IMMUTABLE, 1100, 1000.0) == "public, max-age=100"
    assert until_expiry(UNVERSIONED, 5000, 1000.0) == "public, max-age=300"
    assert until_expiry(UNVERSIONED, 900, 1000.0) == "public, max-age=0"


def test_a_formats_default_quality_spelled_out_is_the_same_entry(server: InProcess, http: httpx.Client):
    spelled = http.get(server.url(PHOTO, w=93, fm="avif", q=50))  # AVIF's default quality
    implied = http.get(server.url(PHOTO, w=93, fm="avif"))
    assert implied.headers["etag"] == spelled.headers["etag"] and "hit" in implied.headers["cache-status"]
    assert http.get(server.url(PHOTO, w=93, fm="avif", q=51)).headers["etag"] != spelled.headers["etag"]
    lossless = http.get(server.url(PHOTO, w=93, fm="png", q=10))  # PNG has no quality to choose
    assert http.get(server.url(PHOTO, w=93, fm="png")).headers["etag"] == lossless.headers["etag"]


def test_every_rendition_carries_its_masters_purge_tag(server: InProcess, http: httpx.Client, tmp_path):
    tag = master_tag(PHOTO)
    for url in (server.url(PHOTO, w=130), server.url(PHOTO, w=131, fm="webp")):
        r = http.get(url)
        assert r.headers["surrogate-key"] == r.headers["cache-tag"] == tag
        again = http.get(url, headers={"If-None-Match": r.headers["etag"]})
        assert again.status_code == 304 and again.headers["surrogate-key"] == tag
    assert http.get(server.url("rocket_640x427.jpg", w=130)).headers["cache-tag"] != tag
    with in_process(tmp_path, {"EDGE_CACHE_SURROGATE_KEY_HEADERS": ""}) as bare, bare.client() as client:
        r = client.get(bare.url(PHOTO, w=130))
        assert r.status_code == 200 and "surrogate-key" not in r.headers and "cache-tag" not in r.headers
