"""Carry a Plan out with libvips: the ordered list of steps in STEPS, then `encode`.

Each step is a plain function over `RenderState`. Frame-wise steps see one frame at a time, so
animated masters (frames stacked vertically, libvips' convention) go through the same steps.
Decoding is lazy: the pixels flow when `materialise` runs, with `fail_on` from the plan, so a
damaged master raises instead of coming out grey.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pyvips

from origin.core.concurrency import CancelToken
from origin.core.errors import Cancelled, Problem
from origin.core.formats import EncodeSettings
from origin.core.rendition import Rendition, made_by_model
from origin.core.software import SOFTWARE
from origin.imaging.encode import encode
from origin.imaging.intermediates import IntermediateCache
from origin.imaging.metadata import carry_metadata, declare_enhanced, keep_rights_only, strip_all
from origin.imaging.probe import first_line, from_memory
from origin.imaging.quality import auto_quality, fit_bytes
from origin.imaging.resample import resize_exact
from origin.plan import Plan, jpeg_shrink
from origin.superres.runtime import Upscaler


class Timings(dict[str, float]):
    """Seconds per phase (render: decode + resize; search: choosing the quality; encode), and a
    description of some (`notes`: what the quality search chose), for Server-Timing."""

    def __init__(self, *args: object, notes: dict[str, str] | None = None, **kwargs: float):
        super().__init__(*args, **kwargs)
        self.notes: dict[str, str] = dict(notes or {})


@dataclass(frozen=True)
class RenderTools:
    """What a render may use besides the master: encoder settings, a super-resolution model."""

    encode: EncodeSettings
    upscaler: Upscaler | None = None
    intermediates: IntermediateCache | None = None  # upscaled regions
    decoded: IntermediateCache | None = None  # masters decoded once for all their renditions
    metadata: bool = True  # keep rights and source type, declare enhancement ([provenance] metadata)
    thorough: bool = False  # q=auto scores its trials on the whole image (the upgrade), not a sample


@dataclass
class RenderState:
    plan: Plan
    image: pyvips.Image
    tools: RenderTools
    source_id: str = ""  # the master's version: names upscaled intermediates
    token: CancelToken | None = None
    keep: str = "none"  # which metadata blocks the saver writes (see origin.metadata)
    upscale: str = "none"  # what made missing pixels: none, lanczos, or model@version
    timings: Timings = field(default_factory=Timings)


def load(data: bytes, plan: Plan, tools: RenderTools | None = None, source_id: str = "") -> pyvips.Image:
    """The master at load_w x load_h, oriented and in sRGB: from its decode shared with the master's
    other renditions when the plan says so, else decoded for this rendition alone."""
    decoded = tools.decoded if tools is not None else None
    if plan.decode_at is None or decoded is None:
        return _thumbnail(data, plan, plan.load_w, plan.load_h)
    w, h = plan.decode_at
    key = f"{source_id}:{w}x{h}:{plan.fail_on}:{int(plan.to_srgb)}"
    base = decoded.get_or_make(key, lambda: _thumbnail(data, plan, w, h).copy_memory())
    return resize_exact(base, plan.load_w, plan.load_h)


def _thumbnail(data: bytes, plan: Plan, width: int, height: int) -> pyvips.Image:
    """Shrink-on-load, EXIF rotation and conversion to sRGB, by libvips' thumbnail."""
    options = f"fail_on={plan.fail_on}" + (",n=-1" if plan.animated else "")
    # thumbnail keeps the input's colour space unless told to export: without this, P3 and
    # Adobe RGB pixels would go out untagged and look dull. Untagged masters are sRGB already.
    colour = {"export_profile": "srgb"} if plan.to_srgb else {}
    shrink = jpeg_shrink(plan.jpeg_size, width, height)
    if shrink is not None:  # the decoder shrinks closer to the output than thumbnail would let it
        loaded = from_memory(data, shrink=shrink, fail_on=plan.fail_on, access="sequential")
        return loaded.thumbnail_image(width, height=height, size="force", **colour)
    return pyvips.Image.thumbnail_buffer(data, width, height=height, size="force", option_string=options, **colour)


