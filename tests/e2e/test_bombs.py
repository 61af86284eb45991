"""Decompression bombs: every one is refused from its header, before any pixel is decoded, in less
than 100 ms and without a jump in memory, in process and through the real server.

The bombs: the four in the corpus (900 MP PNGs at 1 bit and 8 bits per channel, Pillow's 44-byte GIF
whose header declares 65535x66601, an SVG that declares 100000x100000) and tiny files crafted here
whose headers declare 65535x65535 (PNG, GIF, WebP, JPEG) or other impossible sizes, frame counts and
animation totals. Decoding any of them would take seconds and gigabytes; libvips has no pixel limit
of its own (see the corpus manifest), so origin/probe.py is what stands in the way.

Peak memory is read from /proc/<pid>/status: VmHWM after resetting it (`5` into /proc/<pid>/clear_refs),
so a spike that came and went still counts.
"""

from __future__ import annotations

import base64
import statistics
import struct
import time
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from origin.core.errors import Problem
from origin.core.limits import Limits
from origin.imaging.probe import probe
from tests.support.corpus import CORPUS
from tests.support.http import assert_problem
from tests.support.metrics import scrape
from tests.support.server import Server, start_server, stop_server

REFUSAL_BUDGET_S = 0.100
RSS_JUMP_LIMIT = 24 * 1024 * 1024  # the 900 MP bombs would need 0.1-2.7 GB decoded; files are < 3 MB
CORPUS_BOMBS = [
    "bomb_30000x30000_1bit.png",
    "bomb_30000x30000_rgb8.png",
    "found_gif_bomb_pillow.gif",
    "svg_huge_100000x100000.svg",
]


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_declaring(w: int, h: int) -> bytes:
    """A valid PNG header (8-bit RGB, correct CRCs) over 64 zero bytes of pixels."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def gif_declaring(w: int, h: int, frames: int = 1, frame_w: int | None = None, frame_h: int | None = None) -> bytes:
    """A GIF whose screen is w x h, with `frames` frames of frame_w x frame_h and almost no data."""
    fw, fh = frame_w or w, frame_h or h
    out = b"GIF89a" + struct.pack("<HHBBB", w, h, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff"
    if frames > 1:
        out += b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    for _ in range(frames):
        out += b"\x21\xf9\x04\x00\x0a\x00\x00\x00"  # graphic control: 100 ms per frame
        out += b"\x2c" + struct.pack("<HHHHB", 0, 0, fw, fh, 0) + b"\x02\x02\x4c\x01\x00"
    return out + b"\x3b"


def _riff(chunks: bytes) -> bytes:
    body = b"WEBP" + chunks
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _webp_chunk(kind: bytes, data: bytes) -> bytes:
    return kind + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b"")


def _vp8l(w: int, h: int) -> bytes:
    return _webp_chunk(b"VP8L", b"\x2f" + struct.pack("<I", (w - 1) | ((h - 1) << 14)) + b"\0" * 16)


def webp_lossless_declaring(w: int, h: int) -> bytes:
    return _riff(_vp8l(w, h))


def webp_lossy_declaring(w: int, h: int) -> bytes:
    frame = b"\x9d\x01\x2a" + struct.pack("<HH", w, h)
    tag = (len(frame) + 20) << 5 | 0x10  # a key frame, shown
    return _riff(_webp_chunk(b"VP8 ", tag.to_bytes(3, "little") + frame + b"\0" * 20))


def webp_canvas_declaring(w: int, h: int) -> bytes:
    """An extended WebP (VP8X) whose canvas is w x h (up to 2^24 a side) around a 1x1 image."""
    canvas = b"\0\0\0\0" + (w - 1).to_bytes(3, "little") + (h - 1).to_bytes(3, "little")
    return _riff(_webp_chunk(b"VP8X", canvas) + _vp8l(1, 1))


def jpeg_declaring(w: int, h: int) -> bytes:
    """The corpus's 1x1 JPEG with its frame header (SOF0) rewritten to w x h."""
    b = bytearray((CORPUS / "tiny_1x1.jpg").read_bytes())
    for i in range(2, len(b) - 9):
        if b[i] == 0xFF and b[i + 1] in (0xC0, 0xC1, 0xC2):
            b[i + 5 : i + 9] = struct.pack(">HH", h, w)
            return bytes(b)
    raise AssertionError("no SOF marker")


