"""Cost before work: masters that would cost far more to open than their size says are refused
from their bytes (422 naming the limit), before libvips sees them; ordinary masters never are."""

from __future__ import annotations

import struct
import zlib
from dataclasses import replace
from pathlib import Path

import pytest

from origin.core.errors import Problem
from origin.core.limits import Limits
from origin.imaging.preflight import preflight
from origin.imaging.probe import probe
from tests.support.corpus import CORPUS

LIMITS = Limits()
SHARED = Path(__file__).resolve().parents[3] / "shared" / "corpus"


def refused(data: bytes, limits: Limits = LIMITS) -> Problem:
    with pytest.raises(Problem) as e:
        probe(data, limits)
    assert e.value.status == 422
    return e.value


def test_a_progressive_jpeg_with_more_scans_than_allowed_is_refused():
    data = (CORPUS / "progressive_66_scans_320x214.jpg").read_bytes()
    assert probe(data, LIMITS).width == 320  # 66 scans: under the default of 100
    problem = refused(data, replace(LIMITS, max_jpeg_scans=20))
    assert problem.extra == {"limit": "max_jpeg_scans"} and "66 scans" in problem.detail
    # Baseline JPEGs are not counted at all; FF DA inside an EXIF thumbnail never counts either.
    preflight((CORPUS / "gps_exif_xmp_1920x1280.jpg").read_bytes(), replace(LIMITS, max_jpeg_scans=1))


def webp_with_frames(n: int) -> bytes:
    """An animated WebP container declaring n (empty) frames: what a 5 MB 100k-frame file is."""
    vp8x = b"VP8X" + struct.pack("<I", 10) + bytes([0x12, 0, 0, 0]) + (99).to_bytes(3, "little") * 2
    anim = b"ANIM" + struct.pack("<I", 6) + bytes(6)
    frame = b"ANMF" + struct.pack("<I", 16) + bytes(16)
    body = b"WEBP" + vp8x + anim + frame * n
    return b"RIFF" + struct.pack("<I", len(body)) + body


def test_animations_declaring_too_many_frames_are_refused_from_their_chunks():
    problem = refused(webp_with_frames(100_000))
    assert problem.extra == {"limit": "max_frames"} and "more than 200 frames" in problem.detail
    preflight(webp_with_frames(200), LIMITS)  # at the limit: libvips decides the rest
    for name in ("animated_24f_160x90.gif", "animated_24f_160x90.webp"):
        data = (CORPUS / name).read_bytes()
        preflight(data, LIMITS)
        assert "declares more than 10 frames" in refused(data, replace(LIMITS, max_frames=10)).detail


def png_with_text(kind: bytes, payload: bytes) -> bytes:
    data = (CORPUS / "chelsea_cat_451x300.png").read_bytes()
    chunk = struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    return data[:33] + chunk + data[33:]  # after IHDR


def test_a_png_whose_metadata_inflates_past_the_limit_is_refused():
    xmp = b"<x:xmpmeta>" + b" " * (40 << 20) + b"</x:xmpmeta>"  # 40 MB that deflates to ~40 KB
    itxt = b"XML:com.adobe.xmp\0\x01\x00\0\0" + zlib.compress(xmp, 9)
    problem = refused(png_with_text(b"iTXt", itxt))
    assert problem.extra == {"limit": "max_metadata_bytes"}
    ztxt = b"Comment\0\x00" + zlib.compress(b"a" * (8 << 20))
    assert refused(png_with_text(b"zTXt", ztxt)).extra == {"limit": "max_metadata_bytes"}
    small = b"XML:com.adobe.xmp\0\x01\x00\0\0" + zlib.compress(b"<x:xmpmeta/>")
    assert probe(png_with_text(b"iTXt", small), LIMITS).width == 451


def test_an_svg_full_of_filters_is_refused_when_svgs_are_allowed():
    blur = b'<filter id="f%d"><feGaussianBlur stdDeviation="50"/></filter>'
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="400" height="400">' + b"".join(blur % i for i in range(40))
    svg += b"</svg>"
    allowed = replace(LIMITS, allow_svg=True)
    assert refused(svg, allowed).extra == {"limit": "max_svg_filters"}
    preflight(svg, LIMITS)  # SVG off: probe refuses it as a format (415), not here


def ordinary_masters() -> list[Path]:
    hostile = ("bomb", "truncated", "corrupt", "header_only", "random", "empty", "found_gif", "svg_")
    local = [p for p in sorted(CORPUS.iterdir()) if p.is_file() and not p.name.startswith(hostile)]
    shared = sorted((SHARED / "photos").glob("*")) if (SHARED / "photos").is_dir() else []
    return [p for p in local + shared if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".gif", ".webp", ".mpo")]


def test_ordinary_masters_pass_untouched():
    masters = ordinary_masters()
    assert len(masters) >= 20
    for path in masters:
        preflight(path.read_bytes(), LIMITS)
