"""What a person checks about an image response: its real format, size, frames and colours."""

from __future__ import annotations

import pyvips


def sniff(body: bytes) -> str:
    """The format by magic bytes, not by what the headers claim."""
    if body[4:12] in (b"ftypavif", b"ftypavis"):
        return "avif"
    if body[:4] == b"RIFF" and body[8:12] == b"WEBP":
        return "webp"
    if body[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if body[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if body[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    return "unknown"


def decode(body: bytes, all_frames: bool = False) -> pyvips.Image:
    return pyvips.Image.new_from_buffer(body, "", n=-1) if all_frames else pyvips.Image.new_from_buffer(body, "")


def frames(body: bytes) -> int:
    image = decode(body)
    return image.get("n-pages") if "n-pages" in image.get_fields() else 1


def mean_abs_diff(a: pyvips.Image, b: pyvips.Image) -> float:
    """Mean absolute difference per channel (0..255) of two images, after matching sizes and bands."""
    a, b = a.flatten() if a.hasalpha() else a, b.flatten() if b.hasalpha() else b
    a, b = a.colourspace("srgb"), b.colourspace("srgb")
    if (a.width, a.height) != (b.width, b.height):
        b = b.resize(a.width / b.width, vscale=a.height / b.height)
    return (a.cast("float") - b.cast("float")).abs().avg()
