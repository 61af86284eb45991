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
trial encodes of a sample of the image.
"""

from __future__ import annotations

from collections.abc import Iterator

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


class Reference:
    """One reference image, prepared once (its XYB pyramid, blurred moments and the terms that
    depend on it alone) so that each candidate encode costs only its own half of the work.

    A Reference keeps the work arrays of its candidates and reuses them from one score to the
    next: a fresh array of this size costs more in page faults than the arithmetic done on it
    (numpy asks malloc, and malloc the kernel, for each one over 128 KB), which made scoring a
    384 x 384 sample 2-3x slower. So one Reference scores one candidate at a time (a quality
    search's trials are sequential); give each thread its own."""

    def __init__(self, rgb: np.ndarray):
        self.shape = rgb.shape
        self._work = _Work((3, rgb.shape[0], rgb.shape[1]))
        # Per scale: xyb, its blurred mean, its variance, and 1 + |xyb - mean| (the ringing and
        # blurring ratio's denominator).
        self._scales: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        for linear in self._work.levels(rgb):
            xyb = _xyb(linear, np.empty_like(linear), self._work)
            mu1 = _blur(xyb, np.empty_like(xyb), self._work)
            s11 = _blur(xyb * xyb, np.empty_like(xyb), self._work)
            variance = s11 - mu1 * mu1
            self._scales.append((xyb, mu1, variance, 1.0 + np.abs(xyb - mu1)))

    def score(self, rgb: np.ndarray) -> float:
        """SSIMULACRA2 of an H x W x 3 uint8 array of the reference's size."""
        if rgb.shape != self.shape:
            raise ValueError(
                f"distorted image is {rgb.shape[1]}x{rgb.shape[0]}, reference {self.shape[1]}x{self.shape[0]}"
            )
        work = self._work
        per_scale = [
            _compare(*scale, _xyb(linear, work.view("xyb", linear.shape), work), work)
            for scale, linear in zip(self._scales, work.levels(rgb), strict=True)
        ]
        # libjxl's order: channel, then scale, then norm; for each, SSIM, ringing, blurring.
        features: list[float] = []
        for c in range(3):
            for ssim, edges in per_scale:
                for n in range(2):
                    features += [ssim[c * 2 + n], edges[c * 4 + n], edges[c * 4 + n + 2]]
        total = float(np.dot(_WEIGHTS[: len(features)], np.abs(features))) * 0.9562382616834844
        total = 2.326765642916932 * total - 0.020884521182843837 * total**2 + 6.248496625763138e-05 * total**3
        return 100.0 - 10.0 * total**0.6276336467831387 if total > 0 else 100.0


class _Work:
    """Work arrays sized for the largest scale; a smaller scale uses the start of each."""

    NAMES = ("mixed", "xyb", "mu2", "s22", "s12", "product", "t1", "t2", "t3", "pair", "level0", "level1")

    def __init__(self, shape: tuple[int, int, int]):
        c, h, w = shape
        self._flat = {name: np.empty(c * h * w, dtype=np.float32) for name in self.NAMES}
        self._tall = np.empty(c * (h + 2 * _RADIUS) * w, dtype=np.float32)
        self._wide = np.empty(c * h * (w + 2 * _RADIUS), dtype=np.float32)
        self._lut_index = np.empty((c, h, w), dtype=np.uint8)

    def view(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        return self._flat[name][: shape[0] * shape[1] * shape[2]].reshape(shape)

    def tall(self, c: int, h: int, w: int) -> np.ndarray:
        return self._tall[: c * (h + 2 * _RADIUS) * w].reshape(c, h + 2 * _RADIUS, w)

    def wide(self, c: int, h: int, w: int) -> np.ndarray:
        return self._wide[: c * h * (w + 2 * _RADIUS)].reshape(c, h, w + 2 * _RADIUS)

    def levels(self, rgb: np.ndarray) -> Iterator[np.ndarray]:
        """An H x W x 3 uint8 image as linear light, channels first (3 x H x W), at up to six
        scales, halving each time while at least 8 pixels each way. Each level is a work array,
        good until the one after next."""
        index = self._lut_index
        index[...] = rgb.transpose(2, 0, 1)
        # mode="clip" (uint8 cannot be out of range): with the default, numpy buffers `out`.
        linear = np.take(_SRGB_TO_LINEAR, index, out=self.view("level0", index.shape), mode="clip")
        for n in range(_SCALES):
            if n:
                _, h, w = linear.shape
                linear = _half(linear, self.view("level1" if n % 2 else "level0", (3, (h + 1) // 2, (w + 1) // 2)))
            if linear.shape[1] < 8 or linear.shape[2] < 8:
                return
            yield linear


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
    mixed, term = work.view("mixed", linear.shape), work.view("pair", linear.shape)[0]
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


def _compare(
    a: np.ndarray, mu1: np.ndarray, variance: np.ndarray, denominator: np.ndarray, b: np.ndarray, work: _Work
) -> tuple[np.ndarray, np.ndarray]:
    """(SSIM mean and 4-norm per channel), (ringing and blurring, mean and 4-norm, per channel),
    of candidate `b` against reference `a` (with its blurred mean, variance and 1 + |a - mu1|)."""
    shape = b.shape
    mu2, s22, s12 = (work.view(name, shape) for name in ("mu2", "s22", "s12"))
    product, t1, t2, t3 = (work.view(name, shape) for name in ("product", "t1", "t2", "t3"))
    _blur(b, mu2, work)
    _blur(np.multiply(b, b, out=product), s22, work)
    _blur(np.multiply(a, b, out=product), s12, work)
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
    ssim = np.empty(6)
    ssim[0::2] = _mean(d)
    ssim[1::2] = _mean(_fourth(d, t2)) ** 0.25
    ratio = t3  # (1 + |b - mu2|) / (1 + |a - mu1|) - 1
    np.subtract(b, mu2, out=ratio)
    np.abs(ratio, out=ratio)
    ratio += 1.0
    np.divide(ratio, denominator, out=ratio)
    ratio -= 1.0
    ringing, blurring = np.maximum(ratio, 0.0, out=t1), np.maximum(np.negative(ratio, out=t2), 0.0, out=t2)
    edges = np.empty(12)
    edges[0::4] = _mean(ringing)
    edges[2::4] = _mean(blurring)
    edges[1::4] = _mean(_fourth(ringing, t3)) ** 0.25
    edges[3::4] = _mean(_fourth(blurring, t3)) ** 0.25
    return ssim, edges


def _fourth(values: np.ndarray, out: np.ndarray) -> np.ndarray:
    np.multiply(values, values, out=out)
    return np.multiply(out, out, out=out)


def _mean(values: np.ndarray) -> np.ndarray:
    return values.reshape(3, -1).mean(axis=1, dtype=np.float64)