CRAFTED = {
    "png_65535x65535.png": png_declaring(65535, 65535),
    "png_2147483647x2147483647.png": png_declaring(2**31 - 1, 2**31 - 1),
    "gif_65535x65535.gif": gif_declaring(65535, 65535),
    "gif_1000_frames.gif": gif_declaring(1, 1, frames=1000),
    "gif_150_frames_of_2000x2000.gif": gif_declaring(2000, 2000, frames=150),
    "webp_canvas_65535x65535.webp": webp_canvas_declaring(65535, 65535),
    "webp_lossy_16383x16383.webp": webp_lossy_declaring(16383, 16383),
    "webp_lossless_8000x8000.webp": webp_lossless_declaring(8000, 8000),
    "webp_lossless_16384x16384.webp": webp_lossless_declaring(16384, 16384),
    "jpeg_65535x65535.jpg": jpeg_declaring(65535, 65535),
    "jpeg_60000x60000.jpg": jpeg_declaring(60000, 60000),
}
ALL_BOMBS = CORPUS_BOMBS + sorted(CRAFTED)


def bomb_bytes(name: str) -> bytes:
    return CRAFTED[name] if name in CRAFTED else (CORPUS / name).read_bytes()


def proc_status(pid: int | str, field: str) -> int:
    """A `kB` field of /proc/<pid>/status, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def reset_peak(pid: int | str) -> None:
    """Make VmHWM (peak RSS) start again from the current RSS."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


# ---- in process ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def warm_loaders() -> None:
    """Load each format's decoder once on a harmless file, so library loading is not counted."""
    for name in ("tiny_1x1.jpg", "tiny_1x1.gif", "tiny_1x1.webp", "tiny_1x1_transparent.png", "svg_script_450x300.svg"):
        probe((CORPUS / name).read_bytes(), Limits(allow_svg=True))


@pytest.mark.parametrize("name", ALL_BOMBS)
def test_every_bomb_is_refused_from_its_header_in_process(warm_loaders: None, name: str):
    data = bomb_bytes(name)
    before = proc_status("self", "VmRSS")
    reset_peak("self")
    started = time.perf_counter()
    with pytest.raises(Problem) as refused:
        probe(data, Limits(allow_svg=True))  # SVG allowed: its size must stop it, not the switch
    elapsed = time.perf_counter() - started
    peak = proc_status("self", "VmHWM")
    print(f"\nin process: {name}: {refused.value.status} in {elapsed * 1000:.2f} ms, peak +{(peak - before) >> 10} KB")
    assert refused.value.status in (415, 422), refused.value
    assert elapsed < REFUSAL_BUDGET_S
    assert peak - before < RSS_JUMP_LIMIT


def test_limits_are_what_the_refusals_say():
    with pytest.raises(Problem, match="over the limit of 50 MP"):
        probe(bomb_bytes("png_65535x65535.png"), Limits())
    with pytest.raises(Problem, match="declares more than 200 frames, over limits.max_frames"):
        probe(bomb_bytes("gif_1000_frames.gif"), Limits())
    with pytest.raises(Problem, match="too many pixels in all"):
        probe(bomb_bytes("gif_150_frames_of_2000x2000.gif"), Limits())
    with pytest.raises(Problem, match="SVG masters are disabled"):  # the default
        probe(bomb_bytes("svg_huge_100000x100000.svg"), Limits())
    # A limit that is raised is honoured: the same 2000x2000 frames, fewer of them, pass.
    header = probe(gif_declaring(2000, 2000, frames=20), Limits())
    assert (header.width, header.height, header.frames) == (2000, 2000, 20)


# ---- through the real server -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def bomb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("bombs"), {"EDGE_LIMITS_ALLOW_SVG": "true"})
    yield srv
    stop_server(srv)


def _renders(server: Server) -> float:
    return sum(v for (name, _labels), v in scrape(server).items() if name == "edge_renders_total")


