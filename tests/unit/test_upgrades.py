"""Better encodes while idle: WebP and AVIF are served fast and provisional, then swapped for their
better encode once the render pool has been empty a moment (edge.upgrades). Through the app, as a
browser and a CDN see it: headers, revalidation, bytes, and a restart in between."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from edge.caches.memory import MemoryTier
from edge.caches.tiered import TieredCache
from edge.upgrades import Patience
from origin.core.concurrency import CancelToken
from origin.core.rendition import Rendition
from origin.core.request import RenditionOptions
from origin.imaging.ssimulacra2 import Reference, rgb_array
from origin.isolated import render_isolated
from origin.masters.index import version_hash
from tests.support.app import InProcess, in_process, start_app, stop_app
from tests.support.corpus import AVIF_ACCEPT, WEBP_ACCEPT
from tests.support.images import decode, mean_abs_diff, sniff
from tests.support.metrics import scrape, value

PHOTO = "flower_640x427.jpg"
UPGRADES_ON = {"EDGE_ENCODE_UPGRADES": "true"}
IMMUTABLE = "public, max-age=31536000, immutable"


def versioned(app: InProcess, **options: object) -> str:
    """A URL that names the master's version: a final rendition of it is immutable."""
    return app.url(PHOTO, v=version_hash((app.masters / PHOTO).read_bytes())[:16], **options)


@contextmanager
def busy(app: InProcess) -> Iterator[None]:
    """The render pool looks busy (as under load) while inside: no upgrade may start."""

    async def admit():  # on the app's loop, where the pool is used
        return app.services.renditions.renderer.pool.admit()

    ticket = app.run(admit())
    try:
        yield
    finally:

        async def release() -> None:
            ticket.release()

        app.run(release())


