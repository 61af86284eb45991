"""What a page shows before an image arrives: a dominant colour, a ThumbHash, a tiny data URI.

Made from a small rendition of the image as it will be framed (the caller renders it with the
rule's aspect and crop), so the placeholder has the shape and colours of what replaces it:

- `color`: the most common colour, after quantising to 4 bits per channel (the mean of that
  bucket), as `#rrggbb`: what a `background-color` or a skeleton needs;
- `thumbhash`: Evan Wallace's ThumbHash (about 25 bytes, base64), which keeps alpha and aspect and
  decodes to a blurred preview in the browser (https://evanw.github.io/thumbhash/). Encoded here,
  after the reference JavaScript, with numpy: the PyPI ports are unmaintained, one mis-encodes
  every image with alpha (an operator-precedence slip) and the other pins Pillow < 11 and a CLI
  framework. tests/unit/test_placeholders.py checks ours against the first on opaque images and
  decodes the average colour back;
- `data_uri`: a WebP of DATA_URI_WIDTH px, inline (LQIP), at most MAX_DATA_URI bytes.

Pure and deterministic: the same pixels give the same three strings.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass

import numpy as np
import pyvips

THUMBHASH_SIDE = 100  # ThumbHash takes images up to 100 x 100
DATA_URI_WIDTH = 24
MAX_DATA_URI = 1000  # bytes of the whole data: URI


@dataclass(frozen=True)
class Placeholder:
    color: str
    thumbhash: str
    data_uri: str

    def to_json(self) -> dict[str, str]:
        return {"color": self.color, "thumbhash": self.thumbhash, "data_uri": self.data_uri}

    def css(self) -> str:
        """A `style` value that paints the placeholder behind the image until it loads."""
        return f"background: {self.color} url({self.data_uri}) center / cover no-repeat"


def make_placeholder(image: pyvips.Image) -> Placeholder:
    """The placeholders of an image as it will be shown (sRGB or grey, any size, alpha kept)."""
    small = _rgba(image.thumbnail_image(THUMBHASH_SIDE, height=THUMBHASH_SIDE))
    pixels = np.ndarray(buffer=small.write_to_memory(), dtype=np.uint8, shape=(small.height, small.width, 4))
    return Placeholder(_dominant(pixels), base64.b64encode(thumbhash(pixels)).decode(), _data_uri(small))


def placeholder_of(encoded: bytes) -> Placeholder:
    """The placeholders of an encoded image (a small rendition)."""
    return make_placeholder(pyvips.Image.new_from_buffer(encoded, ""))


def _round(x: float) -> int:
    return math.floor(x + 0.5)  # JavaScript's Math.round, which the reference uses


def thumbhash(rgba: np.ndarray) -> bytes:
    """The ThumbHash of an H x W x 4 uint8 image of at most 100 x 100."""
    h, w, _ = rgba.shape
    if w > THUMBHASH_SIDE or h > THUMBHASH_SIDE:
        raise ValueError(f"{w}x{h} does not fit in {THUMBHASH_SIDE}x{THUMBHASH_SIDE}")
    px = rgba.astype(np.float64) / 255
    alpha = px[..., 3]
    total = float(alpha.sum())
    avg = (px[..., :3] * alpha[..., None]).sum(axis=(0, 1)) / total if total else np.zeros(3)
    has_alpha = total < w * h
    l_limit = 5 if has_alpha else 7  # fewer luminance terms when alpha needs the room
    lx = max(1, _round(l_limit * w / max(w, h)))
    ly = max(1, _round(l_limit * h / max(w, h)))
    # Composite atop the average colour, then to luminance and two chroma channels (LPQ).
    rgb = avg * (1 - alpha[..., None]) + alpha[..., None] * px[..., :3]
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    l_dc, l_ac, l_scale = _encode_channel((r + g + b) / 3, max(3, lx), max(3, ly))
    p_dc, p_ac, p_scale = _encode_channel((r + g) / 2 - b, 3, 3)
    q_dc, q_ac, q_scale = _encode_channel(r - g, 3, 3)
    landscape = w > h
    header24 = (
        _round(63 * l_dc)
        | _round(31.5 + 31.5 * p_dc) << 6
        | _round(31.5 + 31.5 * q_dc) << 12
        | _round(31 * l_scale) << 18
        | int(has_alpha) << 23
    )
    header16 = (ly if landscape else lx) | _round(63 * p_scale) << 3 | _round(63 * q_scale) << 9 | int(landscape) << 15
    out = [header24 & 255, (header24 >> 8) & 255, header24 >> 16, header16 & 255, header16 >> 8]
    acs = [l_ac, p_ac, q_ac]
    if has_alpha:
        a_dc, a_ac, a_scale = _encode_channel(alpha, 5, 5)
        out.append(_round(15 * a_dc) | _round(15 * a_scale) << 4)
        acs.append(a_ac)
    start = len(out)
    factors = [f for ac in acs for f in ac]
    out += [0] * ((len(factors) + 1) // 2)
    for i, f in enumerate(factors):
        out[start + (i >> 1)] |= _round(15 * f) << ((i & 1) << 2)
    return bytes(out)


def _encode_channel(channel: np.ndarray, nx: int, ny: int) -> tuple[float, list[float], float]:
    """DC and the AC terms (normalised to 0..1, with their scale) of a channel's DCT, the
    triangle of terms cx * ny < nx * (ny - cy), rows first."""
    h, w = channel.shape
    dc, ac = 0.0, []
    for cy in range(ny):
        fy = np.cos(math.pi / h * cy * (np.arange(h) + 0.5))
        cx = 0
        while cx * ny < nx * (ny - cy):
            fx = np.cos(math.pi / w * cx * (np.arange(w) + 0.5))
            f = float(fy @ channel @ fx) / (w * h)
            if cx or cy:
                ac.append(f)
            else:
                dc = f
            cx += 1
    scale = max((abs(f) for f in ac), default=0.0)
    if scale:
        ac = [0.5 + 0.5 / scale * f for f in ac]
    return dc, ac, scale


def _rgba(image: pyvips.Image) -> pyvips.Image:
    """8-bit sRGB with an alpha band."""
    if image.format != "uchar" or image.interpretation not in ("srgb", "b-w"):
        image = image.colourspace("srgb" if image.bands >= 3 else "b-w").cast("uchar")
    if image.bands in (1, 2):
        grey, alpha = image[0], image[1] if image.bands == 2 else None
        image = grey.bandjoin([grey, grey] + ([alpha] if alpha is not None else []))
    if image.bands == 3:
        image = image.bandjoin(255)
    return image.copy(interpretation="srgb")


def _dominant(pixels: np.ndarray) -> str:
    """The mean of the most common 4-bit-per-channel colour bucket among the opaque pixels."""
    rgb = pixels[..., :3].reshape(-1, 3)
    opaque = rgb[pixels[..., 3].reshape(-1) >= 128]
    rgb = opaque if len(opaque) else rgb
    buckets = (rgb[:, 0] >> 4).astype(np.int32) << 8 | (rgb[:, 1] >> 4).astype(np.int32) << 4 | rgb[:, 2] >> 4
    counts = np.bincount(buckets, minlength=4096)
    top = int(np.argmax(counts))  # ties go to the lowest bucket: deterministic
    r, g, b = (int(round(v)) for v in rgb[buckets == top].mean(axis=0))
    return f"#{r:02x}{g:02x}{b:02x}"


def _data_uri(small: pyvips.Image) -> str:
    """A tiny WebP, halved until its data URI fits MAX_DATA_URI."""
    width, quality = DATA_URI_WIDTH, 50
    while True:
        tiny = small.thumbnail_image(width, height=width * 4)
        alpha = tiny[3].min() < 255
        data = (tiny if alpha else tiny[0:3]).webpsave_buffer(Q=quality, effort=4, keep="none")
        uri = "data:image/webp;base64," + base64.b64encode(data).decode()
        if len(uri) <= MAX_DATA_URI or width <= 4:
            return uri
        width, quality = width // 2, max(20, quality - 10)
