"""Encoder settings by measurement: bytes at equal SSIMULACRA2, and CPU-ms, on the corpus photos.

For each photo the reference is the 800 px rendition the pipeline makes before it encodes (libvips
thumbnail, sRGB, 8-bit). Every candidate setting of every format encodes it over a ladder of qualities;
each result is decoded and scored with SSIMULACRA2 (PyPI `ssimulacra2`) against the reference. Per
setting and target score, bytes and CPU-ms are interpolated on each photo's (score, log bytes) curve,
and the table prints their medians over the photos relative to the current default: the setting with
the fewest bytes at equal quality for the CPU it costs is the one to ship (origin/core/formats.py).

    .venv/bin/pip install ssimulacra2          # benchmark-only; not a dependency of the server
    .venv/bin/python benchmarks/encoders.py [--photos N] [--width 800] [--json FILE]

CPU-ms are process CPU time of one encode with libvips on one thread (min of two runs), so they add
up the encoder's own threads too; compare them within one run.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("VIPS_CONCURRENCY", "1")  # before pyvips loads: one libvips thread, stable CPU-ms

import pyvips  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SHARED_PHOTOS = ROOT.parent / "shared" / "corpus" / "photos"
LOCAL_PHOTOS = ROOT / "tests" / "corpus"

# Candidate settings per format: the libvips saver's options besides Q. "(default)" marks what the
# server ships (origin.core.formats.EncodeSettings); the tables are relative to it.
SETTINGS: dict[str, dict[str, dict[str, object]]] = {
    "jpeg": {
        "baseline huffman-optimised": {"optimize_coding": True},
        "progressive": {"optimize_coding": True, "interlace": True},
        "progressive + trellis": {"optimize_coding": True, "interlace": True, "trellis_quant": True},
        "progressive + trellis + deringing": {
            "optimize_coding": True,
            "interlace": True,
            "trellis_quant": True,
            "overshoot_deringing": True,
        },
        "progressive + scans": {"optimize_coding": True, "interlace": True, "optimize_scans": True},
        "progressive + quant table 3": {"optimize_coding": True, "interlace": True, "quant_table": 3},
        "baseline + quant table 3": {"quant_table": 3},
        "baseline huffman-optimised + quant table 3 (default)": {"optimize_coding": True, "quant_table": 3},
        "baseline huffman-optimised + quant table 3, 4:4:4": {
            "optimize_coding": True,
            "quant_table": 3,
            "subsample_mode": "off",
        },
    },
    "webp": {
        "effort 0": {"effort": 0},
        "effort 1": {"effort": 1},
        "effort 2 (default)": {"effort": 2},
        "effort 3": {"effort": 3},
        "effort 4": {"effort": 4},
        "effort 2 + smart subsample": {"effort": 2, "smart_subsample": True},
        "effort 4 + smart subsample": {"effort": 4, "smart_subsample": True},
        "effort 5": {"effort": 5},
        "effort 6": {"effort": 6},
        "effort 6 + smart subsample": {"effort": 6, "smart_subsample": True},
        "effort 5, preset photo": {"effort": 5, "preset": "photo"},
        "effort 5, preset picture": {"effort": 5, "preset": "picture"},
        "effort 5 + smart subsample": {"effort": 5, "smart_subsample": True},
    },
    "avif": {
        "effort 0": {"compression": "av1", "effort": 0},
        "effort 1": {"compression": "av1", "effort": 1},
        "effort 2": {"compression": "av1", "effort": 2},
        "effort 3": {"compression": "av1", "effort": 3},
        "effort 0, 4:4:4": {"compression": "av1", "effort": 0, "subsample_mode": "off"},
        "effort 1, 4:4:4": {"compression": "av1", "effort": 1, "subsample_mode": "off"},
        # libaom's tuning (libheif passes `tune` on): libheif's default here equals "iq".
        "effort 0, tune ssim": {"compression": "av1", "effort": 0, "tune": "ssim"},
        "effort 1, tune ssim": {"compression": "av1", "effort": 1, "tune": "ssim"},
        "effort 1, tune psnr": {"compression": "av1", "effort": 1, "tune": "psnr"},
        "effort 2, tune ssim": {"compression": "av1", "effort": 2, "tune": "ssim"},
        "effort 0, 10-bit": {"compression": "av1", "effort": 0, "bitdepth": 10},
        "effort 1, 10-bit (default)": {"compression": "av1", "effort": 1, "bitdepth": 10},
        "effort 2, 10-bit": {"compression": "av1", "effort": 2, "bitdepth": 10},
        "effort 3, 10-bit": {"compression": "av1", "effort": 3, "bitdepth": 10},
        "effort 4, 10-bit": {"compression": "av1", "effort": 4, "bitdepth": 10},
    },
}
SAVERS = {"jpeg": "jpegsave_buffer", "webp": "webpsave_buffer", "avif": "heifsave_buffer"}
LADDERS = {
    "jpeg": (45, 55, 65, 72, 78, 84, 90),
    "webp": (45, 55, 65, 72, 78, 84, 90),
    "avif": (25, 35, 45, 52, 60, 70, 80),
}
TARGETS = (65.0, 75.0, 82.0)  # SSIMULACRA2: 65 "medium", 75 "high" (what q80 JPEG gives), 82 "very high"


def score(reference: pyvips.Image, data: bytes) -> float:
    from ssimulacra2 import compute_ssimulacra2

    decoded = pyvips.Image.new_from_buffer(data, "")
    if decoded.bands > 3:
        decoded = decoded.flatten(background=[255, 255, 255])
    ref_png = io.BytesIO(reference.pngsave_buffer(compression=1))
    out_png = io.BytesIO(decoded.colourspace("srgb").pngsave_buffer(compression=1))
    return float(compute_ssimulacra2(ref_png, out_png))


def cpu_ms(image: pyvips.Image, fmt: str, quality: int, options: dict[str, object]) -> tuple[bytes, float]:
    save = getattr(image, SAVERS[fmt])
    best, data = math.inf, b""
    for _ in range(2):
        started = time.process_time()
        data = save(Q=quality, keep="none", **options)
        best = min(best, time.process_time() - started)
    return data, best * 1000


def reference_of(path: Path, width: int) -> pyvips.Image:
    image = pyvips.Image.thumbnail(str(path), width, export_profile="srgb")
    if image.hasalpha():
        image = image.flatten(background=[255, 255, 255])
    if image.bands == 1:
        image = image.colourspace("srgb")
    return image.cast("uchar").copy_memory()


def at_score(points: list[tuple[float, float, float]], target: float) -> tuple[float, float] | None:
    """(bytes, cpu_ms) at `target` by linear interpolation of log(bytes) and cpu over score; None when the
    ladder does not reach it."""
    points = sorted(points)
    for (s0, b0, c0), (s1, b1, c1) in zip(points, points[1:], strict=False):
        if s0 <= target <= s1 and s1 > s0:
            t = (target - s0) / (s1 - s0)
            return math.exp(math.log(b0) + t * (math.log(b1) - math.log(b0))), c0 + t * (c1 - c0)
    return None


def photos(limit: int) -> list[Path]:
    folder = SHARED_PHOTOS if SHARED_PHOTOS.is_dir() else LOCAL_PHOTOS
    found = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".png") and p.stat().st_size > 50_000)
    return found[:limit]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photos", type=int, default=8, help="how many corpus photos (default 8)")
    ap.add_argument("--width", type=int, default=800)
    ap.add_argument("--formats", default="jpeg,webp,avif")
    ap.add_argument("--settings", help="only settings whose name contains one of these (comma-separated)")
    ap.add_argument("--json", type=Path, help="also write every measurement here")
    args = ap.parse_args()
    try:
        import ssimulacra2  # noqa: F401
    except ImportError:
        print("needs the ssimulacra2 package: .venv/bin/pip install ssimulacra2", file=sys.stderr)
        return 2
    formats = args.formats.split(",")
    chosen = photos(args.photos)
    print(
        f"{len(chosen)} photos from {chosen[0].parent}, {args.width} px wide; libvips {pyvips.version(0)}."
        f"{pyvips.version(1)}, one thread"
    )
    rows: list[dict[str, object]] = []
    for path in chosen:
        reference = reference_of(path, args.width)
        for fmt in formats:
            for name, options in SETTINGS[fmt].items():
                if args.settings and "(default)" not in name and not any(w in name for w in args.settings.split(",")):
                    continue
                for q in LADDERS[fmt]:
                    data, ms = cpu_ms(reference, fmt, q, options)
                    rows.append(
                        {
                            "photo": path.name,
                            "format": fmt,
                            "setting": name,
                            "q": q,
                            "bytes": len(data),
                            "cpu_ms": round(ms, 2),
                            "score": round(score(reference, data), 3),
                        }
                    )
        print(f"  {path.name}: done", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    report(rows, formats)
    return 0


def report(rows: list[dict[str, object]], formats: list[str]) -> None:
    for fmt in formats:
        names = [n for n in SETTINGS[fmt] if any(r["setting"] == n and r["format"] == fmt for r in rows)]
        default = next(n for n in names if "(default)" in n)
        print(f"\n{fmt.upper()}: bytes and CPU-ms at equal SSIMULACRA2, median over photos, relative to {default!r}")
        print(f"{'setting':46}" + "".join(f"  bytes@{t:g}  cpu@{t:g}" for t in TARGETS) + "   q for 75")
        for name in names:
            cells = []
            for target in TARGETS:
                ratios_b, ratios_c = [], []
                for photo in sorted({str(r["photo"]) for r in rows}):

                    def curve(setting: str, photo: str = photo, fmt: str = fmt) -> list[tuple[float, float, float]]:
                        return [
                            (float(r["score"]), float(r["bytes"]), float(r["cpu_ms"]))
                            for r in rows
                            if r["photo"] == photo and r["format"] == fmt and r["setting"] == setting
                        ]

                    mine, base = at_score(curve(name), target), at_score(curve(default), target)
                    if mine and base:
                        ratios_b.append(mine[0] / base[0])
                        ratios_c.append(mine[1] / base[1])
                cells.append(
                    f"  {statistics.median(ratios_b):9.3f}  {statistics.median(ratios_c):6.2f}"
                    if ratios_b
                    else f"  {'-':>9}  {'-':>6}"
                )
            qs = [_q_for(rows, fmt, name, photo, 75.0) for photo in sorted({str(r["photo"]) for r in rows})]
            qs = [q for q in qs if q is not None]
            print(f"{name:46}" + "".join(cells) + (f"   {statistics.median(qs):5.1f}" if qs else "       -"))
        base_ms = statistics.median(float(r["cpu_ms"]) for r in rows if r["format"] == fmt and r["setting"] == default)
        print(f"  (the default's median CPU-ms per encode over the ladder: {base_ms:.1f})")


def _q_for(rows: list[dict[str, object]], fmt: str, setting: str, photo: str, target: float) -> float | None:
    pts = sorted(
        (float(r["score"]), float(r["q"]))
        for r in rows
        if r["photo"] == photo and r["format"] == fmt and r["setting"] == setting
    )
    for (s0, q0), (s1, q1) in zip(pts, pts[1:], strict=False):
        if s0 <= target <= s1 and s1 > s0:
            return q0 + (target - s0) / (s1 - s0) * (q1 - q0)
    return None


if __name__ == "__main__":
    sys.exit(main())
