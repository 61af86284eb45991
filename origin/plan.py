"""Plan a rendition: a pure function from options + master header to what the pipeline will do.

The plan fixes every number before a pixel is touched: how big libvips should load the master
(its `thumbnail` does shrink-on-load, EXIF rotation and colour conversion in one go, never
enlarging), which region of that to keep, what size to resize the region to, and the output format
and quality. Tests check plans; the pipeline only carries them out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from origin.core.formats import FORMATS, FormatSettings
from origin.core.limits import Limits, check_output, clip_crop, device_size
from origin.core.master import MasterHeader
from origin.core.request import Crop, RenditionOptions
from origin.superres.policy import SuperResPolicy

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


# A JPEG decoder shrinks by 2, 4 or 8 as it decodes (DCT scaling): the cheapest cut in a first
# touch, where Huffman-decoding the master costs the rest. libvips' thumbnail takes it only while 2x
# the output is left for its Lanczos (a 4000 px master for 800 px decodes at 2000); sharp and PIL's
# draft leave none. At 1.25x, over the corpus and the peers' photos at 320 and 800 px, SSIMULACRA2 of
# the JPEG q80 rendition moved by -0.2 to -0.3 (worst -1.2) for 1 % fewer bytes, and the decode cost
# 6 CPU-ms less of 53 at 800 px, 5 of 40 at 320 px; with no margin the worst case lost 10 points.
JPEG_SHRINK_MARGIN = 1.25


def jpeg_shrink(master: tuple[int, int] | None, w: int, h: int) -> int | None:
    """The decoder's shrink (2, 4 or 8) for a JPEG master of size `master` loaded at w x h, when it
    is larger than the one libvips' thumbnail would take by itself; None when thumbnail's stands."""
    if master is None:
        return None
    scale = min(master[0] / w, master[1] / h)
    ours = next((n for n in (8, 4, 2) if scale >= n * JPEG_SHRINK_MARGIN), 1)
    theirs = next((n for n in (8, 4, 2) if scale >= 2 * n), 1)  # libvips' vips_thumbnail_find_jpegshrink
    return ours if ours > theirs else None


@dataclass(frozen=True)
class Plan:
    load_w: int  # size `thumbnail` makes of the whole (oriented) master: never above its size
    load_h: int
    region: Crop | None  # part of the loaded image to keep; None keeps it all
    resize_w: int  # size the region is resized to (equal to the region's size: no resize)
    resize_h: int
    smart_crop: bool  # then crop to the target by libvips' attention measure
    target_w: int
    target_h: int
    format: str
    quality: int  # the encoder quality; with a target, the highest the search may choose
    animated: bool
    flatten: bool  # alpha into a format without it: flatten onto white
    fail_on: str
    to_srgb: bool = False  # convert from the embedded profile (P3, Adobe RGB, CMYK...) to sRGB
    superres_scale: int = 0  # 2 or 4: upscale the region with a model before the final resize
    # Start from the master decoded once at this size (shared by its other renditions) rather than
    # decoding it for this rendition alone; None: shrink-on-load straight to load_w x load_h.
    decode_at: tuple[int, int] | None = None
    quality_target: float | None = None  # q=auto: the SSIMULACRA2 the encode should reach
    max_bytes: int | None = None  # the body may be at most this long
    jpeg_size: tuple[int, int] | None = None  # a JPEG master's size: its decoder may shrink (jpeg_shrink)

    @property
    def upscale(self) -> str:
        """'none', or the kernel that makes pixels the master does not have."""
        region_w = self.region.w if self.region else self.load_w
        region_h = self.region.h if self.region else self.load_h
        return "lanczos" if self.resize_w > region_w or self.resize_h > region_h else "none"


def _window(box: Crop, ww: float, wh: float, opts: RenditionOptions) -> tuple[float, float, float, float]:
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


def plan_rendition(
    opts: RenditionOptions,
    header: MasterHeader,
    fmt: str,
    limits: Limits,
    formats: FormatSettings | None = None,
    superres: SuperResPolicy | None = None,
    enhance: str = "auto",
) -> Plan:
    """What the pipeline will do for these options on this master, in format `fmt`. Raises a 400
    Problem for a crop outside the master, a 422 for an output over the pixel limit. `superres`
    None (or inactive) enlarges with Lanczos only; `enhance` is what the master's rules say."""
    box = clip_crop(opts.crop, header.width, header.height)
    dw, dh = device_size(opts.w, opts.h, opts.dpr, limits)
    animated = header.animated and FORMATS[fmt].animation
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
    check_output(target_w, target_h, limits)

    # Shrinking happens while loading; enlarging (never done by the load) happens after the crop.
    lsx, lsy = min(sx, 1.0), min(sy, 1.0)
    load_w, load_h = _px(header.width * lsx), _px(header.height * lsy)
    wx, wy, ww, wh = window
    rw, rh = min(_px(ww * lsx), load_w), min(_px(wh * lsy), load_h)
    if sx <= 1.0 and sy <= 1.0:
        rw, rh = min(out_w, load_w), min(out_h, load_h)  # exact: no resampling after the load
    rx = min(max(0, math.floor(wx * lsx + 1e-6)), load_w - rw)
    ry = min(max(0, math.floor(wy * lsy + 1e-6)), load_h - rh)
    region = None if (rx, ry, rw, rh) == (0, 0, load_w, load_h) else Crop(rx, ry, rw, rh)

    quality = (formats or FormatSettings()).choose(fmt, opts.q, opts.dpr)
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
        quality=quality.quality,
        quality_target=quality.target,
        max_bytes=opts.max_bytes,
        animated=animated,
        flatten=header.has_alpha and not FORMATS[fmt].alpha,
        fail_on=limits.fail_on,
        to_srgb=header.has_profile,
        jpeg_size=(header.width, header.height) if header.format == "jpeg" and not animated else None,
        superres_scale=0 if animated or superres is None else superres.scale(enlarge, enhance, min(rw, rh)),
    )


# A rendition starts from its master's shared decode only when that is at most this many times its
# own load width: resizing further from it strays from what shrink-on-load would make (measured on
# the corpus: mean difference up to 0.54/255 at 3.2x, 1.05 at 6.4x); a small rendition's own
# shrink-on-load decode is cheap anyway.
SHARE_WITHIN = 4


def with_shared_decode(plan: Plan, decode: tuple[int, int] | None) -> Plan:
    """`plan` made from the master's decode at `decode` (shared by its declared renditions) when
    that comes close to what its own load would make; else `plan` as it is."""
    if decode is None or plan.animated:
        return plan
    w, h = decode
    if not (plan.load_w <= w <= SHARE_WITHIN * plan.load_w and h >= plan.load_h):
        return plan
    # Attention moves its window on small differences of pixels (1.8/255 on the corpus's flower
    # at 150 px): a smart crop shares a decode only when the decoder shrinks the master alike.
    if plan.smart_crop and jpeg_shrink(plan.jpeg_size, w, h) != jpeg_shrink(plan.jpeg_size, plan.load_w, plan.load_h):
        return plan
    return replace(plan, decode_at=decode)
