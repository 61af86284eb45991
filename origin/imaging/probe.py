"""Read a master's header (never its pixels) and refuse what the limits or policy do not allow."""

from __future__ import annotations

import pyvips

from origin.core.errors import Problem
from origin.core.limits import Limits
from origin.core.master import MasterHeader
from origin.imaging.preflight import preflight

LOADERS = {
    "jpegload": "jpeg",
    "pngload": "png",
    "webpload": "webp",
    "gifload": "gif",
    "heifload": "heif",
    "tiffload": "tiff",
    "svgload": "svg",
}


def first_line(error: pyvips.Error) -> str:
    lines = [ln.strip() for ln in f"{error.message}\n{error.detail or ''}".splitlines() if ln.strip()]
    specific = [ln for ln in lines if not ln.startswith("unable to call")]
    return (specific or lines or ["unknown libvips error"])[-1][:200]


def from_memory(data: bytes, **options: object) -> pyvips.Image:
    """The image in `data`, loaded through a source over the bytes: pyvips copies a buffer
    (megabytes for a master, holding the GIL). `options` go to the loader."""
    return pyvips.Image.new_from_source(pyvips.Source.new_from_memory(data), "", **options)


def probe(data: bytes, limits: Limits) -> MasterHeader:
    if not data:
        raise Problem(415, "master is empty (0 bytes)")
    preflight(data, limits)  # 422 for what would cost far more to open than its size says
    try:
        image = from_memory(data, access="sequential")
        loader = image.get("vips-loader")
    except pyvips.Error as e:
        raise Problem(415, f"master is not a decodable image: {first_line(e)}") from None
    fmt = LOADERS.get(loader.removesuffix("_buffer").removesuffix("_source"))
    if fmt is None:
        raise Problem(415, f"master format {loader!r} is not supported")
    if fmt == "svg" and not limits.allow_svg:
        raise Problem(415, "SVG masters are disabled (limits.allow_svg)")
    fields = set(image.get_fields())
    orientation = image.get("orientation") if "orientation" in fields else 1
    frames = image.get("n-pages") if "n-pages" in fields else 1
    width, height = image.width, image.height
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    pixels = width * height
    if pixels > limits.max_master_pixels:
        raise Problem(
            422,
            f"master is {width}x{height} = {pixels / 1e6:.1f} MP, over the limit of "
            f"{limits.max_master_pixels / 1e6:g} MP",
        )
    header = MasterHeader(
        fmt,
        width,
        height,
        image.bands,
        bool(image.hasalpha()),
        frames,
        orientation,
        has_profile="icc-profile-data" in fields,
    )
    if header.animated and frames > limits.max_frames:
        raise Problem(422, f"master has {frames} frames, over the limit of {limits.max_frames}")
    if header.animated and pixels * frames > limits.max_master_pixels * 4:
        raise Problem(422, f"animation is {frames} frames of {width}x{height}: too many pixels in all")
    return header
