"""q=auto and max_bytes: our SSIMULACRA2 agrees with the reference implementation, the search lands
near its target on real photos, and a size budget is met or refused with a 422 that names it."""

from __future__ import annotations

import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import pyvips

from origin.core.errors import Problem
from origin.core.formats import EncodeSettings
from origin.imaging import quality, ssimulacra2
from origin.imaging.encode import encode
from origin.imaging.ssimulacra2 import Reference, rgb_array, score

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
PHOTOS = ("flower_640x427.jpg", "rocket_640x427.jpg", "gps_exif_xmp_1920x1280.jpg")
SETTINGS = EncodeSettings()


def rendition(name: str, width: int) -> pyvips.Image:
    return pyvips.Image.thumbnail(str(CORPUS / name), width).copy_memory()


def decoded(data: bytes) -> pyvips.Image:
    return pyvips.Image.new_from_buffer(data, "")


@pytest.mark.parametrize(
    "name, width, fmt, q",
    [
        ("flower_640x427.jpg", 320, "jpeg", 30),
        ("rocket_640x427.jpg", 400, "webp", 70),
        ("gps_exif_xmp_1920x1280.jpg", 300, "avif", 40),
        ("chelsea_cat_451x300.png", 451, "jpeg", 90),
    ],
)
def test_our_ssimulacra2_matches_the_reference_implementation(tmp_path: Path, name: str, width: int, fmt: str, q: int):
    from ssimulacra2 import compute_ssimulacra2  # the PyPI package (Pillow + scipy): tests only

    original = rendition(name, width)
    distorted = decoded(encode(original, fmt, q, SETTINGS))
    original.pngsave(str(tmp_path / "a.png"))
    distorted.pngsave(str(tmp_path / "b.png"))
    expected = compute_ssimulacra2(str(tmp_path / "a.png"), str(tmp_path / "b.png"))
    assert score(original, distorted) == pytest.approx(expected, abs=0.05)


def test_identical_images_score_100_and_worse_encodes_score_lower():
    image = rendition("rocket_640x427.jpg", 320)
    reference = Reference(rgb_array(image))
    assert reference.score(rgb_array(image)) == pytest.approx(100.0)
    scores = [reference.score(rgb_array(decoded(encode(image, "jpeg", q, SETTINGS)))) for q in (20, 50, 90)]
    assert scores == sorted(scores) and scores[0] < 50 < scores[-1]


def test_a_reference_scores_each_candidate_the_same_whatever_it_scored_before():
    """A Reference reuses its work arrays from one candidate to the next (including an odd-sized
    image, whose smaller scales take the other path): nothing of one score leaks into the next."""
    image = rendition("flower_640x427.jpg", 333)  # 333 x 222: odd widths at the third scale
    reference = Reference(rgb_array(image))
    candidates = [rgb_array(decoded(encode(image, "jpeg", q, SETTINGS))) for q in (15, 60, 95)]
    first = [reference.score(c) for c in candidates]
    again = [reference.score(c) for c in reversed(candidates)][::-1]
    assert first == again and first == [Reference(rgb_array(image)).score(c) for c in candidates]
    assert first == sorted(first)


@pytest.mark.parametrize("kept", [True, False], ids=["terms kept", "terms made again"])
def test_a_large_image_scored_in_strips_scores_as_it_would_whole(monkeypatch: pytest.MonkeyPatch, kept: bool):
    """Strips of rows with the blur's reach around them, at every scale (odd sizes included), and a
    reference's own terms kept or made again per candidate: the same score as one strip."""
    image = rendition("gps_exif_xmp_1920x1280.jpg", 1001)  # 1001 x 667: odd at every scale
    reference, candidate = rgb_array(image), rgb_array(decoded(encode(image, "jpeg", 40, SETTINGS)))
    monkeypatch.setattr(ssimulacra2, "STRIP_PIXELS", 10**9)
    whole = Reference(reference).score(candidate)
    monkeypatch.setattr(ssimulacra2, "STRIP_PIXELS", 20_000)  # 20 rows a strip at the first scale
    monkeypatch.setattr(ssimulacra2, "KEPT_PIXELS", 10**9 if kept else 0)
    assert Reference(reference).score(candidate) == pytest.approx(whole, abs=1e-9)