def until_final(app: InProcess, url: str, accept: str, timeout_s: float = 30.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        r = app.get(url, headers={"Accept": accept})
        if "provisional" not in r.headers["etag"]:
            return r
        time.sleep(0.1)
    raise AssertionError(f"{url} still provisional after {timeout_s} s")


@pytest.fixture
def app(tmp_path: Path) -> Iterator[InProcess]:
    server = start_app(tmp_path, UPGRADES_ON)
    try:
        yield server
    finally:
        stop_app(server)


@pytest.mark.parametrize(("accept", "fmt"), [(WEBP_ACCEPT, "webp"), (AVIF_ACCEPT, "avif")])
def test_a_fast_encode_is_served_briefly_then_replaced_by_fewer_bytes(app: InProcess, accept: str, fmt: str):
    url = versioned(app, w=480)
    with busy(app):
        fast = app.get(url, headers={"Accept": accept})
        assert fast.status_code == 200 and sniff(fast.content) == fmt
        assert fast.headers["cache-control"] == "public, max-age=60"  # never immutable
        assert fast.headers["etag"].endswith('-provisional"')
        time.sleep(0.6)  # busy: nothing may replace it yet
        again = app.get(url, headers={"Accept": accept})
        assert again.content == fast.content and again.headers["etag"] == fast.headers["etag"]
        assert "hit" in again.headers["cache-status"]
    better = until_final(app, url, accept)
    assert better.headers["cache-control"] == IMMUTABLE
    assert better.headers["etag"] == fast.headers["etag"].replace("-provisional", "")
    assert sniff(better.content) == fmt and len(better.content) < len(fast.content)
    fast_image, better_image = decode(fast.content), decode(better.content)
    assert (better_image.width, better_image.height) == (fast_image.width, fast_image.height) == (480, 320)
    lossless = decode(app.get(versioned(app, w=480, fm="png")).content)  # the pixels both encoded
    assert mean_abs_diff(better_image, lossless) <= mean_abs_diff(fast_image, lossless) + 0.3
    assert value(scrape(app), "edge_encode_upgrades_total", format=fmt, result="better") == 1


def test_a_cache_revalidating_the_fast_encode_gets_304_until_the_better_one_exists(app: InProcess):
    url = versioned(app, w=400)
    with busy(app):
        fast = app.get(url, headers={"Accept": WEBP_ACCEPT})
        held = {"Accept": WEBP_ACCEPT, "If-None-Match": fast.headers["etag"]}
        still = app.get(url, headers=held)
        assert still.status_code == 304 and still.content == b""
        assert still.headers["etag"] == fast.headers["etag"]
        assert still.headers["cache-control"] == "public, max-age=60"
    final = until_final(app, url, WEBP_ACCEPT)
    after = app.get(url, headers=held)
    assert after.status_code == 200 and after.content == final.content != fast.content


def test_jpeg_has_no_upgrade_and_is_immutable_at_once(app: InProcess):
    r = app.get(versioned(app, w=300), headers={"Accept": "*/*"})
    assert sniff(r.content) == "jpeg" and r.headers["cache-control"] == IMMUTABLE
    assert "provisional" not in r.headers["etag"]


def test_a_provisional_entry_on_disk_is_upgraded_after_a_restart(tmp_path: Path):
    first = start_app(tmp_path, UPGRADES_ON)
    url = versioned(first, w=360)
    try:
        with busy(first):
            fast = first.get(url, headers={"Accept": AVIF_ACCEPT})
            assert fast.headers["etag"].endswith('-provisional"')
    finally:
        stop_app(first)  # before the pool went idle: the upgrade never ran
    second = start_app(tmp_path / "again", UPGRADES_ON, masters=first.masters, cache_dir=first.cache_dir)
    try:
        hit = second.get(url, headers={"Accept": AVIF_ACCEPT})
        assert hit.content == fast.content and "hit" in hit.headers["cache-status"]
        assert hit.headers["etag"] == fast.headers["etag"]
        better = until_final(second, url, AVIF_ACCEPT)
        assert len(better.content) < len(fast.content)
    finally:
        stop_app(second)


def test_a_provisional_entry_near_the_user_gives_way_to_a_final_one_farther_away():
    near, far = MemoryTier(1 << 20), MemoryTier(1 << 20)
    cache = TieredCache([near, far])
    fast = Rendition(b"fast", "webp", 10, 10, provisional=True)
    better = Rendition(b"better", "webp", 10, 10)

    async def scenario() -> None:
        await near.put("k", fast)
        await far.put("k", better)  # another worker process upgraded it into the shared tier
        found = await cache.get("k")
        assert found.rendition == better and [lookup.hit for lookup in found.lookups] == [True, True]
        assert await near.get("k") == better  # copied up: the next hit stops at the memory tier
        await far.put("j", fast)
        found = await cache.get("j")
        assert found.rendition == fast and await near.get("j") == fast

    asyncio.run(scenario())


@pytest.mark.parametrize("isolated", [False, True], ids=["in a thread", "in the killable child"])
def test_q_auto_is_searched_on_the_whole_image_by_its_upgrade(tmp_path: Path, isolated: bool):
    """A q=auto rendition larger than its search's sample: the fast one's quality comes from tiles,
    the upgrade's from the whole image, and the upgrade lands on the target; also where renders
    this big run in a child process (server.isolate_megapixels)."""
    env = {**UPGRADES_ON, **({"EDGE_SERVER_ISOLATE_MEGAPIXELS": "0.2"} if isolated else {})}
    with in_process(tmp_path, env) as app:
        check_q_auto_upgrade(app)


def check_q_auto_upgrade(app: InProcess) -> None:
    target = app.config.formats.auto_target
    url = versioned(app, w=600, q="auto", fm="jpeg")  # 600x400: more pixels than a sample holds
    with busy(app):
        fast = app.get(url)
        assert fast.headers["etag"].endswith('-provisional"')
        assert "search" in fast.headers["server-timing"]
    final = until_final(app, url, "*/*")
    assert final.headers["cache-control"] == IMMUTABLE and sniff(final.content) == "jpeg"
    lossless = Reference(rgb_array(decode(app.get(versioned(app, w=600, fm="png")).content)))
    assert abs(lossless.score(rgb_array(decode(final.content))) - target) <= 3.0
    assert value(scrape(app), "edge_encode_upgrades_total", format="jpeg", result="better") == 1


def test_an_enlarged_q_auto_rendition_is_searched_whole_and_final_at_once(app: InProcess):
    """flower (640 px) at 960: no sample to correct later, so no provisional answer."""
    url = versioned(app, w=960, q="auto", fm="jpeg")
    r = app.get(url)
    assert r.status_code == 200 and r.headers["x-upscale"] != "none"  # the model, or Lanczos
    assert r.headers["cache-control"] == IMMUTABLE and "provisional" not in r.headers["etag"]
    lossless = Reference(rgb_array(decode(app.get(versioned(app, w=960, fm="png")).content)))
    assert abs(lossless.score(rgb_array(decode(r.content))) - app.config.formats.auto_target) <= 3.0


def test_a_server_that_is_never_idle_still_upgrades_what_is_asked_for_again(tmp_path: Path):
    env = {
        **UPGRADES_ON,
        "EDGE_SERVER_UPGRADE_UNDER_LOAD_AFTER_S": "1.5",
        "EDGE_SERVER_UPGRADE_UNDER_LOAD_SHARE": "0.5",
    }
    with in_process(tmp_path, env) as app:
        popular, once = versioned(app, w=480), versioned(app, w=440)
        with busy(app):
            fast = app.get(popular, headers={"Accept": WEBP_ACCEPT})
            asked = time.monotonic()
            assert app.get(once, headers={"Accept": WEBP_ACCEPT}).headers["etag"].endswith('-provisional"')
            time.sleep(1.0)  # not overdue yet
            assert app.get(popular, headers={"Accept": WEBP_ACCEPT}).headers["etag"] == fast.headers["etag"]
            better = until_final(app, popular, WEBP_ACCEPT)  # the pool never emptied
            assert time.monotonic() - asked >= 1.5
            assert better.headers["cache-control"] == IMMUTABLE and len(better.content) < len(fast.content)
            time.sleep(2.0)  # overdue too, and past the rest: but asked for once, it waits for idle
            assert value(scrape(app), "edge_encode_upgrades_total", format="webp", result="better") == 1
        until_final(app, once, WEBP_ACCEPT)


def test_an_overdue_upgrade_that_finds_the_queue_full_waits_its_turn_and_is_not_given_up(tmp_path: Path):
    env = {
        **UPGRADES_ON,
        "EDGE_SERVER_UPGRADE_UNDER_LOAD_AFTER_S": "0.5",
        "EDGE_SERVER_RENDER_WORKERS": "2",
        "EDGE_SERVER_QUEUE_LIMIT": "0",
    }
    with in_process(tmp_path, env) as app, busy(app):
        url = versioned(app, w=420)
        fast = app.get(url, headers={"Accept": WEBP_ACCEPT})
        assert fast.headers["etag"].endswith('-provisional"')
        with busy(app):  # every render slot taken: an upgrade would be refused (503)
            still = app.get(url, headers={"Accept": WEBP_ACCEPT})  # asked for again: worth it under load
            assert still.headers["etag"] == fast.headers["etag"]
            time.sleep(2.0)
        assert value(scrape(app), "edge_encode_upgrades_total", format="webp", result="deferred") >= 1
        until_final(app, url, WEBP_ACCEPT)  # a slot is free again (still under load)
        upgrades = scrape(app)
        assert value(upgrades, "edge_encode_upgrades_total", format="webp", result="better") == 1
        assert value(upgrades, "edge_encode_upgrades_total", format="webp", result="failed") == 0


def test_upgrades_under_load_take_at_most_their_share_of_a_render_thread():
    patience = Patience(after_s=30.0, share=0.1)
    assert patience.rest_s(0.5) == pytest.approx(4.5)  # 0.5 of every 5 s
    assert not patience.overdue(29.0, now=100.0, rest_until=0.0)
    assert patience.overdue(30.0, now=100.0, rest_until=100.0)
    assert not patience.overdue(60.0, now=100.0, rest_until=104.5)  # still resting from the last one
    assert not Patience(after_s=0).overdue(3600.0, now=100.0, rest_until=0.0)  # 0: only while idle
    with pytest.raises(ValueError):
        Patience(share=0)


def test_upgrades_off_makes_every_rendition_final_at_once(tmp_path: Path):
    server = start_app(tmp_path, {"EDGE_ENCODE_UPGRADES": "false"})
    try:
        for accept, options in ((WEBP_ACCEPT, {}), (AVIF_ACCEPT, {}), ("*/*", {"q": "auto", "fm": "jpeg"})):
            r = server.get(versioned(server, w=600, **options), headers={"Accept": accept})
            assert r.headers["cache-control"] == IMMUTABLE and "provisional" not in r.headers["etag"]
    finally:
        stop_app(server)


def test_a_range_of_the_fast_encode_is_validated_by_its_own_etag(app: InProcess):
    url = versioned(app, w=440)
    with busy(app):
        fast = app.get(url, headers={"Accept": WEBP_ACCEPT})
        part = app.get(url, headers={"Accept": WEBP_ACCEPT, "Range": "bytes=0-99", "If-Range": fast.headers["etag"]})
        assert part.status_code == 206 and part.content == fast.content[:100]
        assert part.headers["etag"] == fast.headers["etag"]
    final = until_final(app, url, WEBP_ACCEPT)
    # The bytes changed: a range against the fast encode's ETag gets the whole new rendition.
    stale = app.get(url, headers={"Accept": WEBP_ACCEPT, "Range": "bytes=0-99", "If-Range": fast.headers["etag"]})
    assert stale.status_code == 200 and stale.content == final.content


def test_the_killable_child_searches_the_whole_image_when_the_upgrade_asks(app: InProcess):
    """rocket at 600 px, q=auto JPEG: its sample and the whole image ask for different qualities,
    so the search the child ran shows in the quality it chose."""
    record = app.run(app.services.masters.lookup("rocket_640x427.jpg"))
    renderer = app.services.renditions.renderer
    job = renderer.job(record, RenditionOptions(w=600, q="auto", fm="jpeg"), "jpeg")
    data = (app.masters / "rocket_640x427.jpg").read_bytes()
    chosen = {}
    for thorough in (False, True):
        _, timings = render_isolated(data, job.plan, renderer.tools.encode, True, CancelToken(), "", thorough)
        chosen[thorough] = timings.notes["search"]
    sampled, whole = (re.search(r" q=(\d+) ", chosen[t]) for t in (False, True))
    assert sampled and whole and sampled.group(1) != whole.group(1), chosen
