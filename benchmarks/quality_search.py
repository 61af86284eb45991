"""How well `q=auto` hits its SSIMULACRA2 target, and what the search costs next to one encode.

For each photo, width and format, the finished rendition (libvips thumbnail, as the server makes
it) is searched for each target with origin.imaging.quality.auto_quality, encoded once at the
chosen quality, decoded, and scored whole against the unencoded rendition. Prints one line per
case and a summary: the error against the target (median, worst), trial encodes, search CPU-ms
against the final encode's CPU-ms.

    .venv/bin/python benchmarks/quality_search.py                 # corpus photos (../shared or tests/corpus)
    .venv/bin/python benchmarks/quality_search.py --photos 12 --widths 320,800,1600
    .venv/bin/python benchmarks/quality_search.py --fit           # refit PRIORS (q = a + b * target)
    .venv/bin/python benchmarks/quality_search.py --downscale     # the rejected alternative: score a downscale
    .venv/bin/python benchmarks/quality_search.py --whole         # the upgrade's search: trials scored whole

Run it alone: CPU timings on a busy machine are noise.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pyvips  # noqa: E402

from origin.core.formats import EncodeSettings  # noqa: E402
from origin.imaging import quality  # noqa: E402
from origin.imaging.encode import encode  # noqa: E402
from origin.imaging.ssimulacra2 import Reference, rgb_array  # noqa: E402


def photos(count: int, skip: int = 0) -> list[Path]:
    shared = ROOT.parent / "shared" / "corpus" / "photos"
    folder = shared if shared.is_dir() else ROOT / "tests" / "corpus"
    return sorted(p for p in folder.glob("*.jpg"))[skip : skip + count]


def score_of(reference: Reference, data: bytes) -> float:
    return reference.score(rgb_array(pyvips.Image.new_from_buffer(data, "")))


def cpu(fn):  # noqa: ANN001, ANN201
    started = time.process_time()
    out = fn()
    return out, 1000 * (time.process_time() - started)


DOWNSCALE = 0


def search_downscaled(
    image: pyvips.Image, fmt: str, target: float, settings: EncodeSettings, enlarged: bool = False
) -> quality.Search:
    """The alternative the module docstring rejects: search on a downscale (whole, no tiles)."""
    small = image.thumbnail_image(DOWNSCALE) if image.width > DOWNSCALE else image
    saved, quality.WHOLE_UP_TO = quality.WHOLE_UP_TO, 10**9
    try:
        return quality.auto_quality(small.copy_memory(), fmt, target, settings)
    finally:
        quality.WHOLE_UP_TO = saved


def q_for(image: pyvips.Image, fmt: str, target: float, settings: EncodeSettings, reference: Reference) -> float:
    """The (fractional) quality whose whole encode scores `target`, by bisection and interpolation."""
    lo, hi = 1, 100
    s_lo, s_hi = (
        score_of(reference, encode(image, fmt, lo, settings)),
        score_of(reference, encode(image, fmt, hi, settings)),
    )
    if not s_lo <= target <= s_hi:
        return float(lo if target < s_lo else hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        s = score_of(reference, encode(image, fmt, mid, settings))
        lo, s_lo, hi, s_hi = (mid, s, hi, s_hi) if s < target else (lo, s_lo, mid, s)
    return lo + (target - s_lo) / (s_hi - s_lo) if s_hi != s_lo else float(lo)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=8)
    parser.add_argument("--skip", type=int, default=0, help="start after this many photos (held-out checks)")
    parser.add_argument("--widths", default="320,800,1280")
    parser.add_argument("--formats", default="jpeg,webp,avif")
    parser.add_argument("--targets", default="60,70,80")
    parser.add_argument("--fit", action="store_true", help="fit q = a + b * target per format on whole encodes")
    parser.add_argument(
        "--fit-bias", action="store_true", help="fit the sampled-search correction (quality.SAMPLE_BIAS) on the errors"
    )
    parser.add_argument("--downscale", type=int, default=0, help="search on a downscale this wide instead")
    parser.add_argument(
        "--whole", action="store_true", help="score trials on the whole image: the upgrade's search (edge.upgrades)"
    )
    parser.add_argument("--grid", type=int, default=0, help="tiles per side of the sample (default: quality.GRIDS)")
    parser.add_argument("--tile", type=int, default=quality.TILE, help="tile size of the sample")
    args = parser.parse_args()
    settings = EncodeSettings()
    pyvips.cache_set_max(0)
    quality.TILE = args.tile
    if args.grid:
        quality.GRID, quality.GRIDS = args.grid, {}
    global DOWNSCALE
    DOWNSCALE = args.downscale
    widths = [int(w) for w in args.widths.split(",")]
    formats = args.formats.split(",")
    targets = [float(t) for t in args.targets.split(",")]
    files = photos(args.photos, args.skip)
    if args.fit_bias:
        quality.SAMPLE_BIAS = {}
    print(f"{len(files)} photos, widths {widths}, formats {formats}, targets {targets}")

    if args.fit:
        for fmt in formats:
            xs, ys = [], []
            for path in files:
                for width in widths:
                    image = pyvips.Image.thumbnail(str(path), width).copy_memory()
                    reference = Reference(rgb_array(image))
                    for target in targets:
                        xs.append(target)
                        ys.append(q_for(image, fmt, target, settings, reference))
            b, a = np.polyfit(xs, ys, 1)
            spread = statistics.pstdev(y - (a + b * x) for x, y in zip(xs, ys, strict=True))
            print(f"  {fmt}: q = {a:.1f} + {b:.3f} * target  (residual sd {spread:.1f} q steps)")
        return 0

    errors: dict[str, list[float]] = {f: [] for f in formats}
    ratios: dict[str, list[float]] = {f: [] for f in formats}
    trials: dict[str, list[int]] = {f: [] for f in formats}
    sampled: dict[str, list[tuple[float, float, float]]] = {f: [] for f in formats}  # target, log2 px, error
    for path in files:
        for width in widths:
            image = pyvips.Image.thumbnail(str(path), width).copy_memory()
            enlarged = image.width > pyvips.Image.new_from_file(str(path)).width  # searched whole
            reference = Reference(rgb_array(image))
            for fmt in formats:
                for target in targets:
                    find = search_downscaled if args.downscale else quality.auto_quality
                    if args.whole:  # as the upgrade searches: with the better encoder settings
                        better = settings.upgraded(fmt) or settings
                        search, search_ms = cpu(lambda: find(image, fmt, target, better, whole=True))  # noqa: B023
                    else:
                        search, search_ms = cpu(lambda: find(image, fmt, target, settings, enlarged=enlarged))  # noqa: B023
                    data, encode_ms = cpu(lambda: encode(image, fmt, search.quality, search.settings))  # noqa: B023
                    got = score_of(reference, data)
                    errors[fmt].append(got - target)
                    ratios[fmt].append(search_ms / max(encode_ms, 0.01))
                    trials[fmt].append(search.encodes)
                    grid = quality.GRIDS.get(fmt, quality.GRID)
                    if not enlarged and quality.sample(image, grid) is not image:
                        sampled[fmt].append((target, quality.sample_scale(image, grid), got - target))
                    print(
                        f"  {path.name[:24]:24} {image.width:5}x{image.height:<5} {fmt:4} target {target:4.0f}: "
                        f"q {search.quality:3}  got {got:5.1f} ({got - target:+5.1f})  {len(data):7} B  "
                        f"search {search_ms:6.1f} CPU-ms ({search.encodes} trials)  encode {encode_ms:6.1f}",
                        flush=True,
                    )
    print("\nsummary: error = whole-image SSIMULACRA2 at the chosen q minus the target")
    for fmt in formats:
        e = errors[fmt]
        inside = sum(abs(x) <= 3 for x in e)
        print(
            f"  {fmt:4}  median error {statistics.median(e):+5.2f}  worst {max(e, key=abs):+5.1f}  "
            f"within +-3: {inside}/{len(e)}  trials {statistics.mean(trials[fmt]):.1f}  "
            f"search / encode CPU: median {statistics.median(ratios[fmt]):.2f}x"
        )
    if args.fit_bias:
        print("\nquality.SAMPLE_BIAS (error = a + b * (target - 70) + c * log2(pixels / sample pixels)):")
        for fmt in formats:
            rows = sampled[fmt]
            if len(rows) < 4:
                continue
            design = np.array([[1.0, t - 70.0, scale] for t, scale, _ in rows])
            coef, *_ = np.linalg.lstsq(design, np.array([e for _, _, e in rows]), rcond=None)
            left = [e - float(design[i] @ coef) for i, (_, _, e) in enumerate(rows)]
            spread = statistics.pstdev(left)
            print(f'    "{fmt}": ({coef[0]:.2f}, {coef[1]:.3f}, {coef[2]:.2f}),  # residual sd {spread:.1f}')
    return 0


if __name__ == "__main__":
    sys.exit(main())