def test_scoring_a_large_image_holds_a_strip_of_work_not_the_image_many_times_over():
    """A q=auto upgrade of a 2048 px rendition scores the whole image: its work arrays held 800 MB."""
    image = pyvips.Image.new_from_file(str(CORPUS / "gps_exif_xmp_1920x1280.jpg")).resize(2048 / 1920)
    reference, candidate = rgb_array(image), rgb_array(decoded(encode(image, "jpeg", 60, SETTINGS)))
    tracemalloc.start()
    try:
        with ThreadPoolExecutor(1) as fresh:  # a thread whose work arrays are not made yet
            fresh.submit(lambda: Reference(reference).score(candidate)).result()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 100 * 2**20  # 2048 x 1365: one float32 copy of it is 33.5 MB; whole, 800 MB


# Small renditions are their own sample; the 1920 px photo at 1280 is searched on tiles.
CASES = [
    (name, width, fmt)
    for name, width in [(PHOTOS[0], 400), (PHOTOS[1], 640), (PHOTOS[2], 1280)]
    for fmt in ("jpeg", "webp", "avif")
]
# The provisional rendition's sampled AVIF search misses these (its upgrade, the test below, does not):
# a smooth image whose 256 px of tiles miss its gradients (+8 whole), and a photo with a flat sky
# where effort 0's trials overshoot (+3.4).
KNOWN_MISSES = [(PHOTOS[2], 1280, "avif"), (PHOTOS[1], 640, "avif")]
KNOWN_MISS = pytest.mark.xfail(
    reason="AVIF, sampled: the provisional rendition only; its upgrade searches the whole image", strict=True
)


@pytest.mark.parametrize(
    "name, width, fmt", [pytest.param(*c, marks=KNOWN_MISS) if c in KNOWN_MISSES else c for c in CASES]
)
def test_auto_quality_lands_within_3_points_of_its_target(fmt: str, name: str, width: int):
    image = rendition(name, width)
    reference = Reference(rgb_array(image))
    for target in (65.0, 75.0):
        search = quality.auto_quality(image, fmt, target, SETTINGS)
        got = reference.score(rgb_array(decoded(encode(image, fmt, search.quality, search.settings))))
        assert abs(got - target) <= 3, f"{name} {width} {fmt}: q={search.quality} scored {got:.1f}, target {target}"
        assert search.encodes <= 2 * quality.MAX_TRIALS


@pytest.mark.parametrize("name, width, fmt", KNOWN_MISSES)
def test_the_upgrades_whole_image_search_lands_where_the_sample_missed(name: str, width: int, fmt: str):
    """What a sampled rendition finally gets (edge.upgrades): trials scored on the whole image,
    with the better encoder settings, where the sample misses (KNOWN_MISSES)."""
    image = rendition(name, width)
    better, target = SETTINGS.upgraded(fmt) or SETTINGS, 65.0
    reference = Reference(rgb_array(image))
    search = quality.auto_quality(image, fmt, target, better, whole=True)
    got = reference.score(rgb_array(decoded(encode(image, fmt, search.quality, search.settings))))
    assert abs(got - target) <= 3, f"{fmt} whole: q={search.quality} scored {got:.1f}, target {target}"


def test_an_enlargement_is_searched_on_the_whole_image():
    """rocket (640 px) enlarged to 1280: tiles of its interpolated pixels ask AVIF for 6 points
    more than the whole encode gives; an enlargement is searched whole and lands on the target."""
    image = rendition("rocket_640x427.jpg", 1280)
    assert quality.sampled(image.width, image.height, "avif")
    assert not quality.sampled(image.width, image.height, "avif", enlarged=True)
    reference = Reference(rgb_array(image))
    for target in (60.0, 70.0):
        search = quality.auto_quality(image, "avif", target, SETTINGS, enlarged=True)
        got = reference.score(rgb_array(decoded(encode(image, "avif", search.quality, search.settings))))
        assert abs(got - target) <= 3, f"enlarged avif: q={search.quality} scored {got:.1f}, target {target}"
    # A large enlargement keeps the sample: a whole search of it would cost seconds on the request path.
    assert quality.sampled(2560, 1708, "avif", enlarged=True)


