"""The limits that protect the renderer, and the one copy of the output-size arithmetic.

The planner, srcset and sitemaps all size renditions through these functions with the configured
`Limits`, so a URL that srcset or a sitemap emits is always one the server renders at exactly the
width it was described with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from origin.core.errors import Problem
from origin.core.request import MAX_SIZE, Crop

FAIL_ON = ("none", "truncated", "error", "warning")


@dataclass(frozen=True)
class Limits:
    """[limits] in the configuration; checked from the master's header before any pixel is decoded."""

    max_master_pixels: int = 50_000_000  # per frame; 413/422 above
    max_master_bytes: int = 64 * 1024 * 1024
    max_frames: int = 200
    max_output_side: int = 8192  # device pixels; larger CSS size x dpr is scaled down to fit
    max_output_pixels: int = 40_000_000
    # libvips' fail_on for decoding masters. "warning" refuses truncated files and corrupt entropy
    # data instead of silently filling the damage with grey (libvips' default is "none").
    fail_on: str = "warning"
    allow_svg: bool = False
    # Cost before work (origin.imaging.preflight): what makes a master far dearer than its size.
    max_jpeg_scans: int = 100  # progressive JPEG scans (encoders write 3-12)
    max_metadata_bytes: int = 4 * 1024 * 1024  # one text/XMP/profile chunk, inflated
    max_svg_filters: int = 16  # filter primitives (<feGaussianBlur> ...) in an SVG
    max_svg_elements: int = 20_000

    def __post_init__(self) -> None:
        if self.fail_on not in FAIL_ON:
            raise ValueError(f"fail_on must be one of {', '.join(FAIL_ON)}, got {self.fail_on!r}")
        if self.max_master_pixels <= 0 or self.max_output_pixels <= 0:
            raise ValueError("max_master_pixels and max_output_pixels must be positive")
        for name in ("max_jpeg_scans", "max_metadata_bytes", "max_svg_filters", "max_svg_elements"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be 1 or more")
        if not 64 <= self.max_output_side <= 16384:
            raise ValueError(f"max_output_side must be 64..16384, got {self.max_output_side}")


def clip_crop(crop: Crop | None, width: int, height: int) -> Crop:
    """The part of a width x height master a crop keeps (the whole master for None), or a 400."""
    if crop is None:
        return Crop(0, 0, width, height)
    x0, y0 = min(crop.x, width), min(crop.y, height)
    x1, y1 = min(crop.x + crop.w, width), min(crop.y + crop.h, height)
    if x1 <= x0 or y1 <= y0:
        raise Problem(400, f"crop {crop} lies outside the {width}x{height} master", {"option": "crop"})
    return Crop(x0, y0, x1 - x0, y1 - y0)


def device_size(w: int | None, h: int | None, dpr: float, limits: Limits) -> tuple[float | None, float | None]:
    """CSS size x dpr, scaled down as a whole when a side is over `max_output_side`."""
    dw = w * dpr if w else None
    dh = h * dpr if h else None
    longest = max(dw or 0, dh or 0)
    if longest > limits.max_output_side:
        f = limits.max_output_side / longest
        dw = dw * f if dw else None
        dh = dh * f if dh else None
    return dw, dh


def check_output(width: int, height: int, limits: Limits) -> None:
    """A 422 when an output of this size is over `max_output_pixels`."""
    if width * height > limits.max_output_pixels:
        raise Problem(422, f"output would be {width}x{height}, over the limit of {limits.max_output_pixels / 1e6:g} MP")


def output_height(width: int, aspect: Fraction) -> int:
    """The height the server makes for `width` at `aspect` (width / height) when only `w` is given."""
    return max(1, round(width / aspect))


def largest_width(aspect: Fraction, limits: Limits) -> int:
    """The widest output at `aspect` that a URL can ask for and the server will render: both sides
    within the grammar's MAX_SIZE and `max_output_side`, the pixels within `max_output_pixels`."""
    side = min(MAX_SIZE, limits.max_output_side)
    width = min(side, math.floor(side * aspect), math.isqrt(int(limits.max_output_pixels * aspect)))
    # The height is rounded: step down past any rounding that would cross a limit.
    while width > 1 and (
        output_height(width, aspect) > side or width * output_height(width, aspect) > limits.max_output_pixels
    ):
        width -= 1
    return max(1, width)


def own_size_width(width: int, height: int, limits: Limits, wanted: int | None = None) -> int | None:
    """The `w` of a master "at its own size" (image sitemaps link it; closed world always allows
    it): None when the server renders it whole, else the widest it will render (or `wanted`)."""
    fits = largest_width(Fraction(width, height), limits)
    out = min(wanted or width, width, fits)
    return None if out >= width else out
