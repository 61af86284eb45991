"""Super-resolution quality and speed: every registered model against Lanczos3, on corpus photos.

    .venv/bin/python benchmarks/sr_quality.py              # full photos (~2 min on 2 cores)
    .venv/bin/python benchmarks/sr_quality.py --quick      # centre 512x512 crops
    .venv/bin/python benchmarks/sr_quality.py --json out.json --record

Quality: each photo (../shared/corpus/photos when present, else the photos in tests/corpus) is
taken as the truth, cropped to a multiple of the scale, reduced by the scale with libvips
Lanczos3 (`resize(1/s, kernel="lanczos3")`, centre-aligned; `--downscale box` uses an area average
instead), enlarged back, and compared with the truth on Y (BT.601 luma, 16..235), 8 px of border
left out: PSNR, and SSIM (Gaussian window sigma 1.5, the usual constants). Enlarged with:

  lanczos3      a true, centre-aligned Lanczos3 (separable, 6 taps a phase). The bar is measured
                against this one.
  pipeline      what delivery does without a model: origin.imaging.resample.resize_exact, a polyphase
                Lanczos3 made of libvips convolutions (equal to lanczos3 within 1/255).
  vips-resize   plain `resize(s, kernel="lanczos3")`, which the pipeline used up to PIPELINE_VERSION 1:
                libvips upsizes with a bicubic interpolator whatever the kernel, and half an output
                pixel off the centre-aligned grid of its own downsizing, so it scores 2-4 dB lower.
  <model>       each registered model through origin.superres.runtime.Upscaler (tiles and all); x4 also
                as x2 twice when an x2 model exists, to show which is better.

Speed: 1000x750 -> 2000x1500 (and -> 4000x3000 for x4), p50 of --runs runs after a warm-up, with
--threads onnxruntime threads, on each device this machine has (CPU; CUDA with onnxruntime-gpu
and a GPU), next to libvips resize on the same image. The process's CPU time per run is printed
too: on a shared machine it tells what the wall time would be on idle cores (about CPU / threads).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pyvips

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from origin.imaging.resample import resize_exact  # noqa: E402
from origin.superres.registry import BUILTIN_DIR, ModelSpec, available_models  # noqa: E402
from origin.superres.runtime import Upscaler  # noqa: E402

BASELINES = ("lanczos3", "pipeline", "vips-resize")
SHARED_PHOTOS = REPO.parent / "shared" / "corpus" / "photos"
TEST_PHOTOS = [
    REPO / "tests" / "corpus" / name
    for name in ("flower_640x427.jpg", "rocket_640x427.jpg", "chelsea_cat_451x300.png", "srgb_reference_640x400.jpg")
]
BORDER = 8


# ------------------------------------------------------------------ metrics
def luma(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.float64)
    return 16 + (65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]) / 255


def _crop(y: np.ndarray) -> np.ndarray:
    return y[BORDER:-BORDER, BORDER:-BORDER]


def psnr_y(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((_crop(luma(a)) - _crop(luma(b))) ** 2).mean())
    return 10 * math.log10(255**2 / max(mse, 1e-12))


def _blur(y: np.ndarray) -> np.ndarray:
    image = pyvips.Image.new_from_array(np.ascontiguousarray(y, dtype=np.float32))
    return image.gaussblur(1.5, min_ampl=0.005, precision="float").numpy().astype(np.float64)


def ssim_y(a: np.ndarray, b: np.ndarray) -> float:
    x, y = _crop(luma(a)), _crop(luma(b))
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = _blur(x), _blur(y)
    sxx, syy, sxy = _blur(x * x) - mx * mx, _blur(y * y) - my * my, _blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return float(_crop(s).mean())  # the blur's own border is left out too


# ------------------------------------------------------------------ resamplers
def lanczos3_weights(scale: int) -> np.ndarray:
    """The reference Lanczos3, written out here on purpose rather than imported: it is the truth the
    pipeline's origin.imaging.resample is measured against (the same holds for tests.support.images)."""
    offsets = np.arange(-3, 4, dtype=np.float64)
    weights = np.zeros((scale, 7))
    for p in range(scale):
        x = offsets - ((p + 0.5) / scale - 0.5)
        w = np.sinc(x) * np.sinc(x / 3)
        w[np.abs(x) >= 3] = 0
        weights[p] = w / w.sum()
    return weights


