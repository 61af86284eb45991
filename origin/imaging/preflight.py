"""Cost before work: what a master will cost to open, read from its bytes before libvips sees them.

A master can pass every size limit and still cost a thousand times a normal one: a progressive
JPEG with thousands of scans (libjpeg decodes each over the whole frame, in one call nothing can
interrupt), an animated WebP or GIF declaring 100,000 frames (libvips demuxes them all just to
count them), a PNG whose compressed text chunk inflates to tens of megabytes of XMP, an SVG full
of filter primitives. Each is refused here with a 422 naming the `[limits]` setting, by walking
the container's chunks or markers in pure Python with bounded work (stopping as soon as a limit
is passed), never by decoding pixels.
"""

from __future__ import annotations

import re
import struct
import zlib

from origin.core.errors import Problem
from origin.core.limits import Limits

_PROGRESSIVE_SOF = {0xC2, 0xC6, 0xCA, 0xCE}  # SOF2, SOF6, SOF10, SOF14
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SVG_START = re.compile(rb"\s*(<\?xml|<svg|<!--)", re.IGNORECASE)


def over(limit: str, what: str) -> Problem:
    return Problem(422, f"master {what}, over limits.{limit}", {"limit": limit})


def preflight(data: bytes, limits: Limits) -> None:
    """Raise a 422 Problem when the master would cost more to open than the limits allow."""
    if data[:3] == b"\xff\xd8\xff":
        _jpeg(data, limits)
    elif data[:8] == _PNG_SIGNATURE:
        _png(data, limits)
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        _webp(data, limits)
    elif data[:6] in (b"GIF87a", b"GIF89a"):
        _gif(data, limits)
    elif limits.allow_svg and _SVG_START.match(data[:256]):
        _svg(data, limits)


def _jpeg(data: bytes, limits: Limits) -> None:
    """Progressive JPEGs: the number of scans (each one a pass over the whole frame)."""
    pos, progressive = 2, False
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return  # not a marker where one should be: libvips will say what is wrong
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xDA:  # the first scan: headers are over
            if progressive:
                scans = data.count(b"\xff\xda", pos)  # entropy data never holds FF DA (it stuffs FF 00)
                if scans > limits.max_jpeg_scans:
                    raise over("max_jpeg_scans", f"is a progressive JPEG of {scans} scans")
            return
        if marker in _SOF:
            progressive = marker in _PROGRESSIVE_SOF
        (length,) = struct.unpack_from(">H", data, pos + 2)
        pos += 2 + length


def _inflated_over(compressed: bytes, cap: int) -> bool:
    try:
        return len(zlib.decompressobj().decompress(compressed, cap + 1)) > cap
    except zlib.error:
        return False  # damaged: libvips ignores or refuses it


def _png(data: bytes, limits: Limits) -> None:
    """Text and profile chunks that inflate past the metadata limit; APNG frame counts."""
    pos, frames, cap = 8, 0, limits.max_metadata_bytes
    while pos + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        body = data[pos + 8 : pos + 8 + length]
        if kind in (b"zTXt", b"iCCP"):
            _, _, rest = body.partition(b"\0")
            if _inflated_over(rest[1:], cap):
                raise over("max_metadata_bytes", f"has a {kind.decode()} chunk that inflates past {cap} bytes")
        elif kind == b"iTXt":
            keyword, _, rest = body.partition(b"\0")
            compressed = rest[:1] == b"\x01"
            text = rest[2:].split(b"\0", 2)[-1]  # after the language tag and translated keyword
            if (len(text) > cap) or (compressed and _inflated_over(text, cap)):
                raise over("max_metadata_bytes", f"has an iTXt chunk {keyword[:40]!r} larger than {cap} bytes inflated")
        elif kind == b"tEXt" and length > cap:
            raise over("max_metadata_bytes", f"has a tEXt chunk of {length} bytes")
        elif kind == b"fcTL":
            frames += 1
            if frames > limits.max_frames:
                raise over("max_frames", f"declares more than {limits.max_frames} frames")
        elif kind == b"IEND":
            return
        pos += 12 + length


def _webp(data: bytes, limits: Limits) -> None:
    """Animated WebP frame counts (libvips would demux every frame to count them) and XMP size."""
    pos, frames = 12, 0
    while pos + 8 <= len(data):
        kind, size = struct.unpack_from("<4sI", data, pos)
        if kind == b"ANMF":
            frames += 1
            if frames > limits.max_frames:
                raise over("max_frames", f"declares more than {limits.max_frames} frames")
        elif kind == b"XMP " and size > limits.max_metadata_bytes:
            raise over("max_metadata_bytes", f"has an XMP chunk of {size} bytes")
        pos += 8 + size + (size & 1)


def _gif(data: bytes, limits: Limits) -> None:
    """GIF frame counts: image descriptors, walking the blocks (sub-blocks skipped by length)."""
    if len(data) < 13:
        return
    flags = data[10]
    pos = 13 + ((3 << ((flags & 7) + 1)) if flags & 0x80 else 0)
    frames = 0
    while pos < len(data):
        block = data[pos]
        if block == 0x3B:  # trailer
            return
        if block == 0x21:  # extension: label, then sub-blocks
            pos += 2
        elif block == 0x2C:  # image descriptor, optional local colour table, LZW code size
            frames += 1
            if frames > limits.max_frames:
                raise over("max_frames", f"declares more than {limits.max_frames} frames")
            if pos + 10 > len(data):
                return
            local = data[pos + 9]
            pos += 10 + ((3 << ((local & 7) + 1)) if local & 0x80 else 0) + 1
        else:
            return  # not a block: libvips will say what is wrong
        while pos < len(data) and data[pos]:  # sub-blocks, up to the terminator
            pos += data[pos] + 1
        pos += 1


def _svg(data: bytes, limits: Limits) -> None:
    """SVG rasterising cost grows with elements and, most, with filter primitives (blurs...)."""
    filters = data.count(b"<fe")
    if filters > limits.max_svg_filters:
        raise over("max_svg_filters", f"is an SVG with {filters} filter primitives")
    elements = data.count(b"<")
    if elements > limits.max_svg_elements:
        raise over("max_svg_elements", f"is an SVG of {elements} elements")
