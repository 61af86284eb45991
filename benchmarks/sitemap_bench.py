"""Sitemap build at scale: 1,000,000 pages x 3 images through `edge sitemap build`, plain and gzip.

Makes, in a temporary directory, a few hundred distinct masters (the demo photos, each with unique
bytes appended so each has its own version hash) and a CSV manifest of PAGES pages with IMAGES
masters each; then runs the real command (manifest reader, version lookups, signing, XML, files) in
a child process per variant, so the peak RSS measured (VmHWM) is the build's own. Prints wall time,
pages/s, peak RSS, number of files and total bytes; a second plain run over the same output shows the
cost of a rebuild where nothing changed.

Run: .venv/bin/python benchmarks/sitemap_bench.py [--pages N] [--images N] [--masters N] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a file: make the packages importable without install

DEMO = ROOT / "edge" / "demo" / "masters"
BENCH_KEYS = "bench:sitemap-bench-key-0123456789abcdef"
BASE_URL = "https://img.example.com"
CHILD_TIMEOUT_S = 1800


def make_masters(directory: Path, count: int) -> list[str]:
    """`count` masters under directory/products, each a demo photo plus a unique trailing comment."""
    photos = sorted(DEMO.iterdir())
    (directory / "products").mkdir(parents=True)
    paths = []
    for i in range(count):
        source = photos[i % len(photos)]
        path = f"products/item-{i:04d}{source.suffix}"
        (directory / path).write_bytes(source.read_bytes() + f"\nsitemap bench master {i}\n".encode())
        paths.append(path)
    return paths


def make_manifest(path: Path, pages: int, images: int, masters: list[str]) -> None:
    """page,master,rule rows: page i shows `images` different masters."""
    n = len(masters)
    with open(path, "w", newline="") as f:
        f.write("page,master,rule\n")
        batch = []
        for i in range(pages):
            page = f"https://shop.example.com/p/{i:07d}?ref=sitemap&lang=en"
            for k in range(images):
                batch.append(f"{page},{masters[(i * 7 + k * 101) % n]},product\n")
            if len(batch) >= 30_000:
                f.writelines(batch)
                batch.clear()
        f.writelines(batch)


def peak_rss_mb() -> float:
    """Peak resident set size of this process (VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(argv: list[str]) -> None:
    """Runs in the child process: the real `edge sitemap build`, then one JSON line of measurements."""
    import contextlib
    import io

    from edge.cli import build_parser
    from edge.cli.common import config_from_args

    args = build_parser().parse_args(argv)
    config = config_from_args(args)
    output = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(output):
        code = args.func(args, config)
    wall = time.perf_counter() - start
    print(json.dumps({"code": code, "wall_s": wall, "peak_rss_mb": peak_rss_mb(), "summary": output.getvalue()}))


def run_build(work: Path, manifest: Path, out: Path, gzip: bool) -> dict:
    argv = ["sitemap", "build", "--masters", str(work / "masters"), "--pages", str(manifest)]
    argv += ["--base-url", BASE_URL, "--out", str(out)] + (["--gzip"] if gzip else [])
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGE_")}
    env["EDGE_KEYS"] = BENCH_KEYS
    done = subprocess.run(
        [sys.executable, __file__, "--child", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"build failed ({done.returncode}):\n{done.stderr[-4000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["code"] != 0:
        raise RuntimeError(f"build exited {result['code']}:\n{done.stderr[-4000:]}")
    files = sorted(p for p in out.iterdir() if p.name.startswith("sitemap-"))
    result["files"] = len(files)
    result["bytes"] = sum(p.stat().st_size for p in files)
    return result


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=1_000_000)
    parser.add_argument("--images", type=int, default=3, help="masters per page")
    parser.add_argument("--masters", type=int, default=300, help="distinct masters")
    parser.add_argument("--json", help="also write the figures to this file")
    opts = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="sitemap-bench-"))
    try:
        t = time.perf_counter()
        masters = make_masters(work / "masters", opts.masters)
        manifest = work / "pages.csv"
        make_manifest(manifest, opts.pages, opts.images, masters)
        print(
            f"manifest: {opts.pages:,} pages x {opts.images} images ({manifest.stat().st_size / 1e6:.0f} MB CSV), "
            f"{opts.masters} masters, made in {time.perf_counter() - t:.1f} s; "
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
        )
        results = {}
        for label, gzip, out in (
            ("plain", False, work / "out-plain"),
            ("plain, rebuild unchanged", False, work / "out-plain"),
            ("gzip", True, work / "out-gzip"),
        ):
            r = run_build(work, manifest, out, gzip)
            results[label] = r
            print(
                f"{label:>25}: {r['wall_s']:6.1f} s, {opts.pages / r['wall_s']:9,.0f} pages/s, "
                f"peak RSS {r['peak_rss_mb']:5.0f} MB, {r['files']} files, {r['bytes'] / 1e6:7.1f} MB"
            )
            print("    " + r["summary"].strip().replace("\n", "\n    "))
        if opts.json:
            Path(opts.json).write_text(json.dumps({"pages": opts.pages, "images": opts.images, **results}, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