@pytest.mark.parametrize("name", ALL_BOMBS)
def test_every_bomb_is_refused_by_the_server_quickly_and_without_a_memory_jump(bomb_server: Server, name: str):
    # A fresh name each run, so the master is read, hashed and probed now (refusals are cached).
    path = f"bombs/{uuid.uuid4().hex[:8]}-{name}"
    (bomb_server.masters / "bombs").mkdir(exist_ok=True)
    (bomb_server.masters / path).write_bytes(bomb_bytes(name))
    pid = bomb_server.process.pid
    with httpx.Client(timeout=30) as client:
        # Baseline: a signed request that is refused without reading anything (an unknown master).
        baseline = []
        for i in range(7):
            started = time.monotonic()
            assert client.get(bomb_server.url(f"bombs/none-{i}.png", w=100)).status_code == 404
            baseline.append(time.monotonic() - started)
        renders = _renders(bomb_server)
        before = proc_status(pid, "VmRSS")
        reset_peak(pid)
        started = time.monotonic()
        r = client.get(bomb_server.url(path, w=100))
        elapsed = time.monotonic() - started
        peak, after = proc_status(pid, "VmHWM"), proc_status(pid, "VmRSS")
        again = client.get(bomb_server.url(path, w=200, fm="png"))  # the refusal is remembered
    extra = elapsed - statistics.median(baseline)
    print(
        f"\nserver: {name}: {r.status_code} in {elapsed * 1000:.1f} ms ({extra * 1000:+.1f} ms over a 404), "
        f"RSS {before >> 20} MB, peak +{(peak - before) >> 10} KB, after +{(after - before) >> 10} KB"
    )
    assert r.status_code in (415, 422), r.text
    assert_problem(r, r.status_code)
    assert again.status_code == r.status_code
    assert extra < REFUSAL_BUDGET_S
    assert peak - before < RSS_JUMP_LIMIT and after - before < RSS_JUMP_LIMIT
    assert _renders(bomb_server) == renders  # nothing went to the renderer
    assert bomb_server.process.poll() is None


def test_the_svg_bomb_is_refused_by_default_too(server: Server):
    r = httpx.get(server.url("svg_huge_100000x100000.svg", w=100), timeout=30)
    assert_problem(r, 415, "SVG masters are disabled")


# ---- hostile SVG: when SVG is enabled, it is rasterised and reaches for nothing --------------------


def test_an_enabled_svg_fetches_nothing_and_reads_no_local_file(tmp_path: Path):
    """External references in an SVG master (http:, file:, a script) would be server-side request
    forgery or a local file read. librsvg, behind libvips, loads none of them from a buffer: the
    listener below sees no connection, and the red PNG on disk does not show up in the output."""
    import socket

    from origin.core.formats import EncodeSettings
    from origin.core.request import RenditionOptions
    from origin.pipeline import render
    from origin.plan import plan_rendition

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    red = tmp_path / "red.png"
    red.write_bytes(png_all_red(64, 64))
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="64" height="64">'
        '<rect width="64" height="64" fill="white"/>'
        f'<image width="32" height="64" xlink:href="http://127.0.0.1:{port}/x.png"/>'
        f'<image x="32" width="32" height="64" xlink:href="file://{red}"/>'
        f'<image x="32" width="32" height="64" href="{red}"/>'
        f"<script>fetch('http://127.0.0.1:{port}/script')</script></svg>"
    ).encode()
    limits = Limits(allow_svg=True)
    plan = plan_rendition(RenditionOptions(w=64, fm="png"), probe(svg, limits), "png", limits)
    out, _ = render(svg, plan, EncodeSettings())
    try:
        with pytest.raises(TimeoutError):
            listener.accept()
    finally:
        listener.close()
    import pyvips

    image = pyvips.Image.new_from_buffer(out.body, "")
    assert image.width == 64 and image.colourspace("srgb")[1].min() > 200  # no red anywhere: all white
    # The check can see red: the same picture embedded in the SVG itself (data:) is drawn.
    embedded = svg.replace(f"file://{red}".encode(), b"data:image/png;base64," + base64.b64encode(red.read_bytes()))
    drawn = pyvips.Image.new_from_buffer(render(embedded, plan, EncodeSettings())[0].body, "")
    assert drawn.colourspace("srgb")[1].min() < 50


def png_all_red(w: int, h: int) -> bytes:
    rows = b"".join(b"\0" + b"\xff\x00\x00" * w for _ in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(rows))
        + _png_chunk(b"IEND", b"")
    )