def test_a_higher_target_never_picks_a_lower_quality():
    image = rendition("flower_640x427.jpg", 480)
    chosen = [quality.auto_quality(image, "jpeg", t, SETTINGS).quality for t in (50.0, 65.0, 80.0)]
    assert chosen == sorted(chosen) and chosen[0] < chosen[-1]


@pytest.mark.parametrize("fmt", ["jpeg", "webp", "avif"])
def test_max_bytes_picks_the_best_quality_that_fits(fmt: str):
    image = rendition("rocket_640x427.jpg", 480)
    full = len(encode(image, fmt, 80, SETTINGS))
    budget = full * 2 // 3
    body, fit = quality.fit_bytes(image, fmt, 80, budget, SETTINGS)
    assert len(body) <= budget and fit.quality < 80
    # the best that fits: the quality a few steps up does not
    assert len(encode(image, fmt, min(80, fit.quality + quality.NEAR_ENOUGH + 1), SETTINGS)) > budget
    assert body == encode(image, fmt, fit.quality, SETTINGS)


def test_max_bytes_that_the_lowest_quality_cannot_meet_is_a_422_naming_it():
    image = rendition("rocket_640x427.jpg", 480)
    with pytest.raises(Problem) as caught:
        quality.fit_bytes(image, "jpeg", 80, 500, SETTINGS)
    assert caught.value.status == 422 and caught.value.extra == {"option": "max_bytes"}
    assert "max_bytes=500" in caught.value.detail


def test_a_budget_the_first_encode_meets_costs_one_encode():
    image = rendition("rocket_640x427.jpg", 200)
    body, fit = quality.fit_bytes(image, "webp", 80, 10**7, SETTINGS)
    assert fit.quality == 80 and fit.encodes == 1 and body == encode(image, "webp", 80, SETTINGS)


# --- through the server ------------------------------------------------------------------------


def test_q_auto_through_the_server_reaches_the_target_and_server_timing_shows_the_search(server, http):
    from tests.support.images import decode

    url = server.url("rocket_640x427.jpg", w=400, q="auto", fm="jpeg")
    r = http.get(url)
    assert r.status_code == 200, r.text
    timing = r.headers["server-timing"]
    assert "search;dur=" in timing and 'desc="target=72 q=' in timing, timing
    unencoded = decode(http.get(server.url("rocket_640x427.jpg", w=400, fm="png")).content)
    assert abs(score(unencoded, decode(r.content)) - 72) <= 3
    fixed = http.get(server.url("rocket_640x427.jpg", w=400, q=80, fm="jpeg"))
    assert fixed.headers["etag"] != r.headers["etag"]  # q=auto is its own rendition and cache entry
    again = http.get(url)
    assert "hit" in again.headers["cache-status"] and again.content == r.content


def test_max_bytes_through_the_server_fits_or_is_a_422_naming_it(server, http):
    r = http.get(server.url("flower_640x427.jpg", w=600, fm="webp", max_bytes=15000))
    assert r.status_code == 200 and len(r.content) <= 15000
    assert 'desc="max_bytes=15000 q=' in r.headers["server-timing"]
    refused = http.get(server.url("flower_640x427.jpg", w=600, fm="webp", max_bytes=100))
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["option"] == "max_bytes" and "max_bytes=100" in refused.json()["detail"]
    bad = http.get(server.url("flower_640x427.jpg", w=600).replace("w=600", "w=600&max_bytes=lots"))
    assert bad.status_code in (400, 403)  # tampering with a signed URL is refused before parsing
