"""Plan a rendition: a pure function from options + master header to what the pipeline will do.

The plan fixes every number before a pixel is touched: how big libvips should load the master
(its `thumbnail` does shrink-on-load, EXIF rotation and colour conversion in one go, never
enlarging), which region of that to keep, what size to resize the region to, and the output format
and quality. Tests check plans; the pipeline only carries them out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from edge.options import RenditionOptions
from edge.problems import Problem
from origin.limits import Limits
from origin.probe import MasterHeader

DEFAULT_QUALITY = {"avif": 50, "webp": 80, "jpeg": 80, "png": 100, "gif": 100}

# Where the kept window sits along each axis for a compass gravity (0 = start, 1 = end).
COMPASS = {
    "center": (0.5, 0.5),
    "n": (0.5, 0.0),
    "s": (0.5, 1.0),
    "e": (1.0, 0.5),
    "w": (0.0, 0.5),
    "ne": (1.0, 0.0),
    "nw": (0.0, 0.0),
    "se": (1.0, 1.0),
    "sw": (0.0, 1.0),
}


@dataclass(frozen=True)
class SuperResPolicy:
    """When a model may invent the pixels a high-DPR request needs (else Lanczos3)."""

    enabled: bool = True
    min_dpr: float = 2.0  # only for requests at this DPR or above
    min_factor: float = 1.15  # only when the output needs this many times the master's pixels per side


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    w: int
    h: int


@dataclass(frozen=True)
class Plan:
    load_w: int  # size `thumbnail` makes of the whole (oriented) master: never above its size
    load_h: int
    region: Box | None  # part of the loaded image to keep; None keeps it all
    resize_w: int  # size the region is resized to (equal to the region's size: no resize)
    resize_h: int
    smart_crop: bool  # then crop to the target by libvips' attention measure
    target_w: int
    target_h: int
    format: str
    quality: int
    animated: bool
    flatten: bool  # alpha into a format without it: flatten onto white
    fail_on: str
    to_srgb: bool = False  # convert from the embedded profile (P3, Adobe RGB, CMYK...) to sRGB
    superres_scale: int = 0  # 2 or 4: upscale the region with a model before the final resize

    @property
    def upscale(self) -> str:
        """'none', or the kernel that makes pixels the master does not have."""
        region_w = self.region.w if self.region else self.load_w
        region_h = self.region.h if self.region else self.load_h
        return "lanczos" if self.resize_w > region_w or self.resize_h > region_h else "none"


def _source_box(opts: RenditionOptions, header: MasterHeader) -> Box:
    if opts.crop is None:
        return Box(0, 0, header.width, header.height)
    c = opts.crop
    x0, y0 = min(c.x, header.width), min(c.y, header.height)
    x1, y1 = min(c.x + c.w, header.width), min(c.y + c.h, header.height)
    if x1 <= x0 or y1 <= y0:
        raise Problem(
            400,
            f"crop {c} lies outside the {header.width}x{header.height} master",
            {"option": "crop"},
        )
    return Box(x0, y0, x1 - x0, y1 - y0)


def _device_size(opts: RenditionOptions, limits: Limits) -> tuple[float | None, float | None]:
    """CSS size x dpr, scaled down as a whole when a side is over the output limit."""
    dw = opts.w * opts.dpr if opts.w else None
    dh = opts.h * opts.dpr if opts.h else None
    longest = max(dw or 0, dh or 0)
    if longest > limits.max_output_side:
        f = limits.max_output_side / longest
        dw = dw * f if dw else None
        dh = dh * f if dh else None
    return dw, dh


def _window(box: Box, ww: float, wh: float, opts: RenditionOptions) -> tuple[float, float, float, float]:
    """Place a ww x wh window inside box by gravity (compass point or focal point)."""
    if opts.g == "focal":
        cx, cy = box.x + (opts.fx or 0.5) * box.w, box.y + (opts.fy or 0.5) * box.h
        x = min(max(cx - ww / 2, box.x), box.x + box.w - ww)
        y = min(max(cy - wh / 2, box.y), box.y + box.h - wh)
        return x, y, ww, wh
    ax, ay = COMPASS.get(opts.g, COMPASS["center"])
    return box.x + (box.w - ww) * ax, box.y + (box.h - wh) * ay, ww, wh


def _px(value: float) -> int:
    return max(1, round(value))


def superres_scale(opts: RenditionOptions, factor: float, policy: SuperResPolicy | None) -> int:
    """2 or 4 when a model should make the missing pixels, 0 for Lanczos (or no enlargement)."""
    if policy is None or not policy.enabled or opts.dpr < policy.min_dpr or factor <= policy.min_factor:
        return 0
    return 2 if factor <= 2 else 4


def plan_rendition(
    opts: RenditionOptions,
    header: MasterHeader,
    fmt: str,
    limits: Limits,
    quality: dict[str, int] | None = None,
    superres: SuperResPolicy | None = None,
) -> Plan:
    box = _source_box(opts, header)
    dw, dh = _device_size(opts, limits)
    animated = header.animated and fmt in ("webp", "gif")
    gravity_smart = opts.g == "smart" and not animated  # one crop for all frames, not one each
    smart = False

    # Scale per axis (source box -> output), the output size, and the window of the box to keep.
    window = (float(box.x), float(box.y), float(box.w), float(box.h))
    if dw is None and dh is None:
        sx = sy = 1.0
        out_w, out_h = box.w, box.h
    elif opts.fit == "fill" and dw and dh:
        sx, sy = dw / box.w, dh / box.h
        out_w, out_h = _px(dw), _px(dh)
    else:
        if dw and dh:
            ratios = (dw / box.w, dh / box.h)
            s = max(ratios) if opts.fit in ("cover", "outside") else min(ratios)
        else:
            s = dw / box.w if dw else dh / box.h  # type: ignore[operator]
        if opts.fit == "inside":
            s = min(s, 1.0)
        sx = sy = s
        out_w, out_h = _px(box.w * s), _px(box.h * s)
        if opts.fit == "cover" and dw and dh:
            if gravity_smart:
                smart = True  # resize the whole box to cover, then let libvips choose the crop
            else:
                window = _window(box, min(dw / s, box.w), min(dh / s, box.h), opts)
                out_w, out_h = _px(dw), _px(dh)

    target_w, target_h = (_px(dw), _px(dh)) if smart else (out_w, out_h)  # type: ignore[arg-type]
    if target_w * target_h > limits.max_output_pixels:
        raise Problem(
            422,
            f"output would be {target_w}x{target_h}, over the limit of {limits.max_output_pixels / 1e6:g} MP",
        )

    # Shrinking happens while loading; enlarging (never done by the load) happens after the crop.
    lsx, lsy = min(sx, 1.0), min(sy, 1.0)
    load_w, load_h = _px(header.width * lsx), _px(header.height * lsy)
    wx, wy, ww, wh = window
    rw, rh = min(_px(ww * lsx), load_w), min(_px(wh * lsy), load_h)
    if sx <= 1.0 and sy <= 1.0:
        rw, rh = min(out_w, load_w), min(out_h, load_h)  # exact: no resampling after the load
    rx = min(max(0, math.floor(wx * lsx + 1e-6)), load_w - rw)
    ry = min(max(0, math.floor(wy * lsy + 1e-6)), load_h - rh)
    region = None if (rx, ry, rw, rh) == (0, 0, load_w, load_h) else Box(rx, ry, rw, rh)

    q = opts.q or (quality or DEFAULT_QUALITY).get(fmt, DEFAULT_QUALITY.get(fmt, 80))
    enlarge = max(out_w / rw, out_h / rh)  # how many times the region's pixels per side
    return Plan(
        load_w=load_w,
        load_h=load_h,
        region=region,
        resize_w=out_w,
        resize_h=out_h,
        smart_crop=smart,
        target_w=target_w,
        target_h=target_h,
        format=fmt,
        quality=q,
        animated=animated,
        flatten=header.has_alpha and fmt == "jpeg",
        fail_on=limits.fail_on,
        to_srgb=header.has_profile,
        superres_scale=0 if animated else superres_scale(opts, enlarge, superres),
    )
