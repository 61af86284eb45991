"""Plan a rule's renditions for one master: candidate widths, heights, `sizes`, sources. Pure.

Convention: every candidate URL asks for device pixels at dpr 1 (`w=1280`, never `w=640&dpr=2`)
and is described in the srcset by that width (`1280w`). One device width is then one URL, whatever
CSS width and DPR led to it, so caches hold one entry per size, and the `w` descriptor is exactly
the rendition's pixel width, which is what the browser needs to pick one.

Candidate widths: for each slot (the image's CSS width from a breakpoint up), its width at every
breakpoint of the viewport range where it applies and at both ends, times each DPR (DPRs above 2
only on viewports up to
`settings.high_dpr_max_viewport`), rounded up; then capped at what the master can give (its width,
or the width its crop/aspect leaves, times the policy's width factor where a model may enlarge it),
and at the largest output the server's limits allow, deduplicated, and merged: a candidate within
`settings.merge_step` (10 %) of the next larger kept one is dropped, because the larger one serves
it at most that much heavier.

Sizes come from origin.core.limits and the enlargement from origin.superres.policy, both with the
server's configured values (a `Capacity`), so every URL planned here is one the renderer makes at
exactly the width it is described with.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction

from origin.core.formats import FORMATS, fallback, keeps
from origin.core.limits import Limits, clip_crop, largest_width, output_height
from origin.core.master import MasterHeader
from origin.core.request import RenditionOptions
from origin.superres.policy import SuperResPolicy
from rules.model import Framing, Rule, Settings, Slot


@dataclass(frozen=True)
class Capacity:
    """What the server renders: its output limits, and how far a model may enlarge a master."""

    limits: Limits
    superres: SuperResPolicy


# --- widths ------------------------------------------------------------------------------------


def slot_ranges(sizes: Sequence[Slot], lo: int, hi: int) -> list[tuple[Slot, int, int]]:
    """Each slot with the viewports [a, b] where it applies, clipped to [lo, hi]. `b` is the next
    slot's breakpoint (where this slot stops), so widths computed there are never a pixel short."""
    out = []
    for i, slot in enumerate(sizes):
        end = sizes[i + 1].min_width if i + 1 < len(sizes) else hi
        a, b = max(slot.min_width, lo), min(end, hi)
        if a < b or (a == b == lo == hi):
            out.append((slot, a, b))
    return out


def device_widths(
    sizes: Sequence[Slot],
    dprs: Iterable[float],
    breakpoints: Iterable[int],
    lo: int,
    hi: int,
    high_dpr_max_viewport: int,
) -> list[int]:
    """Slot width x DPR at every breakpoint in [lo, hi] and at both ends, rounded up to whole pixels."""
    dprs = sorted(dprs)
    breakpoints = sorted(breakpoints)
    widths: set[int] = set()
    for dpr in dprs:
        top = hi if dpr <= 2 else min(hi, high_dpr_max_viewport)
        for slot, a, b in slot_ranges(sizes, lo, top):
            for viewport in (a, *(bp for bp in breakpoints if a < bp < b), b):
                widths.add(max(1, math.ceil(slot.length.px(viewport) * dpr - 1e-6)))
    if not widths and dprs:  # only high DPRs on a wide range: keep the lowest one there
        return device_widths(sizes, dprs[:1], breakpoints, lo, hi, hi)
    return sorted(widths)


def merge(widths: Iterable[int], step: float) -> list[int]:
    """Drop each width that the next larger kept width exceeds by less than `step` (0.10 = 10 %).

    Walking down from the largest keeps every remaining pair at least `step` apart, and every
    dropped width is served by a kept one less than `step` larger: never a blurrier image.
    """
    kept: list[int] = []
    for w in sorted(set(widths), reverse=True):
        if not kept or kept[-1] >= w * (1 + step):
            kept.append(w)
    return kept[::-1]


def candidate_widths(
    sizes: Sequence[Slot],
    dprs: Iterable[float],
    breakpoints: Iterable[int],
    lo: int,
    hi: int,
    settings: Settings,
    cap: int,
) -> list[int]:
    """Candidate device widths for viewports in [lo, hi]: computed, capped, deduplicated, merged."""
    widths = device_widths(sizes, dprs, breakpoints, lo, hi, settings.high_dpr_max_viewport)
    return capped(widths, cap, settings.merge_step)


def capped(widths: Iterable[int], cap: int, step: float) -> list[int]:
    """Device widths no wider than `cap`, deduplicated and merged: the candidates a master gives."""
    return merge((min(w, cap) for w in widths), step)


