"""What a person checks about an image response: its real format, size, frames and colours."""

from __future__ import annotations

import numpy as np
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


def lanczos3_enlarge(image: pyvips.Image, scale: int) -> np.ndarray:
    """Reference enlargement: a true, centre-aligned Lanczos3 (libvips' resize() upsizes with a
    bicubic half an output pixel off, which would make beating it too easy). Written out on purpose,
    not imported from origin.imaging.resample: it is what the pipeline is checked against."""
    x = np.arange(-3, 4) - ((np.arange(scale)[:, None] + 0.5) / scale - 0.5)
    w = np.sinc(x) * np.sinc(x / 3) * (np.abs(x) < 3)
    w /= w.sum(axis=1, keepdims=True)
    rgb = np.pad(image.numpy().astype(np.float64), ((3, 3), (3, 3), (0, 0)), mode="edge")
    h, wd = image.height, image.width
    rows = np.empty((h + 6, wd * scale, 3))
    for p in range(scale):
        rows[:, p::scale] = sum(w[p, k] * rgb[:, k : k + wd] for k in range(7))
    out = np.empty((h * scale, wd * scale, 3))
    for p in range(scale):
        out[p::scale] = sum(w[p, k] * rows[k : k + h] for k in range(7))
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
