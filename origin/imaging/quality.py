"""Choosing the encoder quality: `q=auto` (a target SSIMULACRA2) and `max_bytes` (a size budget).

`q=auto` predicts on a sample of the finished image (the whole of a small one; tiles of a large
one at full scale, so block artefacts are what they will be) with two or three trial encodes
scored against the sample, then encodes the whole image once at the chosen quality. Full-scale
tiles matter: artefacts relative to detail depend on scale, so a downscaled sample would ask for
too high a quality (benchmarks/quality_search.py measures both).

`max_bytes` searches over whole encodes (bytes do not scale from a sample): the best quality up
to the one asked for whose bytes fit, found by interpolating in log(bytes); when even quality 1
does not fit, a 422 that names the budget.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import pyvips

from origin.core.errors import Problem
from origin.core.formats import FORMATS, EncodeSettings
from origin.imaging.encode import encode
from origin.imaging.ssimulacra2 import Reference, rgb_array

# Names the search in rendition keys: a change to it (priors, sampling, ladders) changes which
# quality q=auto picks, so bump this and every q=auto rendition is made afresh.
SEARCH_VERSION = 4  # 4: enlargements searched whole; 3: the scorer's opsin mix without BLAS
LOWEST, HIGHEST = 1, 100
WHOLE_UP_TO = 160_000  # pixels: smaller images are their own sample
# An enlargement this big or smaller is searched whole (see `sampled`): 0.1-0.7 CPU-s at 1280 x
# 854, several times a sampled search, on renditions that are rare and already pay for their pixels.
ENLARGED_WHOLE_UP_TO = 1_300_000
# A larger one is sampled as GRID x GRID tiles of TILE px, GRID per format: 3 (384 x 384, six
# scales) where an encode is cheap next to scoring, 2 (256 x 256) for AVIF, whose encode is not:
# a larger sample only landed JPEG and WebP closer (benchmarks/quality_search.py --grid).
TILE = 128
GRIDS = {"jpeg": 3, "webp": 3, "avif": 2}
GRID = 3  # formats not in GRIDS
MAX_TRIALS = 3
# Score curves bend (steep at low quality, flat in the middle on smooth or grey images): when the
# last trials still leave a bracket this many quality steps wide, up to MAX_TRIALS_BENT trials.
WIDE_BRACKET, MAX_TRIALS_BENT = 8, 5
NEAR_ENOUGH = 2  # quality steps: a fit this close below a size known too big ends a max_bytes search
CLOSE_ENOUGH = 1.0  # SSIMULACRA2 points: a trial this close to the target ends the search

# Where the search starts, per format: the quality that reaches SSIMULACRA2 `target` on a typical
# photo is about a + b * target (fitted on the corpus photos with this server's encoder settings,
# benchmarks/quality_search.py --fit), and how many quality steps one point of score takes.
PRIORS: dict[str, tuple[float, float]] = {"jpeg": (-49.6, 1.69), "webp": (-68.2, 2.01), "avif": (-30.7, 1.32)}


# The encoder variants a search climbs, cheapest in bytes first: the second only when the first
# cannot reach the target below quality 90. SSIMULACRA2 sees chroma: on saturated detail (boats,
# flowers) 4:2:0 tops out below 60 at any quality, while 4:4:4 gets there at about q75.
LADDERS: dict[str, tuple[dict[str, object], ...]] = {
    "jpeg": ({"subsample": "on"}, {"subsample": "off"}),
    "avif": ({"subsample": "on"}, {"subsample": "off"}),
    "webp": ({"webp_smart_subsample": False}, {"webp_smart_subsample": True}),
}
SECOND_LADDER_ABOVE = 90

# A sample of tiles misses the whole image's coarse structure and its worst regions, so the whole
# encode scores below the sample, by more at low targets and for large images: per format, the
# whole-minus-sample error is about a + b * (target - 70) + c * log2(image pixels / sample
# pixels), fitted on corpus photos (benchmarks/quality_search.py --fit-bias), and a sampled
# search aims that much higher.
SAMPLE_BIAS: dict[str, tuple[float, float, float]] = {
    "jpeg": (-0.35, 0.120, -0.60),  # residual sd 1.3 points
    "webp": (-0.59, 0.033, -0.46),  # 1.2
    "avif": (-0.52, -0.066, 0.01),  # 2.9 (Lanczos enlargements score higher whole than sampled)
}


@dataclass(frozen=True)
class Search:
    """What a quality search chose and did, for the encode, Server-Timing and tests."""

    quality: int
    settings: EncodeSettings  # the encoder variant chosen (chroma subsampling)
    predicted: float | None  # the sample's SSIMULACRA2 at `quality` (q=auto), or None
    encodes: int  # trial encodes of the sample (q=auto), or whole encodes (max_bytes)
    seconds: float

    def describe(self) -> str:
        score = f" ssimulacra2~{self.predicted:.1f}" if self.predicted is not None else ""
        return f"q={self.quality}{score} encodes={self.encodes}"


def sampled(width: int, height: int, fmt: str, enlarged: bool = False) -> bool:
    """Whether a search for a `fmt` image this big scores a sample rather than the whole image.
    Not for an enlargement up to ENLARGED_WHOLE_UP_TO: tiles of interpolated pixels predicted
    its whole encode up to 10 points off (AVIF too high, JPEG and WebP too low), the whole image
    lands within 1 (benchmarks/quality_search.py, the corpus' 640 px photos at 800 and 1280)."""
    if enlarged and width * height <= ENLARGED_WHOLE_UP_TO:
        return False
    return _sampled_at(width, height, GRIDS.get(fmt, GRID))


def _sampled_at(width: int, height: int, grid: int) -> bool:
    return width * height > WHOLE_UP_TO and width >= grid * TILE and height >= grid * TILE


def sample(image: pyvips.Image, grid: int = GRID) -> pyvips.Image:
    """The part of a finished image a search scores: itself when small, else GRID x GRID tiles at
    full scale from the middle of each cell, their corners on 16 px (JPEG's and WebP's block grid).
    (Choosing the cells by local detail instead, to match the whole image's mix of flat and busy
    areas, was tried: no closer after the bias correction, and 15 CPU-ms more at 1280 px.)"""
    if not _sampled_at(image.width, image.height, grid):
        return image
    tiles = []
    for row in range(grid):
        for col in range(grid):
            x = max(0, (image.width * (2 * col + 1) // (2 * grid) - TILE // 2) // 16 * 16)
            y = max(0, (image.height * (2 * row + 1) // (2 * grid) - TILE // 2) // 16 * 16)
            tiles.append(image.crop(x, y, TILE, TILE))
    return pyvips.Image.arrayjoin(tiles, across=grid).copy_memory()


def sample_scale(image: pyvips.Image, grid: int = GRID) -> float:
    """log2 of how many times more pixels the image has than its sample."""
    return math.log2(image.width * image.height / (grid * TILE) ** 2)


def auto_quality(
    image: pyvips.Image,
    fmt: str,
    target: float,
    settings: EncodeSettings,
    highest: int = HIGHEST,
    whole: bool = False,
    enlarged: bool = False,
) -> Search:
    """The quality (and chroma variant) whose encode of `image` should score `target`
    (SSIMULACRA2), from trial encodes of its sample (of all of it, when `whole`: several times
    the CPU on a large image, for the background upgrade; or when `image` is `enlarged` from its
    master, see `sampled`); at most `highest`."""
    started = time.perf_counter()
    grid = GRIDS.get(fmt, GRID)
    probe = sample(image, grid) if not whole and sampled(image.width, image.height, fmt, enlarged) else image
    if probe is not image:
        a, b, c = SAMPLE_BIAS.get(fmt, (0.0, 0.0, 0.0))
        target -= a + b * (target - 70) + c * sample_scale(image, grid)
    reference = Reference(rgb_array(probe))
    encodes = 0
    best: tuple[int, EncodeSettings, float] | None = None
    for variant in LADDERS.get(fmt, ({},)):
        tuned = replace(settings, **variant)  # type: ignore[arg-type]

        def trial(q: int, tuned: EncodeSettings = tuned) -> float:
            data = encode(probe, fmt, q, tuned)
            return reference.score(rgb_array(pyvips.Image.new_from_buffer(data, "")))

        q, predicted, tries = _climb(trial, fmt, target, highest)
        encodes += tries
        reaches = predicted >= target - CLOSE_ENOUGH
        if best is None or (reaches if best[2] >= target - CLOSE_ENOUGH else predicted > best[2]):
            best = (q, tuned, predicted)
        if reaches and q <= SECOND_LADDER_ABOVE:
            break
    assert best is not None
    return Search(best[0], best[1], best[2], encodes, time.perf_counter() - started)


def _climb(trial: Callable[[int], float], fmt: str, target: float, highest: int) -> tuple[int, float, int]:
    """(quality, its predicted score, trials) for one encoder variant: start at the prior, then
    secant steps, at most MAX_TRIALS (MAX_TRIALS_BENT while the bracket is wide); the answer
    interpolates between the closest trials."""
    a, b = PRIORS.get(fmt, (0.0, 1.0))
    q = _clamp(a + b * target, highest)
    tried: dict[int, float] = {}
    while (len(tried) < MAX_TRIALS or (len(tried) < MAX_TRIALS_BENT and _wide(tried, target))) and q not in tried:
        tried[q] = trial(q)
        if abs(tried[q] - target) <= CLOSE_ENOUGH:
            return q, tried[q], len(tried)
        q = _next_guess(tried, target, b, highest)
    if q in tried:  # pinned at an end, or already tried: the closest trial
        best = min(tried, key=lambda t: (abs(tried[t] - target), -t))
        return best, tried[best], len(tried)
    return q, _interpolate(tried, q), len(tried)


def _next_guess(tried: dict[int, float], target: float, slope: float, highest: int) -> int:
    """Secant through the two trials that bracket (or are nearest) the target; with one trial,
    the prior's slope."""
    if len(tried) == 1:
        ((q, s),) = tried.items()
        return _clamp(q + (target - s) * slope, highest)
    below = [(q, s) for q, s in tried.items() if s < target]
    above = [(q, s) for q, s in tried.items() if s >= target]
    if below and above:  # interpolate inside the bracket
        (q0, s0), (q1, s1) = max(below, key=lambda t: t[1]), min(above, key=lambda t: t[1])
        if s1 == s0:
            return _clamp((q0 + q1) / 2, highest)
        return _clamp(q0 + (target - s0) * (q1 - q0) / (s1 - s0), highest)
    # Extrapolate from the two nearest, but no further than 1.5x the prior's slope would go: on a
    # bent curve a flat secant shoots to the end of the range.
    (q0, s0), (q1, s1) = sorted(tried.items(), key=lambda t: abs(t[1] - target))[:2]
    reach = 1.5 * abs(target - s0) * slope
    guess = q0 + (target - s0) * (q1 - q0) / (s1 - s0) if s1 != s0 else q0 + math.copysign(reach, target - s0)
    return _clamp(min(max(guess, q0 - reach), q0 + reach), highest)


def _wide(tried: dict[int, float], target: float) -> bool:
    """Whether the trials fail to pin the target's quality to within WIDE_BRACKET steps."""
    below = [q for q, s in tried.items() if s < target]
    above = [q for q, s in tried.items() if s >= target]
    if not below or not above:
        return not any(q in (LOWEST, HIGHEST) for q in tried)  # unbracketed, unless pinned at an end
    return min(above) - max(below) > WIDE_BRACKET


def _interpolate(tried: dict[int, float], q: int) -> float:
    points = sorted(tried.items())
    if len(points) == 1:
        return points[0][1]
    (q0, s0), (q1, s1) = min(zip(points, points[1:], strict=False), key=lambda p: abs((p[0][0] + p[1][0]) / 2 - q))
    return s0 + (q - q0) * (s1 - s0) / (q1 - q0)


def _clamp(q: float, highest: int) -> int:
    return max(LOWEST, min(highest, round(q)))


def fit_bytes(
    image: pyvips.Image,
    fmt: str,
    quality: int,
    max_bytes: int,
    settings: EncodeSettings,
    keep: str = "none",
    first: bytes | None = None,
) -> tuple[bytes, Search]:
    """The encode at the highest quality <= `quality` that is at most `max_bytes` long. `first`:
    the encode at `quality` when the caller has it. Raises a 422 Problem when quality 1 is too big."""
    started = time.perf_counter()
    encodes = 0

    def at(q: int) -> bytes:
        nonlocal encodes
        encodes += 1
        return encode(image, fmt, q, settings, keep)

    data = first if first is not None else at(quality)
    if len(data) <= max_bytes or not FORMATS[fmt].lossy:
        if len(data) > max_bytes:
            raise _over_budget(fmt, max_bytes, len(data), None)
        return data, Search(quality, settings, None, encodes, time.perf_counter() - started)
    fits: dict[int, bytes] = {}
    sizes = {quality: len(data)}
    lo, hi = LOWEST, quality  # the answer is in [lo, hi): hi is known to be too big
    while lo < hi and not (fits and hi - max(fits) <= NEAR_ENOUGH):
        q = _size_guess(sizes, max_bytes, lo, hi)
        data = at(q)
        sizes[q] = len(data)
        if len(data) <= max_bytes:
            fits[q] = data
            lo = q + 1
        else:
            hi = q
    if not fits:  # quality 1 was tried last, and is too big
        raise _over_budget(fmt, max_bytes, sizes[LOWEST], LOWEST)
    best = max(fits)
    return fits[best], Search(best, settings, None, encodes, time.perf_counter() - started)


def _size_guess(sizes: dict[int, int], budget: int, lo: int, hi: int) -> int:
    """Next quality to try in [lo, hi): interpolate log(bytes) between the nearest known qualities
    around the budget; bisect when that lands outside."""
    known = sorted(sizes.items())
    under = [(q, n) for q, n in known if n <= budget]
    over = [(q, n) for q, n in known if n > budget]
    if under and over:
        (q0, n0), (q1, n1) = under[-1], over[0]
    elif len(over) >= 2:
        (q0, n0), (q1, n1) = over[0], over[1]
    else:
        (q1, n1) = over[0]
        # bytes roughly halve every 25-30 quality steps in the upper range: a first guess.
        q0, n0 = q1 - 28, n1 // 2
    if n1 == n0:
        guess = (lo + hi) // 2
    else:
        guess = round(q0 + (math.log(budget) - math.log(n0)) * (q1 - q0) / (math.log(n1) - math.log(n0)))
    guess -= 1 if guess >= hi else 0
    return guess if lo <= guess < hi else (lo + hi) // 2


def _over_budget(fmt: str, budget: int, smallest: int, q: int | None) -> Problem:
    at = f" at q={q}" if q is not None else ""
    return Problem(
        422,
        f"max_bytes={budget}: the smallest {fmt} encode of this rendition is {smallest} bytes{at}; "
        "raise max_bytes or ask for a smaller size",
        {"option": "max_bytes"},
    )