def output_aspect(framing: Framing, header: MasterHeader) -> Fraction:
    """Width / height of every rendition of this framing: the rule's aspect, else the source's."""
    if framing.aspect is not None:
        return framing.aspect
    box = clip_crop(framing.crop, header.width, header.height)
    return Fraction(box.w, box.h)


def width_cap(framing: Framing, header: MasterHeader, enhance: str, settings: Settings, capacity: Capacity) -> int:
    """The widest candidate: what the master gives at this aspect (times the policy's width factor
    where a model may make the pixels), within `settings.max_width` and the server's output limits."""
    box = clip_crop(framing.crop, header.width, header.height)
    aspect = output_aspect(framing, header)
    real = min(box.w, math.floor(box.h * aspect)) if framing.aspect is not None else box.w
    cap = real * capacity.superres.width_factor(enhance)
    return max(1, min(cap, settings.max_width, largest_width(aspect, capacity.limits)))


# --- sizes -------------------------------------------------------------------------------------


def sizes_attribute(sizes: Sequence[Slot]) -> str:
    """`(min-width: 1024px) 33vw, (min-width: 640px) 50vw, 100vw`: largest breakpoint first,
    a slot equal to the one below it left out."""
    kept: list[Slot] = []
    for slot in sizes:
        if not kept or slot.length.text != kept[-1].length.text:
            kept.append(slot)
    parts = [f"(min-width: {s.min_width}px) {s.length}" for s in reversed(kept[1:])]
    return ", ".join([*parts, str(kept[0].length)])


def media_query(lo: int, until: int | None) -> str | None:
    """The media query for viewports from lo up to (not including) until; None for all."""
    parts = []
    if lo > 0:
        parts.append(f"(min-width: {lo}px)")
    if until is not None:
        parts.append(f"(max-width: {until - 0.02:g}px)")
    return " and ".join(parts) or None


# --- the plan ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedCandidate:
    width: int  # device pixels: the `w` descriptor
    height: int
    options: RenditionOptions  # without `v`: the markup adds the version when it signs


@dataclass(frozen=True)
class SourcePlan:
    """One srcset: a format and a framing over a viewport range."""

    format: str  # "auto" (negotiated from Accept) or an explicit format in every URL
    min_viewport: int  # from this breakpoint up (0: from the smallest screen)
    until: int | None  # the next art-direction breakpoint, where this range stops (None: no end)
    candidates: tuple[PlannedCandidate, ...]  # ascending
    width: int  # the `width`/`height` attributes: the slot's widest CSS size, at the output aspect
    height: int
    fallback: PlannedCandidate  # the `src`: the smallest candidate at least `width` wide
    framing: Framing = Framing()  # how this range cuts the master

    @property
    def media(self) -> str | None:
        """For `<source media>`: the lower bound only (sources are tried in order, widest first)."""
        return media_query(self.min_viewport, None)

    @property
    def preload_media(self) -> str | None:
        """For a preload, which has no order to rely on: both bounds."""
        return media_query(self.min_viewport, self.until)

    @property
    def mime(self) -> str | None:
        """For `<source type>`; None for a negotiated srcset (fm=auto)."""
        row = FORMATS.get(self.format)
        return row.mime if row else None


@dataclass(frozen=True)
class RulePlan:
    rule: Rule
    sizes: str
    img: SourcePlan  # the plain `<img>`: negotiated format (fm=auto), the rule's base framing
    sources: tuple[SourcePlan, ...]  # the `<picture>`'s `<source>`s, in the order they are tried
    picture_img: SourcePlan  # the `<picture>`'s `<img>`: the fallback format, base framing

    @property
    def all_sources(self) -> tuple[SourcePlan, ...]:
        return (self.img, *self.sources, self.picture_img)


def picture_formats(rule: Rule, header: MasterHeader) -> tuple[list[tuple[str, int | str]], tuple[str, int | str]]:
    """The rule's formats for this master: (source formats, fallback format) with qualities.

    Alpha never goes into the fallback JPEG (PNG instead); an animation keeps moving (no source in
    a format the server makes still, such as AVIF, and GIF rather than a still fallback).
    """
    formats = list(rule.formats)
    last = formats.pop()
    if header.animated:
        formats = [f for f in formats if FORMATS[f[0]].animation]
    if not keeps(last[0], alpha=header.has_alpha, animated=header.animated):
        last = (fallback(alpha=header.has_alpha, animated=header.animated), 0)
    return formats, last


