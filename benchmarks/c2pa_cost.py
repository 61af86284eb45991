"""What C2PA Content Credentials cost a miss: the same 800w JPEG miss with `[provenance] c2pa` off
and on, through the server's own renderer (read, verify, render, encode, and sign), in process.

Masters are corpus photos given a camera's manifest by a throwaway certificate chain (as
tests/unit/test_credentials.py does); every miss is rendered anew (no rendition cache, no shared
decode). Prints the median CPU-ms per miss off and on, the ratio (goal: at most 1.15), the median
signing time, and the bytes the manifest adds. Falls back to tests/corpus when ../shared is absent.

Run: .venv/bin/python benchmarks/c2pa_cost.py [--repeats 9] [--photos 3]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a file: make `edge` and `origin` importable without install

from edge.config import load_config  # noqa: E402
from edge.services import build_services  # noqa: E402
from origin.core.request import RenditionOptions  # noqa: E402
from tests.support.c2pa import make_chain, with_manifest  # noqa: E402

PHOTOS = ROOT.parent / "shared" / "corpus" / "photos"
FALLBACK = ROOT / "tests" / "corpus"
TARGET = 1.15


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def photos(count: int) -> list[Path]:
    found = sorted(p for p in PHOTOS.glob("*.jpg") if p.stat().st_size > 500_000) if PHOTOS.is_dir() else []
    if not found:
        print(f"{PHOTOS} not found: using the test corpus' small photos", file=sys.stderr)
        found = sorted(FALLBACK.glob("*_640x*.jpg"))
    return found[:count]


async def misses(
    envs: list[dict[str, str]], masters: list[str], repeats: int
) -> list[tuple[list[float], list[float], list[int]]]:
    """Per configuration: CPU seconds per miss, signing seconds per miss, body sizes. The
    configurations take turns miss by miss, so the machine's drift falls on each alike."""
    all_services = [build_services(load_config(env=env)) for env in envs]
    results: list[tuple[list[float], list[float], list[int]]] = [([], [], []) for _ in envs]
    try:
        for _ in range(repeats):
            for path in masters:
                for services, (spent, signing, sizes) in zip(all_services, results, strict=True):
                    renderer = services.renditions.renderer
                    record = await services.masters.lookup(path)
                    job = renderer.job(record, RenditionOptions(w=800, fm="jpeg", q=80), "jpeg")
                    started = cpu()
                    made = await renderer.render(job)
                    spent.append(cpu() - started)
                    signing.append(made.timings.get("credentials", 0.0))
                    sizes.append(len(made.rendition.body))
    finally:
        for services in all_services:
            services.renditions.renderer.shutdown()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--photos", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        chain = make_chain(root)
        masters = root / "masters"
        masters.mkdir()
        names = []
        for photo in photos(args.photos):
            (masters / photo.name).write_bytes(with_manifest(photo.read_bytes(), "image/jpeg", photo.name, chain))
            names.append(photo.name)
        base = {
            "EDGE_MASTERS": str(masters),
            "EDGE_KEYS": "bench:c2pa-bench-key-0123456789",
            "EDGE_CACHE_DISK_DIR": str(root / "cache"),
            "EDGE_CACHE_DECODED_MB": "0",  # every miss decodes its master, as a first touch does
            "EDGE_SERVER_RENDER_WORKERS": "1",
            "EDGE_SUPERRES_MODELS_DIR": "",
        }
        cert, key = chain.origin
        on = {
            **base,
            "EDGE_PROVENANCE_C2PA": "true",
            "EDGE_PROVENANCE_CERT": str(cert),
            "EDGE_PROVENANCE_KEY": str(key),
        }
        asyncio.run(misses([base, on], names, 1))  # warm up: imports, the signer
        (off_cpu, _, off_bytes), (on_cpu, signing, on_bytes) = asyncio.run(misses([base, on], names, args.repeats))
    off, with_c2pa = statistics.median(off_cpu) * 1000, statistics.median(on_cpu) * 1000
    print(f"800w JPEG q80 misses from {len(names)} photos ({', '.join(names)}), {args.repeats} rounds each")
    print(f"  c2pa off: {off:7.1f} CPU-ms per miss (median), {statistics.median(off_bytes):,.0f} bytes")
    print(f"  c2pa on:  {with_c2pa:7.1f} CPU-ms per miss (median), {statistics.median(on_bytes):,.0f} bytes")
    print(f"  signing:  {statistics.median(signing) * 1000:7.1f} ms per miss (median, wall)")
    ratio = with_c2pa / off
    print(f"  ratio on/off: {ratio:.3f}  (goal <= {TARGET}: {'met' if ratio <= TARGET else 'NOT met'})")


if __name__ == "__main__":
    main()
