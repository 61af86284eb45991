"""The pipeline in process: policies that are easier to see without HTTP in between."""

from __future__ import annotations

import logging
import threading
import time

import pytest
import pyvips

from origin.core.concurrency import CancelToken
from origin.core.errors import Cancelled, Problem
from origin.core.formats import EncodeSettings
from origin.core.limits import Limits
from origin.core.request import RenditionOptions
from origin.imaging.probe import probe
from origin.pipeline import render
from origin.plan import jpeg_shrink, plan_rendition
from tests.support.corpus import CORPUS
from tests.support.images import decode, mean_abs_diff, sniff

SVG_ON = Limits(allow_svg=True)
DEFAULTS = Limits()


def rendition(path: str, fmt: str, limits: Limits = DEFAULTS, token: CancelToken | None = None, **opts: object):
    data = (CORPUS / path).read_bytes()
    plan = plan_rendition(RenditionOptions(**opts), probe(data, limits), fmt, limits)  # type: ignore[arg-type]
    return render(data, plan, EncodeSettings(), token)[0]


def test_enabled_svg_is_rasterised_never_passed_through():
    out = rendition("svg_script_450x300.svg", "png", SVG_ON, w=200)
    assert sniff(out.body) == "png" and b"<script" not in out.body
    assert decode(out.body).width == 200


def test_enabled_svg_still_obeys_the_pixel_limit():
    with pytest.raises(Problem) as err:
        probe((CORPUS / "svg_huge_100000x100000.svg").read_bytes(), SVG_ON)
    assert err.value.status == 422


def test_lenient_fail_on_is_a_choice_not_the_default():
    # The documented escape hatch: fail_on=none renders the truncated file (grey bottom and all).
    with pytest.raises(Problem):
        rendition("truncated_baseline_60pct.jpg", "jpeg", w=100)
    lenient = rendition("truncated_baseline_60pct.jpg", "jpeg", Limits(fail_on="none"), w=100)
    assert sniff(lenient.body) == "jpeg"


def test_a_cancelled_render_stops():
    opts = {"w": 2560, "h": 1600, "fit": "fill", "dpr": 3}
    started = time.monotonic()
    rendition("avif_2560x1600.avif", "png", **opts)
    whole = time.monotonic() - started
    token = CancelToken()
    threading.Timer(0.02, token.cancel).start()
    started = time.monotonic()
    with pytest.raises(Cancelled):
        rendition("avif_2560x1600.avif", "png", token=token, **opts)
    assert time.monotonic() - started < whole / 2  # stopped between tiles, not at the end


def test_a_cancel_calls_what_was_registered_once_and_only_until_it_is_forgotten():
    token, calls = CancelToken(), []
    token.on_cancel(lambda: calls.append("kept"))
    forget = token.on_cancel(lambda: calls.append("forgotten"))
    forget()
    token.cancel()
    token.cancel()
    assert calls == ["kept"]
    token.on_cancel(lambda: calls.append("late"))  # already cancelled: called at once
    assert calls == ["kept", "late"] and token.cancelled


def test_libvips_messages_reach_logging_with_the_collector_held_off(caplog):
    """A collection inside the forwarded message could free an image whose disposal logs again:
    GLib kills the process on that recursion (the fuzz test's damaged masters found it)."""
    import gc

    from origin.imaging.runtime import guard_log_handler

    guard_log_handler()
    seen: list[bool] = []

    class Probe(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(gc.isenabled())

    probe = Probe()
    logging.getLogger("pyvips").addHandler(probe)
    try:
        with pytest.raises(pyvips.Error):
            pyvips.Image.new_from_file(str(CORPUS / "truncated_baseline_60pct.jpg"), fail_on="truncated").avg()
    finally:
        logging.getLogger("pyvips").removeHandler(probe)
    assert seen and not any(seen)  # forwarded, with the collector off
    assert gc.isenabled()  # and back on after


@pytest.mark.parametrize(
    ("name", "width"),
    [
        ("exif_orientation_6_640x360.jpg", 100),  # turned by EXIF
        ("adobergb_640x400.jpg", 200),  # converted from its profile
        ("gps_exif_xmp_1920x1280.jpg", 320),
    ],
)
def test_the_decoders_own_shrink_keeps_orientation_and_colour(name: str, width: int):
    """Where the JPEG decoder shrinks below thumbnail's margin (origin.plan.jpeg_shrink), the
    rendition is the one thumbnail makes from the master, oriented and converted alike."""
    data = (CORPUS / name).read_bytes()
    header = probe(data, DEFAULTS)
    plan = plan_rendition(RenditionOptions(w=width), header, "png", DEFAULTS)
    assert jpeg_shrink(plan.jpeg_size, plan.load_w, plan.load_h) is not None  # the decoder's path runs
    made = decode(render(data, plan, EncodeSettings())[0].body)
    colour = {"export_profile": "srgb"} if header.has_profile else {}
    reference = pyvips.Image.thumbnail_buffer(data, plan.load_w, height=plan.load_h, size="force", **colour)
    assert (made.width, made.height) == (reference.width, reference.height) == (plan.target_w, plan.target_h)
    assert mean_abs_diff(made, reference) < 2.0
