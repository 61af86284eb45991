"""A master decoded once for all its declared renditions (a srcset burst): each rendition made from
that shared decode matches the one made from the master itself (mean difference under 1/255), and
however many renders start at once, the master is decoded once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest
import pyvips

from origin.core.formats import EncodeSettings, FormatSettings
from origin.core.limits import Limits
from origin.core.request import Crop, RenditionOptions
from origin.imaging.intermediates import IntermediateCache
from origin.imaging.probe import probe
from origin.pipeline import RenderTools, render
from origin.plan import plan_rendition, with_shared_decode
from tests.support.corpus import CORPUS
from tests.support.images import decode, mean_abs_diff

PHOTOS = [
    "gps_exif_xmp_1920x1280.jpg",  # a camera photo
    "exif_orientation_6_640x360.jpg",  # rotated by EXIF
    "avif_2560x1600.avif",
    "adobergb_640x400.jpg",  # an ICC profile to convert from
    "flower_640x427.jpg",
    "chelsea_cat_451x300.png",
    "rgba_alpha_1600x1000.webp",
]


OPTIONS = [
    RenditionOptions(w=320),
    RenditionOptions(w=150, h=150, g="smart"),
    RenditionOptions(w=200, h=120, crop=Crop(0, 0, 300, 200)),
]


@pytest.mark.parametrize("name", PHOTOS)
@pytest.mark.parametrize("opts", OPTIONS, ids=["w", "smart-crop", "crop"])
def test_a_rendition_from_the_shared_decode_matches_one_from_the_master(name: str, opts: RenditionOptions):
    data = (CORPUS / name).read_bytes()
    limits = Limits()
    header = probe(data, limits)
    plan = plan_rendition(opts, header, "png", limits)
    width = min(header.width, plan.load_w * 3)  # a burst's widest rendition, well above this one
    decode_at = (width, max(plan.load_h, round(header.height * width / header.width)))
    tools = RenderTools(EncodeSettings(), decoded=IntermediateCache(256 << 20))
    direct, _ = render(data, plan, tools, source_id="v")
    shared, _ = render(data, with_shared_decode(plan, decode_at), tools, source_id="v")  # as the Renderer plans it
    a, b = decode(direct.body), decode(shared.body)
    assert (a.width, a.height, a.bands) == (b.width, b.height, b.bands)
    assert mean_abs_diff(a, b) < 1.0, (name, opts, decode_at)


def test_concurrent_renders_decode_the_master_once():
    data = (CORPUS / "gps_exif_xmp_1920x1280.jpg").read_bytes()
    limits = Limits()
    header = probe(data, limits)
    calls = []
    lock = threading.Lock()

    class Counting(IntermediateCache):
        def put(self, key: str, image: pyvips.Image) -> pyvips.Image:
            with lock:
                calls.append(key)
            return super().put(key, image)

    tools = RenderTools(EncodeSettings(), decoded=Counting(256 << 20))
    plans = [
        replace(plan_rendition(RenditionOptions(w=w), header, fmt, limits), decode_at=(1600, 1067))
        for w in (200, 320, 480, 640, 800, 1024)
        for fmt in ("jpeg", "webp")
    ]
    with ThreadPoolExecutor(6) as pool:
        outputs = list(pool.map(lambda p: render(data, p, tools, source_id="v")[0], plans))
    assert len(calls) == 1
    assert [o.width for o in outputs] == [p.target_w for p in plans]


def test_the_renderer_shares_a_decode_only_within_four_times_and_names_it_in_the_key():
    from origin.core.master import MasterHeader, MasterInfo, MasterRecord
    from origin.masters.local import LocalMasterStore
    from origin.pool import RenderPool
    from origin.render import MasterHints, Renderer

    record = MasterRecord(MasterInfo("m.jpg", 1, "1"), "ab" * 32, MasterHeader("jpeg", 4000, 3000, 3, False, 1))
    hints = MasterHints(decode_size=lambda _record: (2048, 1536))
    args = (LocalMasterStore(CORPUS), Limits(), FormatSettings(), EncodeSettings(), RenderPool(1, 0, 10))
    shared = Renderer(*args, hints=hints, decoded=IntermediateCache(1 << 20))
    alone = Renderer(*args)
    assert shared.job(record, RenditionOptions(w=1024), "jpeg").plan.decode_at == (2048, 1536)
    assert shared.job(record, RenditionOptions(w=512), "jpeg").plan.decode_at == (2048, 1536)
    assert shared.job(record, RenditionOptions(w=320), "jpeg").plan.decode_at is None  # 6.4x: its own decode
    assert alone.job(record, RenditionOptions(w=1024), "jpeg").plan.decode_at is None
    assert (
        shared.job(record, RenditionOptions(w=1024), "jpeg").key
        != alone.job(record, RenditionOptions(w=1024), "jpeg").key
    )
    assert (
        shared.job(record, RenditionOptions(w=320), "jpeg").key
        == alone.job(record, RenditionOptions(w=320), "jpeg").key
    )
