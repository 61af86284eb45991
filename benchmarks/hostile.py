"""Hostile masters under load: the red-team cases of the reliability issue, re-run against the real server.

Starts `edge serve` (one process, defaults otherwise) on a folder holding ordinary photos and
hostile masters built here: 1x1 masters asked at 1280 px, a 4000x1 strip asked square, a
progressive JPEG of many scans, a PNG whose iTXt chunk inflates to 38 MB of XMP, a 5 MB WebP
declaring 100,000 frames, a GIF declaring 100,000 frames, and (when ../shared/corpus is there)
the largest corpus photos at distinct widths for memory. For `--seconds` it runs, all at once:
  - 16 miss clients, each asking for renditions nobody asked for before, of hostile and big masters;
  - 2 hit clients asking for renditions already in memory;
  - one /healthz poller.
It prints status counts (a 500 is a failure), hit and /healthz latency (p50/p99), what each hostile
kind was answered and how long it took, the server's peak RSS, and how long the server's CPU
took to return to idle after the load stopped. Targets from the issue: memory-hit p99 < 50 ms,
/healthz p99 < 20 ms, no 500, peak RSS < 600 MB, idle within 2 s.

    python benchmarks/hostile.py                # 60 s
    python benchmarks/hostile.py --seconds 20   # a smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import shutil
import struct
import sys
import tempfile
import time
import zlib
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
import pyvips  # noqa: E402
from render_bench import Server, machine, percentile, proc_cpu_seconds, proc_status_kb  # noqa: E402

from origin.core.request import RenditionOptions  # noqa: E402

CORPUS = ROOT / "tests" / "corpus"
SHARED_PHOTOS = ROOT.parent / "shared" / "corpus" / "photos"
MISS_CLIENTS, HIT_CLIENTS = 16, 2
TARGETS = {"hit_p99_ms": 50.0, "healthz_p99_ms": 20.0, "peak_rss_mb": 600.0, "idle_after_s": 2.0}


def webp_frames(n: int) -> bytes:
    vp8x = b"VP8X" + struct.pack("<I", 10) + bytes([0x12, 0, 0, 0]) + (99).to_bytes(3, "little") * 2
    body = b"WEBP" + vp8x + b"ANIM" + struct.pack("<I", 6) + bytes(6)
    body += (b"ANMF" + struct.pack("<I", 40) + bytes(40)) * n
    return b"RIFF" + struct.pack("<I", len(body)) + body


def gif_frames(n: int) -> bytes:
    frame = b"\x2c" + struct.pack("<4H", 0, 0, 1, 1) + b"\x00" + b"\x02\x02\x44\x01\x00"
    return b"GIF89a" + struct.pack("<2H", 1, 1) + b"\x80\x00\x00" + bytes(6) + frame * n + b"\x3b"


def png_with_xmp(megabytes: int) -> bytes:
    data = (CORPUS / "chelsea_cat_451x300.png").read_bytes()
    xmp = b"<x:xmpmeta xmlns:x='adobe:ns:meta/'>" + b" " * (megabytes << 20) + b"</x:xmpmeta>"
    payload = b"XML:com.adobe.xmp\0\x01\x00\0\0" + zlib.compress(xmp, 9)
    chunk = struct.pack(">I", len(payload)) + b"iTXt" + payload + struct.pack(">I", zlib.crc32(b"iTXt" + payload))
    return data[:33] + chunk + data[33:]


def build_masters(root: Path) -> dict[str, list[tuple[str, dict[str, object]]]]:
    """Masters in `root`, and per kind the (master, options) a miss client may ask for."""
    root.mkdir()
    for name in ("tiny_1x1.jpg", "tiny_1x1_transparent.png", "strip_4000x1.png", "progressive_66_scans_320x214.jpg"):
        shutil.copy(CORPUS / name, root / name)
    (root / "frames_100k.webp").write_bytes(webp_frames(100_000))
    (root / "frames_100k.gif").write_bytes(gif_frames(100_000))
    (root / "xmp_38mb.png").write_bytes(png_with_xmp(38))
    big = sorted(SHARED_PHOTOS.glob("*.jpg"), key=lambda p: p.stat().st_size)[-3:] if SHARED_PHOTOS.is_dir() else []
    if not big:  # standalone: a large photo made from a small one
        pyvips.Image.new_from_file(str(CORPUS / "flower_640x427.jpg")).resize(7).jpegsave(str(root / "big.jpg"), Q=92)
        big = [root / "big.jpg"]
    for photo in big:
        if photo.parent != root:
            shutil.copy(photo, root / photo.name)
    widths = range(300, 1300, 7)
    return {
        "tiny at 1280": [("tiny_1x1.jpg", {"w": 1280 + i}) for i in range(400)]
        + [("tiny_1x1_transparent.png", {"w": 1280, "h": 1280 - i}) for i in range(400)],
        "strip squared": [("strip_4000x1.png", {"w": 1000 + i, "h": 1000}) for i in range(400)],
        "many scans": [("progressive_66_scans_320x214.jpg", {"w": 100 + i}) for i in range(400)],
        "100k frames": [("frames_100k.webp", {"w": 100 + i}) for i in range(200)]
        + [("frames_100k.gif", {"w": 100 + i}) for i in range(200)],
        "38 MB XMP": [("xmp_38mb.png", {"w": 100 + i}) for i in range(400)],
        "big photo": [(p.name, {"w": w, "fm": "avif"}) for p in big for w in widths],
    }


async def drive(server: Server, asks: dict[str, list[tuple[str, dict[str, object]]]], seconds: float) -> dict:
    hit_urls = [server.base + server.signer.sign_url("tiny_1x1.jpg", RenditionOptions(w=16 + i)) for i in range(8)]
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(timeout=120, limits=limits, trust_env=False) as client:
        for url in hit_urls:
            assert (await client.get(url)).status_code == 200
        queue = [(kind, m, o) for kind, items in asks.items() for m, o in items]
        queue = [queue[i] for i in sorted(range(len(queue)), key=lambda i: (i * 7919) % len(queue))]  # interleaved
        work = iter(queue)
        statuses: Counter[str] = Counter()
        by_kind: dict[str, Counter[int]] = defaultdict(Counter)
        kind_ms: dict[str, list[float]] = defaultdict(list)
        hits_ms: list[float] = []
        health_ms: list[float] = []
        peak = [0]
        deadline = time.monotonic() + seconds

        async def miss_client() -> None:
            while time.monotonic() < deadline:
                item = next(work, None)
                if item is None:
                    return
                kind, master, options = item
                url = server.base + server.signer.sign_url(master, RenditionOptions(**options))  # type: ignore[arg-type]
                started = time.perf_counter()
                try:
                    r = await client.get(url, headers={"Accept": "image/avif,image/webp,*/*"})
                    status = r.status_code
                except httpx.HTTPError as e:
                    status = -1
                    statuses[type(e).__name__] += 1
                kind_ms[kind].append((time.perf_counter() - started) * 1000)
                by_kind[kind][status] += 1
                statuses[str(status)] += 1
                if status == 503:
                    await asyncio.sleep(0.05)

        async def hit_client() -> None:
            for i in itertools.count():
                if time.monotonic() >= deadline:
                    return
                started = time.perf_counter()
                r = await client.get(hit_urls[i % len(hit_urls)])
                hits_ms.append((time.perf_counter() - started) * 1000)
                statuses[f"hit {r.status_code}"] += 1
                await asyncio.sleep(0.01)

        def health_thread() -> None:
            # A thread and a blocking client of its own: this loop's own stalls (18 clients in one
            # Python process) must not count as the server's.
            with httpx.Client(timeout=30, trust_env=False) as own:
                while time.monotonic() < deadline:
                    started = time.perf_counter()
                    own.get(server.base + "/healthz")
                    health_ms.append((time.perf_counter() - started) * 1000)
                    peak[0] = max(peak[0], proc_status_kb(server.pid, "VmRSS"))
                    time.sleep(0.1)

        async def health() -> None:
            await asyncio.to_thread(health_thread)

        await asyncio.gather(
            *(miss_client() for _ in range(MISS_CLIENTS)), *(hit_client() for _ in range(HIT_CLIENTS)), health()
        )
    return {
        "statuses": dict(statuses),
        "by_kind": {k: {str(s): n for s, n in v.items()} for k, v in by_kind.items()},
        "kind_p50_ms": {k: round(percentile(v, 50), 1) for k, v in kind_ms.items()},
        "kind_max_ms": {k: round(max(v), 1) for k, v in kind_ms.items()},
        "hit_p50_ms": round(percentile(hits_ms, 50), 1),
        "hit_p99_ms": round(percentile(hits_ms, 99), 1),
        "healthz_p50_ms": round(percentile(health_ms, 50), 1),
        "healthz_p99_ms": round(percentile(health_ms, 99), 1),
        "peak_rss_mb": round(max(peak[0], proc_status_kb(server.pid, "VmHWM")) / 1024, 1),
    }


def idle_after(pid: int, limit_s: float = 30.0) -> float:
    """Seconds until the server uses under 5 % of a core over a 0.5 s window."""
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        before = proc_cpu_seconds(pid)
        time.sleep(0.5)
        if proc_cpu_seconds(pid) - before < 0.025:
            return round(time.monotonic() - started - 0.5, 1)
    return limit_s


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--json", help="also write the figures to this file")
    p.add_argument("--env", action="append", default=[], help="NAME=VALUE for the server (repeatable)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="edge-hostile-") as tmp:
        asks = build_masters(Path(tmp) / "masters")
        env = {"EDGE_SERVER_ACCESS_LOG": "false", **dict(e.split("=", 1) for e in args.env)}
        server = Server(Path(tmp) / "masters", Path(tmp) / "cache", Path(tmp) / "server.log", env)
        try:
            server.wait_healthy()
            rss_at_start = proc_status_kb(server.pid, "VmRSS")
            figures = asyncio.run(drive(server, asks, args.seconds))
            figures["idle_after_s"] = idle_after(server.pid)
            figures["rss_at_start_mb"] = round(rss_at_start / 1024, 1)
            figures["alive"] = server.process.poll() is None
        finally:
            server.stop()
    figures["machine"] = machine()
    print(json.dumps(figures, indent=2))
    failures = [f"{name} {figures[name]} > {limit}" for name, limit in TARGETS.items() if figures[name] > limit]
    if any(s.startswith("5") and s != "503" and s != "504" for s in figures["statuses"]):
        failures.append("a 5xx other than 503/504")
    if "500" in figures["statuses"]:
        failures.append("500s")
    print("targets: " + ("all met" if not failures else "MISSED: " + "; ".join(failures)))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