def lanczos3_up(rgb: np.ndarray, scale: int) -> np.ndarray:
    """Centre-aligned separable Lanczos3 enlargement, edges extended by copying."""
    w = lanczos3_weights(scale).astype(np.float32)
    h, wd = rgb.shape[:2]
    x = np.pad(rgb.astype(np.float32), ((3, 3), (3, 3), (0, 0)), mode="edge")
    rows = np.empty((h + 6, wd * scale, rgb.shape[2]), np.float32)
    for p in range(scale):
        rows[:, p::scale] = sum(w[p, k] * x[:, k : k + wd] for k in range(7))
    out = np.empty((h * scale, wd * scale, rgb.shape[2]), np.float32)
    for p in range(scale):
        out[p::scale] = sum(w[p, k] * rows[k : k + h] for k in range(7))
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def vips_resize_up(lr: pyvips.Image, scale: int) -> np.ndarray:
    return lr.resize(scale, kernel="lanczos3").numpy()


def downscale(hr: pyvips.Image, scale: int, how: str) -> pyvips.Image:
    lr = hr.shrink(scale, scale) if how == "box" else hr.resize(1 / scale, kernel="lanczos3")
    return lr.crop(0, 0, hr.width // scale, hr.height // scale)


def load_photo(path: Path, crop: int | None) -> pyvips.Image:
    image = pyvips.Image.new_from_file(str(path)).autorot()
    if image.hasalpha():
        image = image.flatten(background=[255])
    if image.interpretation != "srgb" or image.format != "uchar" or image.bands != 3:
        image = image.colourspace("srgb").cast("uchar")
    if crop:
        w, h = min(crop, image.width), min(crop, image.height)
        image = image.crop((image.width - w) // 2, (image.height - h) // 2, w, h)
    return image.copy_memory()


# ------------------------------------------------------------------ runs
def quality(photos: list[Path], upscaler: Upscaler, models: list[ModelSpec], args: argparse.Namespace) -> dict:
    """{scale: {method: {photo: (psnr, ssim)}}}"""
    scales = sorted({m.scale for m in models} | ({4} if any(m.scale == 2 for m in models) else set()))
    scales = [s for s in scales if not args.scales or s in args.scales]
    results: dict[int, dict[str, dict[str, tuple[float, float]]]] = {}
    for scale in scales:
        methods: dict[str, dict[str, tuple[float, float]]] = {}
        for path in photos:
            hr = load_photo(path, args.crop)
            hr = hr.crop(0, 0, hr.width - hr.width % scale, hr.height - hr.height % scale).copy_memory()
            truth = hr.numpy()
            lr = downscale(hr, scale, args.downscale).copy_memory()
            outputs = {
                "lanczos3": lanczos3_up(lr.numpy(), scale),
                "pipeline": resize_exact(lr, lr.width * scale, lr.height * scale).numpy(),
                "vips-resize": vips_resize_up(lr, scale),
            }
            for spec in [m for m in models if m.scale == scale]:
                outputs[spec.label] = Upscaler([spec], threads=args.threads).upscale(lr, scale).numpy()
            if scale == 4 and any(m.scale == 2 for m in models):
                x2 = [m for m in models if m.scale == 2]
                chain = Upscaler(x2, threads=args.threads)
                outputs[chain.label(4)] = chain.upscale(lr, 4).numpy()
            for method, out in outputs.items():
                methods.setdefault(method, {})[path.name] = (psnr_y(out, truth), ssim_y(out, truth))
            line = "  ".join(f"{m} {v[path.name][0]:.2f}" for m, v in methods.items())
            print(f"x{scale} {path.name} ({hr.width}x{hr.height}): {line}", file=sys.stderr, flush=True)
        results[scale] = methods
    return results


def latency(models: list[ModelSpec], args: argparse.Namespace) -> list[dict]:
    photo = next(p for p in (SHARED_PHOTOS / "fallenleaf_2560x1600.jpg", TEST_PHOTOS[0]) if p.is_file())
    src = load_photo(photo, None).thumbnail_image(1000, height=750, size="force").copy_memory()
    rows = []

    def timed(fn) -> tuple[float, float, float]:
        """p50 and min wall seconds, and p50 CPU seconds of this process (all threads): on a shared
        machine the CPU time says what the wall time would be on idle cores (about cpu / threads)."""
        fn()  # warm-up
        times, cpu = [], []
        for _ in range(args.runs):
            c0, start = os.times(), time.perf_counter()
            fn()
            c1 = os.times()
            times.append(time.perf_counter() - start)
            cpu.append(c1.user - c0.user + c1.system - c0.system)
        return statistics.median(times), min(times), statistics.median(cpu)

    for scale in sorted({m.scale for m in models} | {4}):
        p50, best, cpu = timed(lambda s=scale: resize_exact(src, src.width * s, src.height * s).copy_memory())
        rows.append(
            {
                "method": "pipeline",
                "device": "cpu (libvips)",
                "scale": scale,
                "p50_s": p50,
                "min_s": best,
                "cpu_s": cpu,
            }
        )
    devices = (
        [True, False] if "CUDAExecutionProvider" in __import__("onnxruntime").get_available_providers() else [False]
    )
    for use_cuda in devices:
        for scale in sorted({m.scale for m in models} | {4}):
            candidates = [[m] for m in models if m.scale == scale]
            if scale == 4:
                candidates.append([m for m in models if m.scale == 2])
            for group in candidates:
                upscaler = Upscaler(group, threads=args.threads, use_cuda=use_cuda)
                if not upscaler.can_upscale(scale):
                    continue
                p50, best, cpu = timed(lambda u=upscaler, s=scale: u.upscale(src, s))
                rows.append(
                    {
                        "method": upscaler.label(scale),
                        "device": f"{upscaler.device} {upscaler.providers(scale)[0]}",
                        "threads": args.threads,
                        "scale": scale,
                        "p50_s": p50,
                        "min_s": best,
                        "cpu_s": cpu,
                        "estimate_s": upscaler.estimate_seconds(src.width, src.height, scale),
                    }
                )
    return rows


def summarise(results: dict) -> dict:
    summary = {}
    for scale, methods in results.items():
        base = methods["lanczos3"]
        for method, per_photo in methods.items():
            gains = [per_photo[p][0] - base[p][0] for p in per_photo]
            pipeline_gains = [per_photo[p][0] - methods["pipeline"][p][0] for p in per_photo]
            summary[(scale, method)] = {
                "mean_psnr": statistics.mean(v[0] for v in per_photo.values()),
                "median_psnr": statistics.median(v[0] for v in per_photo.values()),
                "mean_ssim": statistics.mean(v[1] for v in per_photo.values()),
                "mean_gain": statistics.mean(gains),
                "median_gain": statistics.median(gains),
                "min_gain": min(gains),
                "mean_gain_vs_pipeline": statistics.mean(pipeline_gains),
                "median_gain_vs_pipeline": statistics.median(pipeline_gains),
            }
    return summary


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def print_tables(results: dict, summary: dict, speed: list[dict], args: argparse.Namespace, source: str) -> None:
    """Markdown tables, ready for the README."""
    crop = f", centre {args.crop} px crops" if args.crop else ""
    print(f"\nY-PSNR (dB) / SSIM on Y; {source}; reduced with {args.downscale}{crop}")
    for scale, methods in results.items():
        names = list(methods)
        model = next((n for n in names if n not in BASELINES), None)
        print(f"\n**x{scale}**\n")
        print(_row(["photo", *names, f"{model} - lanczos3" if model else ""]))
        print(_row(["---"] * (len(names) + 2)))
        for p in methods[names[0]]:
            gain = f"{methods[model][p][0] - methods['lanczos3'][p][0]:+.2f}" if model else ""
            print(_row([p, *(f"{methods[n][p][0]:.2f} / {methods[n][p][1]:.4f}" for n in names), gain]))
        print()
        head = ["x" + str(scale), "mean", "median", "mean SSIM", "gain mean", "gain median", "gain min"]
        print(_row([*head, "vs pipeline mean", "vs pipeline median"]))
        print(_row(["---"] * (len(head) + 2)))
        for n in names:
            v = summary[(scale, n)]
            print(
                _row(
                    [n, f"{v['mean_psnr']:.2f}", f"{v['median_psnr']:.2f}", f"{v['mean_ssim']:.4f}"]
                    + [f"{v[k]:+.2f}" for k in ("mean_gain", "median_gain", "min_gain")]
                    + [f"{v[k]:+.2f}" for k in ("mean_gain_vs_pipeline", "median_gain_vs_pipeline")]
                )
            )
    if speed:
        print(
            f"\nLatency, 1000x750 input, p50 of {args.runs} runs after a warm-up, {args.threads} onnxruntime threads\n"
        )
        print(_row(["method", "device", "output", "p50 ms", "min ms", "CPU ms (all threads)", "estimate_seconds ms"]))
        print(_row(["---"] * 7))
        for r in speed:
            est = f"{r['estimate_s'] * 1000:.0f}" if "estimate_s" in r else ""
            out = f"{1000 * r['scale']}x{750 * r['scale']}"
            wall = [f"{r['p50_s'] * 1000:.0f}", f"{r['min_s'] * 1000:.0f}", f"{r['cpu_s'] * 1000:.0f}"]
            print(_row([r["method"], r["device"], out, *wall, est]))


def record(summary: dict, speed: list[dict], results: dict, args: argparse.Namespace, source: str) -> None:
    """Write the figures into the built-in registry.json entries they belong to."""
    path = BUILTIN_DIR / "registry.json"
    registry = json.loads(path.read_text())
    for entry in registry["models"]:
        label = f"{entry['name']}@{entry['version']}"
        scale = entry["scale"]
        s = summary.get((scale, label))
        if s is not None:
            entry["quality"] = {
                "benchmark": "benchmarks/sr_quality.py" + (f" --crop {args.crop}" if args.crop else ""),
                "photos": source,
                "downscale": args.downscale,
                "metric": "Y (BT.601) PSNR dB and SSIM, 8 px border left out",
                "mean_y_psnr": round(s["mean_psnr"], 3),
                "median_y_psnr": round(s["median_psnr"], 3),
                "mean_ssim": round(s["mean_ssim"], 4),
                "gain_over_lanczos3_db": {
                    "mean": round(s["mean_gain"], 3),
                    "median": round(s["median_gain"], 3),
                    "min": round(s["min_gain"], 3),
                },
                "gain_over_pipeline_db": {
                    "mean": round(s["mean_gain_vs_pipeline"], 3),
                    "median": round(s["median_gain_vs_pipeline"], 3),
                },
                "per_photo": {
                    p: {
                        "y_psnr": round(v[0], 3),
                        "ssim": round(v[1], 4),
                        "lanczos3_y_psnr": round(results[scale]["lanczos3"][p][0], 3),
                    }
                    for p, v in results[scale][label].items()
                },
            }
        for r in speed:
            if r["method"] == label and r["scale"] == scale:
                device = r["device"].split()[0]
                entry.setdefault("speed", {})[device] = {
                    "threads": args.threads,
                    "input": "1000x750",
                    "p50_s": round(r["p50_s"], 4),
                    "min_s": round(r["min_s"], 4),
                    "cpu_s": round(r["cpu_s"], 4),
                    "load_average_1min": round(os.getloadavg()[0], 2),  # the machine is shared
                    "output_mp_per_s": round(1000 * 750 * scale * scale / 1e6 / r["p50_s"], 2),
                }
    path.write_text(json.dumps(registry, indent=2) + "\n")
    print(f"\nrecorded in {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="centre 512x512 crops, 3 timing runs")
    ap.add_argument("--crop", type=int, default=None, help="centre crop of each photo (px)")
    ap.add_argument("--downscale", choices=("lanczos3", "box"), default="lanczos3")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--photos", type=Path, nargs="*", help="photos to use instead of the corpus")
    ap.add_argument("--models", type=Path, nargs="*", default=[], help="extra model folders (with registry.json)")
    ap.add_argument("--scales", type=int, nargs="*", help="only these scales (default: all)")
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--no-quality", action="store_true")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--record", action="store_true", help="write the figures into models/registry.json")
    args = ap.parse_args()
    if args.quick:
        args.crop, args.runs = args.crop or 512, min(args.runs, 3)
    pyvips.cache_set_max(0)

    if args.photos:
        photos, source = args.photos, "given photos"
    elif SHARED_PHOTOS.is_dir():
        photos, source = sorted(SHARED_PHOTOS.iterdir()), "../shared/corpus/photos"
    else:
        photos, source = [p for p in TEST_PHOTOS if p.is_file()], "tests/corpus photos (no ../shared)"
    models = available_models(args.models)
    if not models:
        raise SystemExit("no super-resolution model registered")
    print(
        f"{len(photos)} photos from {source}; models: {', '.join(m.label for m in models)}; "
        f"{os.cpu_count()} CPUs, {args.threads} threads",
        file=sys.stderr,
    )
    upscaler = Upscaler(models, threads=args.threads)
    results = {} if args.no_quality else quality(photos, upscaler, models, args)
    summary = summarise(results)
    speed = [] if args.no_speed else latency(models, args)
    print_tables(results, summary, speed, args, source)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "source": source,
                    "downscale": args.downscale,
                    "crop": args.crop,
                    "threads": args.threads,
                    "per_photo": {
                        f"x{s}": {m: {p: {"y_psnr": v[0], "ssim": v[1]} for p, v in pp.items()} for m, pp in ms.items()}
                        for s, ms in results.items()
                    },
                    "summary": {f"x{s} {m}": v for (s, m), v in summary.items()},
                    "latency": speed,
                },
                indent=2,
            )
        )
    if args.record:
        record(summary, speed, results, args, source)


if __name__ == "__main__":
    main()
