"""SSIMULACRA2, the perceptual score `q=auto` aims at: 100 is identical, 90 visually lossless, 70
"high quality", 50 "medium" (libjxl's tools/ssimulacra2.cc, Jon Sneyers, Cloudinary).

Our own numpy implementation of the published algorithm: both images to linear RGB, then at six
scales (halving each time in linear light) to XYB; per scale a Gaussian-blurred (sigma 1.5) SSIM
map and an edge-difference map (ringing added, detail lost), each pooled by the mean and the
4-norm; a weighted sum of those 108 numbers mapped to the 0-100 scale. The weights and the
mapping are the metric's definition, taken from libjxl (BSD-3-Clause, Copyright the JPEG XL
Project Authors). `tests/unit/test_ssimulacra2.py` checks it against the PyPI `ssimulacra2`
package on corpus renditions.

Float32, channels first (each channel contiguous for the blurs and sums), in work arrays reused
from one candidate to the next, and no BLAS: a 384x384 candidate scores in 11 CPU-ms against a
prepared `Reference` (39 before both, with numpy's defaults), cheap enough for a quality search's
trial encodes of a sample of the image. A large image goes through in strips of rows, so its work
arrays are a strip's: scoring 2048 x 1536 whole held 800 MB of them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import pyvips

_SCALES = 6
_C2 = 0.0009
_SIGMA = 1.5
_RADIUS = 5  # libjxl's blur reaches about 3.3 sigma
_BIAS = 0.0037930732552754493
_OPSIN = np.array(
    [
        [0.30, 1.0 - 0.078 - 0.30, 0.078],
        [0.23, 1.0 - 0.078 - 0.23, 0.078],
        [0.24342268924547819, 0.20476744424496821, 1.0 - 0.24342268924547819 - 0.20476744424496821],
    ],
    dtype=np.float32,
)
_CBRT_BIAS = float(np.cbrt(_BIAS))
_TAPS = np.exp(-0.5 * (np.arange(-_RADIUS, _RADIUS + 1) / _SIGMA) ** 2).astype(np.float32)
_TAPS /= _TAPS.sum()

# Per channel (X, Y, B), per scale, per norm (mean, 4-norm): the SSIM term, then ringing, then
# blurring. Most are (near) zero: the fit found little to learn there.
_WEIGHTS = np.array(
    [
        0.0, 0.0007376606707406586, 0.0, 0.0, 0.0007793481682867309, 0.0,
        0.0, 0.0004371155730107379, 0.0, 1.1041726426657346, 0.00066284834129271, 0.00015231632783718752,
        0.0, 0.0016406437456599754, 0.0, 1.8422455520539298, 11.441172603757666, 0.0,
        0.0007989109436015163, 0.000176816438078653, 0.0, 1.8787594979546387, 10.94906990605142, 0.0,
        0.0007289346991508072, 0.9677937080626833, 0.0,
        0.00014003424285435884, 0.9981766977854967, 0.00031949755934435053,
        0.0004550992113792063, 0.0, 0.0, 0.0013648766163243398, 0.0, 0.0,
        0.0, 0.0, 0.0, 7.466890328078848, 0.0, 17.445833984131262,
        0.0006235601634041466, 0.0, 0.0, 6.683678146179332, 0.00037724407979611296, 1.027889937768264,
        225.20515300849274, 0.0, 0.0, 19.213238186143016, 0.0011401524586618361, 0.001237755635509985,
        176.39317598450694, 0.0, 0.0, 24.43300999870476, 0.28520802612117757, 0.0004485436923833408,
        0.0, 0.0, 0.0, 34.77906344483772, 44.835625328877896, 0.0,
        0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
        0.0, 0.0008680556573291698, 0.0, 0.0, 0.0, 0.0,
        0.0, 0.0005313191874358747, 0.0, 0.00016533814161379112, 0.0, 0.0,
        0.0, 0.0, 0.0, 0.0004179171803251336, 0.0017290828234722833, 0.0,
        0.0020827005846636437, 0.0, 0.0, 8.826982764996862, 23.19243343998926, 0.0,
        95.1080498811086, 0.9863978034400682, 0.9834382792465353,
        0.0012286405048278493, 171.2667255897307, 0.9807858872435379,
        0.0, 0.0, 0.0, 0.0005130064588990679, 0.0, 0.00010854057858411537,
    ]
)  # fmt: skip


def score(reference: pyvips.Image, distorted: pyvips.Image) -> float:
    """SSIMULACRA2 of `distorted` against `reference`: sRGB images of one size (grey is scored as
    RGB; alpha, when present, is dropped: renditions are scored as they would look opaque)."""
    return Reference(rgb_array(reference)).score(rgb_array(distorted))


# A large image is scored in strips of rows (each with the blur's reach of rows around it), so
# the work arrays hold one strip: scoring a whole 2048 x 1536 image held 800 MB of them, 3264 x
# 2448 2 GB. The sample a search scores (384 x 384) and anything up to this is one strip.
STRIP_PIXELS = 160_000
# A reference up to this many pixels (all scales) keeps its own terms (XYB, blurred mean,
# variance, 48 bytes a pixel) between candidates; a larger one recomputes them for each (about
# half as much work again), so its memory stays a strip's.
KEPT_PIXELS = 1_400_000

Strip = tuple[int, int, int, int]  # rows: window start, window end (what the blur reads), first, end


class Reference:
    """One reference image, prepared once (its XYB pyramid, blurred moments and the terms that
    depend on it alone) so that each candidate encode costs only its own half of the work.

    Its scratch arrays are its thread's, reused from one score (and one Reference) to the next: a
    fresh array of this size costs more in page faults than the arithmetic done on it (numpy asks
    malloc, and malloc the kernel, for each one over 128 KB), which made scoring a 384 x 384
    sample 2-3x slower. So use a Reference in the thread that made it, one candidate at a time (a
    quality search's trials are sequential). Its own memory is about 4 bytes a pixel for the
    smaller scales of each image, and its terms when small (KEPT_PIXELS); the scratch arrays
    hold a strip (STRIP_PIXELS)."""

    def __init__(self, rgb: np.ndarray):
        self.shape = rgb.shape
        self._sizes = _pyramid(rgb.shape[0], rgb.shape[1])
        self._strips = [_strips(h, w) for h, w in self._sizes]
        self._work = _Work.for_windows(self._sizes, self._strips)
        self._rgb = rgb
        self._levels = _levels(self._sizes)  # scales 1.. of the reference, whole
        self._candidate_levels = _levels(self._sizes)  # the same for each candidate in turn
        walk = self._walk(rgb, self._levels)
        self._kept: list[_Terms] | None = None  # one per strip, in _walk's order
        if sum(h * w for h, w in self._sizes) <= KEPT_PIXELS:
            self._kept = [self._terms(scale, strip, linear, keep=True) for scale, strip, linear in walk]
        else:
            for _ in walk:  # the levels only
                pass

    def _walk(self, rgb: np.ndarray, levels: list[np.ndarray]) -> Iterator[tuple[int, Strip, np.ndarray]]:
        """Each strip of each scale, scale 0 first, with its window in linear light; on the way,
        fills `levels` (scales 1..) with the image's, each the 2x2 average of the one before."""
        for scale, strips in enumerate(self._strips):
            if scale == 1:
                for finer, coarser in zip(levels, levels[1:], strict=False):
                    _half(finer, coarser)
            for top, bottom, first, end in strips:
                linear = self._linear(rgb, levels, scale, top, bottom, "linear")
                if scale == 0 and levels:  # the strip's own rows (an even number, but for the last strip)
                    _half(linear[:, first - top : end - top], levels[0][:, first // 2 : (end + 1) // 2])
                yield scale, (top, bottom, first, end), linear

    def _linear(
        self, rgb: np.ndarray, levels: list[np.ndarray], scale: int, top: int, bottom: int, name: str
    ) -> np.ndarray:
        """Rows `top`..`bottom` of one scale in linear light: of the image itself (into work array
        `name`) at scale 0, else a view of `levels`."""
        return levels[scale - 1][:, top:bottom] if scale else self._work.linear_rows(rgb, top, bottom, name)

    def _terms(self, scale: int, strip: Strip, linear: np.ndarray, keep: bool = False) -> _Terms:
        """The reference's own part of one strip, from its window in linear light: XYB over the
        window, and over the strip's rows its blurred mean, its variance and 1 + |xyb - mean|
        (the ringing and blurring ratio's denominator). In work arrays, or in fresh ones to `keep`."""
        work, (top, bottom, first, end) = self._work, strip
        width, inner = self._sizes[scale][1], slice(first - top, end - top)
        window, rows = (3, bottom - top, width), (3, end - first, width)
        xyb = _xyb(linear, work.out("axyb", window, keep), work)
        mu1 = _blur(xyb, work.out("mu1", window, keep), work)[:, inner]
        s11 = _blur(np.multiply(xyb, xyb, out=work.view("product", window)), work.view("s22", window), work)
        variance = work.out("variance", rows, keep)
        np.subtract(s11[:, inner], np.multiply(mu1, mu1, out=work.view("t1", rows)), out=variance)
        denominator = np.subtract(xyb[:, inner], mu1, out=work.out("denominator", rows, keep))
        np.abs(denominator, out=denominator)
        denominator += 1.0
        return _Terms(xyb, mu1, variance, denominator)

    def _own_terms(self, scale: int, strip: Strip) -> _Terms:
        """`_terms` again, for a reference too large to keep them."""
        top, bottom = strip[:2]
        return self._terms(scale, strip, self._linear(self._rgb, self._levels, scale, top, bottom, "reference"))

    def score(self, rgb: np.ndarray) -> float:
        """SSIMULACRA2 of an H x W x 3 uint8 array of the reference's size."""
        if rgb.shape != self.shape:
            raise ValueError(
                f"distorted image is {rgb.shape[1]}x{rgb.shape[0]}, reference {self.shape[1]}x{self.shape[0]}"
            )
        work = self._work
        sums = np.zeros((len(self._sizes), 18))
        for n, (scale, strip, linear) in enumerate(self._walk(rgb, self._candidate_levels)):
            top, bottom, first, end = strip
            b = _xyb(linear, work.view("bxyb", (3, bottom - top, self._sizes[scale][1])), work)
            terms = self._kept[n] if self._kept is not None else self._own_terms(scale, strip)
            sums[scale] += _compare(terms, b, first - top, end - top, work)
        means = sums / np.array([h * w for h, w in self._sizes], dtype=np.float64)[:, None]
        means[:, _FOURTH] **= 0.25
        # libjxl's order: channel, then scale, then norm; for each, SSIM, ringing, blurring.
        features: list[float] = []
        for c in range(3):
            for scale in means:
                ssim, edges = scale[:6], scale[6:]
                for n in range(2):
                    features += [ssim[c * 2 + n], edges[c * 4 + n], edges[c * 4 + n + 2]]
        total = float(np.dot(_WEIGHTS[: len(features)], np.abs(features))) * 0.9562382616834844
        total = 2.326765642916932 * total - 0.020884521182843837 * total**2 + 6.248496625763138e-05 * total**3
        return 100.0 - 10.0 * total**0.6276336467831387 if total > 0 else 100.0


class _Terms(NamedTuple):
    xyb: np.ndarray  # over the strip's window
    mu1: np.ndarray  # over its rows, as are the two below
    variance: np.ndarray
    denominator: np.ndarray


def _pyramid(h: int, w: int) -> list[tuple[int, int]]:
    """The size of each scale scored: up to six, halving (rounding up) while at least 8 pixels each way."""
    sizes = []
    for n in range(_SCALES):
        if n:
            h, w = (h + 1) // 2, (w + 1) // 2
        if h < 8 or w < 8:
            break
        sizes.append((h, w))
    return sizes


def _strips(h: int, w: int) -> list[Strip]:
    """One scale's rows in strips of about STRIP_PIXELS, each with the blur's reach around it."""
    # An even number of rows, so that each strip halves into whole rows of the next scale.
    rows = h if h * w <= STRIP_PIXELS else max(4 * _RADIUS, STRIP_PIXELS // w // 2 * 2)
    return [(max(0, y - _RADIUS), min(h, y + rows + _RADIUS), y, min(h, y + rows)) for y in range(0, h, rows)]


def _levels(sizes: list[tuple[int, int]]) -> list[np.ndarray]:
    return [np.empty((3, h, w), dtype=np.float32) for h, w in sizes[1:]]


class _Work:
    """Scratch arrays for one strip window at a time, of any scale; a smaller window uses the
    start of each. One set per thread, reused by every Reference it makes: fresh arrays fault in
    their pages (and glibc hands the memory back between searches), which cost a sampled search
    about 1,700 page faults and a tenth of its CPU."""

    NAMES: tuple[str, ...] = ("linear", "reference", "pair", "axyb", "bxyb", "product", "mu1", "mu2")
    NAMES += ("s22", "s12", "variance", "denominator", "t1", "t2", "t3")
    _mine = threading.local()

    def __init__(self, flat: int, padded: int):
        # np.empty maps pages only when first written: the names a score never uses cost nothing.
        self.flat, self.padded = flat, padded  # elements
        self._flat = {name: np.empty(flat, dtype=np.float32) for name in self.NAMES}
        self._padded = np.empty(padded, dtype=np.float32)  # a blur's window with its margin, either way
        self._index = np.empty(flat, dtype=np.uint8)

    @classmethod
    def for_windows(cls, sizes: list[tuple[int, int]], strips: list[list[Strip]]) -> _Work:
        """This thread's set, grown if these windows need more."""
        windows = [(bottom - top, w) for (_, w), each in zip(sizes, strips, strict=True) for top, bottom, _, _ in each]
        flat = 3 * max((h * w for h, w in windows), default=1)
        padded = 3 * max(((h + 2 * _RADIUS) * (w + 2 * _RADIUS) for h, w in windows), default=1)
        work: _Work | None = getattr(cls._mine, "work", None)
        if work is None or work.flat < flat or work.padded < padded:
            work = cls._mine.work = cls(flat, padded)
        return work

    def view(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        return self._flat[name][: shape[0] * shape[1] * shape[2]].reshape(shape)

    def out(self, name: str, shape: tuple[int, ...], keep: bool) -> np.ndarray:
        """Work array `name` as `shape`, or a fresh array to `keep`."""
        return np.empty(shape, dtype=np.float32) if keep else self.view(name, shape)

    def tall(self, c: int, h: int, w: int) -> np.ndarray:
        return self._padded[: c * (h + 2 * _RADIUS) * w].reshape(c, h + 2 * _RADIUS, w)

    def wide(self, c: int, h: int, w: int) -> np.ndarray:  # the same memory: a blur's passes take turns
        return self._padded[: c * h * (w + 2 * _RADIUS)].reshape(c, h, w + 2 * _RADIUS)

    def linear_rows(self, rgb: np.ndarray, top: int, bottom: int, name: str) -> np.ndarray:
        """Rows `top`..`bottom` of an H x W x 3 uint8 image as linear light, channels first, in `name`."""
        shape = (3, bottom - top, rgb.shape[1])
        index = self._index[: shape[0] * shape[1] * shape[2]].reshape(shape)
        index[...] = rgb[top:bottom].transpose(2, 0, 1)
        # mode="clip" (uint8 cannot be out of range): with the default, numpy buffers `out`.
        return np.take(_SRGB_TO_LINEAR, index, out=self.view(name, shape), mode="clip")


def rgb_array(image: pyvips.Image) -> np.ndarray:
    """An H x W x 3 uint8 array of an image's colour (sRGB; grey repeated; alpha dropped)."""
    if image.hasalpha():
        image = image.extract_band(0, n=image.bands - 1)
    if image.interpretation in ("rgb16", "grey16") or image.format not in ("uchar", "char"):
        image = image.colourspace("b-w" if image.bands == 1 else "srgb")
    if image.bands == 1:
        image = image.bandjoin([image, image])
    if image.format != "uchar":
        image = image.cast("uchar")
    return np.ndarray(buffer=image.write_to_memory(), dtype=np.uint8, shape=(image.height, image.width, 3))


_SRGB_TO_LINEAR = np.where((v := np.arange(256) / 255.0) <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4).astype(
    np.float32
)


def _half(image: np.ndarray, out: np.ndarray) -> np.ndarray:
    """2x2 box average into `out`; an odd last row or column is averaged with itself (as libjxl does)."""
    _, h, w = image.shape
    if h % 2:  # odd sizes: rare, and small by then
        image = np.concatenate([image, image[:, -1:]], axis=1)
    if w % 2:
        image = np.concatenate([image, image[:, :, -1:]], axis=2)
    np.add(image[:, 0::2, 0::2], image[:, 1::2, 0::2], out=out)
    out += image[:, 0::2, 1::2]
    out += image[:, 1::2, 1::2]
    out *= 0.25
    return out


def _xyb(linear: np.ndarray, out: np.ndarray, work: _Work) -> np.ndarray:
    """XYB of linear light, into `out` (which may not be `linear`); returns `out`."""
    # "product" is free until a blur of products: XYB is made before.
    mixed, term = work.view("product", linear.shape), work.view("pair", linear.shape)[0]
    # The 3 x 3 opsin mix as plain products, not np.dot: numpy hands that to BLAS, whose
    # threads (one per core, spinning while they wait) doubled the CPU a quality search cost.
    for row, weights in zip(mixed, _OPSIN, strict=True):
        np.multiply(linear[0], weights[0], out=row)
        row += np.multiply(linear[1], weights[1], out=term)
        row += np.multiply(linear[2], weights[2], out=term)
    mixed += _BIAS
    np.maximum(mixed, 0.0, out=mixed)
    np.cbrt(mixed, out=mixed)
    mixed -= _CBRT_BIAS
    # Shifted and scaled so every channel is positive and of a similar range (libjxl's
    # MakePositiveXYB): the SSIM formula below has no C1 and assumes it.
    x, y, b = out[0], out[1], out[2]
    np.subtract(mixed[0], mixed[1], out=x)
    x *= 0.5
    x *= 14.0
    x += 0.42
    np.add(mixed[0], mixed[1], out=y)
    y *= 0.5
    np.subtract(mixed[2], y, out=b)
    b += 0.55
    y += 0.01
    return out


def _blur(image: np.ndarray, out: np.ndarray, work: _Work) -> np.ndarray:
    """Gaussian, sigma 1.5, separable, over 3 x H x W, into `out` (not `image`): mirrored at the
    top and bottom (a b | b a), zero beyond the left and right edges, which is how libjxl's
    recursive Gaussian behaves and the PyPI package reproduces. Symmetric taps are added in
    pairs before one multiply. (BLAS products with banded matrices were no faster here and spin
    up threads of their own.)"""
    r = _RADIUS
    c, h, w = image.shape
    pair = work.view("pair", image.shape)
    tall = work.tall(c, h, w)
    tall[:, :r] = image[:, r - 1 :: -1]
    tall[:, r : r + h] = image
    tall[:, r + h :] = image[:, : -r - 1 : -1]
    np.multiply(image, _TAPS[r], out=out)
    for k in range(r):
        np.add(tall[:, k : k + h], tall[:, 2 * r - k : 2 * r - k + h], out=pair)
        pair *= _TAPS[k]
        out += pair
    wide = work.wide(c, h, w)
    wide[:, :, :r] = 0.0
    wide[:, :, r : r + w] = out
    wide[:, :, r + w :] = 0.0
    out *= _TAPS[r]
    for k in range(r):
        np.add(wide[:, :, k : k + w], wide[:, :, 2 * r - k : 2 * r - k + w], out=pair)
        pair *= _TAPS[k]
        out += pair
    return out


# Where the 4-norms sit among the 18 sums of a scale (SSIM mean, 4-norm per channel; then per
# channel ringing mean, 4-norm, blurring mean, 4-norm): their means are taken to the 1/4 power.
_FOURTH = np.array([1, 3, 5, 7, 9, 11, 13, 15, 17])


def _compare(terms: _Terms, b: np.ndarray, first: int, end: int, work: _Work) -> np.ndarray:
    """The sums over rows `first`..`end` of the window (per channel) of the SSIM map and its 4th
    power, then of ringing and blurring and their 4th powers, for candidate `b` (XYB over the
    window) against the reference's `terms`; 18 numbers in _FOURTH's order."""
    a, mu1, variance, denominator = terms
    window, inner = b.shape, slice(first, end)
    rows = (3, end - first, window[2])
    mu2 = _blur(b, work.view("mu2", window), work)[:, inner]
    s22 = _blur(np.multiply(b, b, out=work.view("product", window)), work.view("s22", window), work)[:, inner]
    s12 = _blur(np.multiply(a, b, out=work.view("product", window)), work.view("s12", window), work)[:, inner]
    t1, t2, t3 = (work.view(name, rows) for name in ("t1", "t2", "t3"))
    np.subtract(mu1, mu2, out=t1)  # num_m = 1 - (mu1 - mu2)^2
    np.multiply(t1, t1, out=t1)
    np.subtract(1.0, t1, out=t1)
    np.multiply(mu1, mu2, out=t2)  # num_s = 2 (s12 - mu1 mu2) + C2
    np.subtract(s12, t2, out=t2)
    t2 *= 2.0
    t2 += _C2
    np.multiply(mu2, mu2, out=t3)  # denom_s = variance + (s22 - mu2^2) + C2
    np.subtract(s22, t3, out=t3)
    np.add(variance, t3, out=t3)
    t3 += _C2
    d = t1  # max(1 - num_m num_s / denom_s, 0)
    np.multiply(t1, t2, out=d)
    np.divide(d, t3, out=d)
    np.subtract(1.0, d, out=d)
    np.maximum(d, 0.0, out=d)
    sums = np.empty(18)
    sums[0:6:2] = _sum(d)
    sums[1:6:2] = _sum(_fourth(d, t2))
    ratio = t3  # (1 + |b - mu2|) / (1 + |a - mu1|) - 1
    np.subtract(b[:, inner], mu2, out=ratio)
    np.abs(ratio, out=ratio)
    ratio += 1.0
    np.divide(ratio, denominator, out=ratio)
    ratio -= 1.0
    ringing, blurring = np.maximum(ratio, 0.0, out=t1), np.maximum(np.negative(ratio, out=t2), 0.0, out=t2)
    edges = sums[6:]
    edges[0::4] = _sum(ringing)
    edges[2::4] = _sum(blurring)
    edges[1::4] = _sum(_fourth(ringing, t3))
    edges[3::4] = _sum(_fourth(blurring, t3))
    return sums


def _fourth(values: np.ndarray, out: np.ndarray) -> np.ndarray:
    np.multiply(values, values, out=out)
    return np.multiply(out, out, out=out)


def _sum(values: np.ndarray) -> np.ndarray:
    return values.reshape(3, -1).sum(axis=1, dtype=np.float64)