def extract_region(image: pyvips.Image, plan: Plan) -> pyvips.Image:
    r = plan.region
    return image if r is None else image.extract_area(r.x, r.y, r.w, r.h)


def resize(image: pyvips.Image, plan: Plan) -> pyvips.Image:
    """Resize to exactly resize_w x resize_h (Lanczos3 both ways, pixel centres aligned)."""
    return resize_exact(image, plan.resize_w, plan.resize_h)


def smart_crop(image: pyvips.Image, plan: Plan) -> pyvips.Image:
    if not plan.smart_crop:
        return image
    # Attention scans the whole image, which a sequential (streaming) load cannot give twice;
    # at this point the image is already at output scale, so holding it in memory is cheap.
    return image.copy_memory().smartcrop(plan.target_w, plan.target_h, interesting="attention")


FRAME_STEPS: list[Callable[[pyvips.Image, Plan], pyvips.Image]] = [extract_region, resize, smart_crop]


def super_resolve(state: RenderState) -> RenderState:
    """When the plan asks for it: the region through the model (x2/x4), then down to the exact size.

    Runs instead of the plain resize for still images; the upscaled region is kept so other widths
    and formats of this master reuse it. Without a model for the scale, Lanczos does the work.
    """
    plan, tools = state.plan, state.tools
    upscaler = tools.upscaler
    if not plan.superres_scale or upscaler is None or not upscaler.can_upscale(plan.superres_scale):
        return per_frame(state)
    region = extract_region(state.image, plan)
    label = upscaler.label(plan.superres_scale)
    key = f"{state.source_id}:{plan.load_w}x{plan.load_h}:{plan.region}:{plan.superres_scale}:{label}"
    upscaled = tools.intermediates.get(key) if tools.intermediates else None
    if upscaled is None:
        token = state.token
        upscaled = upscaler.upscale(
            region.copy_memory(),
            plan.superres_scale,
            cancelled=(lambda: token.cancelled) if token else None,
            deadline=token.deadline if token else None,
        ).copy_memory()
        if tools.intermediates:
            tools.intermediates.put(key, upscaled)
    # The model's pixels carry no fields: the master's rights come along, as on every other path.
    made = carry_metadata(state.image, resize_exact(upscaled, plan.resize_w, plan.resize_h))
    state.image = smart_crop(made, plan)
    state.upscale = label
    return state


def per_frame(state: RenderState) -> RenderState:
    """Apply FRAME_STEPS to each frame, then stack the frames again."""
    image, plan = state.image, state.plan
    if plan.upscale != "none":
        state.upscale = "lanczos"

    def run(frame: pyvips.Image) -> pyvips.Image:
        for step in FRAME_STEPS:
            frame = step(frame, plan)
        return frame

    if not plan.animated:
        state.image = run(image)
        return state
    page_h = image.get("page-height") if "page-height" in image.get_fields() else image.height
    frames = [run(image.extract_area(0, y, image.width, page_h)) for y in range(0, image.height, page_h)]
    joined = pyvips.Image.arrayjoin(frames, across=1)
    state.image = joined.copy()
    state.image.set_type(pyvips.GValue.gint_type, "page-height", frames[0].height)
    return state


def to_output_colour(state: RenderState) -> RenderState:
    """8-bit sRGB (or 8-bit grey), alpha flattened onto white when the format has none."""
    image = state.image
    if image.interpretation in ("grey16", "b-w") or image.bands in (1, 2):
        image = image.colourspace("b-w")
    elif image.interpretation != "srgb":
        image = image.colourspace("srgb")
    if image.format != "uchar":
        image = image.cast("uchar")
    if state.plan.flatten and image.hasalpha():
        image = image.flatten(background=[255] * (image.bands - 1))
    state.image = image
    return state