@dataclass(frozen=True)
class _Range:
    """One framing over viewports [lo, until): its candidate widths and display size."""

    framing: Framing
    lo: int
    until: int | None
    widths: tuple[int, ...]
    aspect: Fraction
    width: int  # the slot's widest CSS size (capped at the largest candidate)


@dataclass(frozen=True)
class RangeWidths:
    """What a framing's range declares before any master caps it: the device widths (unmerged)
    and the slot's widest CSS size. The public rules description (rules.public) exports them."""

    device_widths: tuple[int, ...]
    css_width: int


def range_widths(rule: Rule, lo: int, until: int | None) -> RangeWidths:
    """The device widths and widest CSS size of viewports [lo, until) within the rule's settings."""
    settings = rule.settings
    a = max(lo, settings.min_viewport)
    b = max(a, settings.max_viewport if until is None else min(until, settings.max_viewport))
    widths = device_widths(rule.sizes, rule.dprs, rule.breakpoints, a, b, settings.high_dpr_max_viewport)
    widest_css = max(slot.length.px(v) for slot, x, y in slot_ranges(rule.sizes, a, b) for v in (x, y))
    return RangeWidths(tuple(widths), math.ceil(widest_css - 1e-6))


def declared_widths(rule: Rule, framing: Framing, lo: int, until: int | None, capacity: Capacity) -> list[int]:
    """The candidate widths of a range for a master large enough never to cap them: what a client
    that does not know the master's size may ask (keyless URLs snap them to the master's plan)."""
    cap = rule.settings.max_width
    if framing.aspect is not None:
        cap = min(cap, largest_width(framing.aspect, capacity.limits))
    return capped(range_widths(rule, lo, until).device_widths, cap, rule.settings.merge_step)


def framing_ranges(rule: Rule) -> list[tuple[Framing, int, int | None]]:
    """(framing, from viewport, until viewport) of each range of the `<picture>`: the rule's own
    framing below the first art-direction breakpoint, then each art direction up to the next."""
    starts = [0, *(a.min_width for a in rule.art)]
    ends: list[int | None] = [*starts[1:], None]
    return list(zip([rule.framing, *(a.framing for a in rule.art)], starts, ends, strict=True))


def _range(
    rule: Rule, framing: Framing, header: MasterHeader, lo: int, until: int | None, capacity: Capacity
) -> _Range:
    spec = range_widths(rule, lo, until)
    cap = width_cap(framing, header, rule.enhance, rule.settings, capacity)
    widths = capped(spec.device_widths, cap, rule.settings.merge_step)
    width = max(1, min(spec.css_width, widths[-1]))
    return _Range(framing, lo, until, tuple(widths), output_aspect(framing, header), width)


def _source(r: _Range, fmt: str, quality: int | str | None, max_bytes: int | None) -> SourcePlan:
    q = quality if fmt == "auto" or FORMATS[fmt].lossy else None
    candidates = []
    for w in r.widths:
        h = output_height(w, r.aspect)
        opts = r.framing.rendition(w, h if r.framing.aspect is not None else None)
        candidates.append(PlannedCandidate(w, h, replace(opts, fm=fmt, q=q, max_bytes=max_bytes)))
    src = next((c for c in candidates if c.width >= r.width), candidates[-1])
    height = output_height(r.width, r.aspect)
    return SourcePlan(fmt, r.lo, r.until, tuple(candidates), r.width, height, src, r.framing)


def plan(rule: Rule, header: MasterHeader, capacity: Capacity) -> RulePlan:
    """Every srcset the rule's markup needs for this master. Raises a 400 Problem only when the
    rule crops a region that lies outside this master."""
    img = _source(_range(rule, rule.framing, header, 0, None, capacity), "auto", rule.quality, rule.max_bytes)
    formats, (last, last_q) = picture_formats(rule, header)
    # Sources go widest range first: the first match wins.
    ranges = [_range(rule, f, header, lo, until, capacity) for f, lo, until in framing_ranges(rule)]
    sources: list[SourcePlan] = []
    for r in reversed(ranges[1:]):
        sources += [_source(r, fmt, q, rule.max_bytes) for fmt, q in [*formats, (last, last_q)]]
    sources += [_source(ranges[0], fmt, q, rule.max_bytes) for fmt, q in formats]
    picture_img = _source(ranges[0], last, last_q, rule.max_bytes)
    return RulePlan(rule, sizes_attribute(rule.sizes), img, tuple(sources), picture_img)