def strip_metadata(state: RenderState) -> RenderState:
    if not state.tools.metadata:
        state.image, state.keep = strip_all(state.image)
        return state
    state.image, state.keep = keep_rights_only(state.image)
    if made_by_model(state.upscale):  # say so (IPTC, XMP history)
        agent = f"{SOFTWARE} {state.upscale}"
        done = f"super-resolution x{state.plan.superres_scale} to {state.image.width}x{state.image.height}"
        state.image, state.keep = declare_enhanced(state.image, state.keep, agent, done)
    return state


def materialise(state: RenderState, token: CancelToken | None) -> RenderState:
    """Decode and resize now, into memory, so render and encode times can be told apart. A cancel
    sets libvips' kill flag on the image at once; libvips checks it between tiles. (A progress
    callback that checked the token per tile cost 3.5 CPU-ms per 800w first touch under load:
    each call takes the GIL from a libvips thread.)"""
    image = state.image
    forget = token.on_cancel(lambda: image.set_kill(True)) if token is not None else None
    try:
        state.image = image.copy_memory()
    finally:
        if forget is not None:
            forget()
    return state


STEPS: list[Callable[[RenderState], RenderState]] = [super_resolve, to_output_colour, strip_metadata]


def render(
    data: bytes,
    plan: Plan,
    tools: RenderTools | EncodeSettings,
    token: CancelToken | None = None,
    source_id: str = "",
) -> tuple[Rendition, Timings]:
    """Run the whole pipeline on a master's bytes. Raises Problem (415 for damaged data) or Cancelled.

    Cancellation stops decoding and resizing between tiles. An encode already under way runs to
    its end (libheif and the JPEG/WebP encoders cannot be interrupted): its cost is what a budget
    overrun can still spend.
    """
    if isinstance(tools, EncodeSettings):
        tools = RenderTools(tools)
    started = time.perf_counter()
    try:
        state = RenderState(plan, load(data, plan, tools, source_id), tools, source_id, token)
        for step in STEPS:
            state = step(state)
        state = materialise(state, token)
        state.timings["render"] = time.perf_counter() - started
    except pyvips.Error as e:
        if token is not None and token.cancelled:
            raise Cancelled() from None
        raise Problem(415, f"master could not be decoded (damaged or truncated?): {first_line(e)}") from None
    if token is not None and token.cancelled:
        raise Cancelled()
    try:
        body = encode_planned(state)
    except pyvips.Error as e:
        raise Problem(422, f"rendition could not be encoded as {plan.format}: {first_line(e)}") from None
    return Rendition(body, plan.format, plan.target_w, plan.target_h, state.upscale), state.timings


def encode_planned(state: RenderState) -> bytes:
    """Encode at the plan's quality: fixed, or searched for its SSIMULACRA2 target (q=auto), then
    lowered until the body fits `max_bytes` when the plan has one (a 422 Problem when it cannot)."""
    plan, settings, quality = state.plan, state.tools.encode, state.plan.quality
    started = time.perf_counter()
    if plan.quality_target is not None and not plan.animated:
        search = auto_quality(
            state.image,
            plan.format,
            plan.quality_target,
            settings,
            plan.quality,
            whole=state.tools.thorough,
            enlarged=plan.upscale != "none",
        )
        quality, settings = search.quality, search.settings
        state.timings["search"] = time.perf_counter() - started
        state.timings.notes["search"] = f"target={plan.quality_target:g} {search.describe()}"
        started = time.perf_counter()
    if plan.max_bytes is None:
        body = encode(state.image, plan.format, quality, settings, state.keep)
    else:
        body, fit = fit_bytes(state.image, plan.format, quality, plan.max_bytes, settings, state.keep)
        if fit.encodes > 1:
            state.timings.notes["encode"] = f"max_bytes={plan.max_bytes} q={fit.quality} encodes={fit.encodes}"
    state.timings["encode"] = time.perf_counter() - started
    return body
