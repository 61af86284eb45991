"""Overload: drive the real server past saturation for a while, and check that it degrades as designed.

Starts `edge serve` on a free loopback port (nothing else is ever contacted) with a small render
queue, warms a set of cache hits, then runs two kinds of closed-loop clients until the time is up:
  - hit clients ask for renditions already cached (one in ten with If-None-Match, for 304s);
  - miss clients ask for renditions nobody asked for before (distinct widths of corpus masters),
    more at once than the render workers and queue hold, so the server must turn some away.
It reports status counts, latency of hits and misses (p50/p99), per-minute figures, and the
server's RSS drift from minute 2 to the end. Invariants: only 200, 304 and 503 (each 503 with
Retry-After), hits stay fast while misses queue (hit p50 < miss p50 / 4 and hit p99 < miss p99 / 2),
RSS drift < 10 % (runs of 5 minutes or more), and the server is alive and healthy at the end.

Every loop is bounded by time and by count; the run stops by itself.

    python benchmarks/overload.py                 # 10 minutes
    python benchmarks/overload.py --minutes 0.5   # a smoke run
    python benchmarks/overload.py --json out.json

See benchmarks/README.md ("Overload") for the figures measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a file: make `edge` importable without install
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
import render_bench  # noqa: E402
from render_bench import machine, percentile, proc_status_kb  # noqa: E402

from origin.core.request import RenditionOptions  # noqa: E402

CORPUS = ROOT / "tests" / "corpus"
# Masters for misses: real photos of 0.2-2.5 MP, so one render takes tens of ms here.
MISS_MASTERS = [
    "flower_640x427.jpg",
    "rocket_640x427.jpg",
    "chelsea_cat_451x300.png",
    "display_p3_640x400.jpg",
    "adobergb_640x400.jpg",
    "srgb_reference_640x400.jpg",
    "exif_orientation_6_640x360.jpg",
    "exif_orientation_3_640x360.jpg",
    "cmyk_640x400.jpg",
    "gps_exif_xmp_1920x1280.jpg",
    "rgba_alpha_1600x1000.webp",
    "really_png.jpg",
]
MISS_FORMATS = ["jpeg", "webp", "avif"]
HIT_URLS = 48
ALLOWED = {200, 304, 503}
MAX_REQUESTS = 5_000_000  # a bound besides the clock
REQUEST_TIMEOUT_S = 60.0
RSS_SAMPLE_S = 1.0
REJECTED_PAUSE_S = 0.05  # a turned-away miss client waits this long (not Retry-After: keep the pressure on)


@dataclass
class Sample:
    t: float  # seconds since the load started
    kind: str  # "hit" or "miss"
    status: int
    seconds: float
    retry_after: bool
    cache: str  # "hit", "rendered", or "" for errors


@dataclass
class Run:
    samples: list[Sample] = field(default_factory=list)
    rss: list[tuple[float, int]] = field(default_factory=list)  # (seconds since start, kB)
    errors: Counter[str] = field(default_factory=Counter)  # client-side failures: time-outs, resets
    sent: int = 0


class Server(render_bench.Server):
    """`edge serve` on 127.0.0.1 with a small render queue and bounded caches, in a fresh folder."""

    def __init__(self, tmp: Path, workers: int, queue_limit: int, memory_mb: int, disk_mb: int):
        self.masters = tmp / "masters"
        self.masters.mkdir()
        for name in MISS_MASTERS:
            shutil.copy(CORPUS / name, self.masters / name)
        limits = {
            "EDGE_CACHE_MEMORY_MB": str(memory_mb),
            "EDGE_CACHE_DISK_MB": str(disk_mb),
            "EDGE_SERVER_RENDER_WORKERS": str(workers),
            "EDGE_SERVER_QUEUE_LIMIT": str(queue_limit),
            "EDGE_SERVER_ACCESS_LOG": "false",  # a 10-minute run would write a GB of log
        }
        super().__init__(self.masters, tmp / "cache", tmp / "server.log", extra_env=limits)

    def option_url(self, master: str, **options: object) -> str:
        return self.base + self.signer.sign_url(master, RenditionOptions(**options))  # type: ignore[arg-type]

    def alive(self) -> bool:
        return self.process.poll() is None


class MissUrls:
    """Renditions nobody asked for before, from one fixed distribution (so that a miss costs the same
    in minute 10 as in minute 1): a random master, width 64..480, format and quality, each
    combination handed out once."""

    WIDTHS = range(64, 481)
    QUALITIES = range(40, 91)

    def __init__(self, server: Server, seed: int):
        self.server = server
        self.rng = random.Random(seed)
        self.used: set[tuple[str, int, str, int]] = set()

    def take(self) -> str | None:
        for _ in range(100):  # bounded: ~1.3 million combinations, a 10-minute run uses a few thousand
            key = (
                self.rng.choice(MISS_MASTERS),
                self.rng.choice(self.WIDTHS),
                self.rng.choice(MISS_FORMATS),
                self.rng.choice(self.QUALITIES),
            )
            if key not in self.used:
                self.used.add(key)
                master, width, fmt, q = key
                return self.server.option_url(master, w=width, fm=fmt, q=q)
        return None


async def warm_hits(server: Server, client: httpx.AsyncClient) -> list[tuple[str, str]]:
    """(url, etag) of HIT_URLS renditions, rendered now so that the load only ever hits them."""
    # Hits: small WebPs (widths the misses never use), as thumbnails on a page would be.
    urls = [server.option_url(MISS_MASTERS[i % len(MISS_MASTERS)], w=16 + i // len(MISS_MASTERS) * 8, fm="webp")
            for i in range(HIT_URLS)]  # fmt: skip
    warmed = []
    for url in urls:  # bounded: one pass, each retried at most 20 times
        for _ in range(20):
            r = await client.get(url)
            if r.status_code == 200:
                warmed.append((url, r.headers["etag"]))
                break
            await asyncio.sleep(0.2)
        else:
            raise RuntimeError(f"could not warm {url}: {r.status_code} {r.text[:200]}")
    return warmed


def _cache(r: httpx.Response) -> str:
    status = r.headers.get("cache-status", "")
    if r.status_code == 304 or "; hit" in status:
        return "hit"
    return "rendered" if r.status_code == 200 else ""


async def drive(server: Server, minutes: float, hit_clients: int, miss_clients: int, seed: int) -> Run:
    run = Run()
    limits = httpx.Limits(max_connections=hit_clients + miss_clients + 4)
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S, limits=limits, trust_env=False) as client:
        hits = await warm_hits(server, client)
        misses = MissUrls(server, seed)
        started = time.monotonic()
        deadline = started + minutes * 60

        def more() -> bool:
            return time.monotonic() < deadline and run.sent < MAX_REQUESTS and server.alive()

        async def one(kind: str, url: str, headers: dict[str, str]) -> int:
            run.sent += 1
            t0 = time.monotonic()
            try:
                r = await client.get(url, headers=headers)
            except httpx.HTTPError as e:
                run.errors[type(e).__name__] += 1
                return 0
            run.samples.append(
                Sample(t0 - started, kind, r.status_code, time.monotonic() - t0, "retry-after" in r.headers, _cache(r))
            )
            return r.status_code

        async def hit_client(rng: random.Random) -> None:
            while more():
                url, etag = rng.choice(hits)
                await one("hit", url, {"If-None-Match": etag} if rng.random() < 0.1 else {})

        async def miss_client() -> None:
            while more():
                url = misses.take()
                if url is None:
                    return
                if await one("miss", url, {}) == 503:
                    await asyncio.sleep(REJECTED_PAUSE_S)

        async def rss_sampler() -> None:
            while more():
                kb = proc_status_kb(server.pid, "VmRSS")
                if kb:
                    run.rss.append((time.monotonic() - started, kb))
                await asyncio.sleep(RSS_SAMPLE_S)

        tasks = [hit_client(random.Random(seed + i)) for i in range(hit_clients)]
        tasks += [miss_client() for _ in range(miss_clients)]
        await asyncio.gather(rss_sampler(), *tasks)
    return run


def _stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0, "p50_ms": float("nan"), "p99_ms": float("nan")}
    return {"n": len(values), "p50_ms": percentile(values, 50) * 1000, "p99_ms": percentile(values, 99) * 1000}


def rss_drift(rss: list[tuple[float, int]], seconds: float) -> dict[str, float]:
    """RSS from minute 2 (or 40 % into a run shorter than 5 minutes) to the end: mean of the 10 s after
    that point against the mean of the last 10 s."""
    if not rss:
        return {"from_s": 0.0, "start_mb": 0.0, "end_mb": 0.0, "drift_pct": float("nan"), "max_mb": 0.0}
    start = 120.0 if seconds >= 300 else 0.4 * seconds
    first = [kb for t, kb in rss if start <= t < start + 10] or [rss[0][1]]
    last = [kb for t, kb in rss if t >= rss[-1][0] - 10]
    a, b = sum(first) / len(first), sum(last) / len(last)
    return {
        "from_s": start,
        "start_mb": a / 1024,
        "end_mb": b / 1024,
        "drift_pct": (b - a) / a * 100,
        "max_mb": max(kb for _, kb in rss) / 1024,
    }


def summarise(run: Run, seconds: float) -> dict[str, object]:
    statuses = Counter(s.status for s in run.samples)
    by_kind = {k: Counter(s.status for s in run.samples if s.kind == k) for k in ("hit", "miss")}
    hit_times = [s.seconds for s in run.samples if s.cache == "hit"]
    miss_times = [s.seconds for s in run.samples if s.cache == "rendered"]
    rejected_times = [s.seconds for s in run.samples if s.status == 503]
    minutes: dict[int, list[Sample]] = defaultdict(list)
    for s in run.samples:
        minutes[int(s.t // 60)].append(s)
    per_minute = []
    for m in sorted(minutes):
        ss = minutes[m]
        rss = [kb for t, kb in run.rss if m * 60 <= t < (m + 1) * 60]
        per_minute.append(
            {
                "minute": m + 1,
                "requests": len(ss),
                "statuses": dict(sorted(Counter(s.status for s in ss).items())),
                "hit": _stats([s.seconds for s in ss if s.cache == "hit"]),
                "miss": _stats([s.seconds for s in ss if s.cache == "rendered"]),
                "rss_mb": (sum(rss) / len(rss) / 1024) if rss else float("nan"),
            }
        )
    return {
        "seconds": seconds,
        "requests": len(run.samples),
        "client_errors": dict(run.errors),
        "statuses": dict(sorted(statuses.items())),
        "by_kind": {k: dict(sorted(v.items())) for k, v in by_kind.items()},
        "unexpected_statuses": {str(k): v for k, v in statuses.items() if k not in ALLOWED},
        "503_without_retry_after": sum(1 for s in run.samples if s.status == 503 and not s.retry_after),
        "hit": _stats(hit_times),
        "miss": _stats(miss_times),
        "rejected": _stats(rejected_times),
        "rss": rss_drift(run.rss, seconds),
        "per_minute": per_minute,
    }


def check(figures: dict[str, object], server_alive: bool, rss_limit_pct: float | None) -> list[str]:
    """The invariants; an empty list when all hold."""
    failed = []
    if figures["unexpected_statuses"] or figures["client_errors"]:
        failed.append(f"statuses other than 200/304/503: {figures['unexpected_statuses']} {figures['client_errors']}")
    if figures["503_without_retry_after"]:
        failed.append(f"{figures['503_without_retry_after']} responses 503 without Retry-After")
    hit, miss = figures["hit"], figures["miss"]
    if not hit["n"] or not miss["n"] or not figures["statuses"].get(503):  # type: ignore[union-attr]
        failed.append("the run did not reach saturation (no 503) or served no hits or no misses")
    elif not (hit["p99_ms"] < 0.5 * miss["p99_ms"] and hit["p50_ms"] < 0.25 * miss["p50_ms"]):  # type: ignore[index]
        # Hits never wait for a render, but on a small machine they share its cores with the renders.
        failed.append(
            f"hits are not fast next to misses: hit p50/p99 {hit['p50_ms']:.0f}/{hit['p99_ms']:.0f} ms, "  # type: ignore[index]
            f"miss p50/p99 {miss['p50_ms']:.0f}/{miss['p99_ms']:.0f} ms (want hit p50 < miss p50 / 4, "  # type: ignore[index]
            "hit p99 < miss p99 / 2)"
        )
    drift = figures["rss"]["drift_pct"]  # type: ignore[index]
    if rss_limit_pct is not None and not abs(drift) < rss_limit_pct:
        failed.append(f"RSS drift {drift:+.1f} % is over {rss_limit_pct:g} %")
    if not server_alive:
        failed.append("the server died")
    return failed


def run_overload(
    minutes: float,
    tmp: Path,
    *,
    workers: int = 2,
    queue_limit: int = 4,
    hit_clients: int = 3,
    miss_clients: int = 8,
    memory_mb: int = 32,
    disk_mb: int = 256,
    seed: int = 1,
) -> tuple[dict[str, object], bool]:
    """Run the load; return (figures, whether the server was alive and healthy at the end)."""
    server = Server(tmp, workers, queue_limit, memory_mb, disk_mb)
    try:
        server.wait_healthy()
        started = time.monotonic()
        run = asyncio.run(drive(server, minutes, hit_clients, miss_clients, seed))
        seconds = time.monotonic() - started
        alive = server.alive() and httpx.get(server.base + "/healthz", timeout=5, trust_env=False).status_code == 200
        figures = summarise(run, seconds)
        figures["config"] = {
            "workers": workers,
            "queue_limit": queue_limit,
            "hit_clients": hit_clients,
            "miss_clients": miss_clients,
            "memory_mb": memory_mb,
            "disk_mb": disk_mb,
        }
        figures["server_logged_errors"] = "Traceback" in server.log_path.read_text(errors="replace")
        return figures, alive
    finally:
        server.stop()


def report(figures: dict[str, object]) -> str:
    c, s, h, m, r, rss = (figures[k] for k in ("config", "statuses", "hit", "miss", "rejected", "rss"))
    lines = [
        f"Overload: {figures['seconds']:.0f} s, {figures['requests']} requests; {c['workers']} render workers, "  # type: ignore[index]
        f"queue {c['queue_limit']}, {c['hit_clients']} hit + {c['miss_clients']} miss clients, "  # type: ignore[index]
        f"memory cache {c['memory_mb']} MB",  # type: ignore[index]
        f"statuses: {s}  (hits {figures['by_kind']['hit']}, misses {figures['by_kind']['miss']})",  # type: ignore[index]
        f"503 without Retry-After: {figures['503_without_retry_after']}; client errors: {figures['client_errors']}",
        f"cache hits   n={h['n']:>7}  p50 {h['p50_ms']:8.1f} ms  p99 {h['p99_ms']:8.1f} ms",  # type: ignore[index]
        f"misses (200) n={m['n']:>7}  p50 {m['p50_ms']:8.1f} ms  p99 {m['p99_ms']:8.1f} ms",  # type: ignore[index]
        f"turned away  n={r['n']:>7}  p50 {r['p50_ms']:8.1f} ms  p99 {r['p99_ms']:8.1f} ms",  # type: ignore[index]
        f"RSS: {rss['start_mb']:.0f} MB at {rss['from_s']:.0f} s -> {rss['end_mb']:.0f} MB at the end "  # type: ignore[index]
        f"({rss['drift_pct']:+.1f} %), max {rss['max_mb']:.0f} MB",  # type: ignore[index]
        "",
        "minute  requests   200    304    503   hit p50/p99 ms    miss p50/p99 ms   RSS MB",
    ]
    for row in figures["per_minute"]:  # type: ignore[attr-defined]
        st = row["statuses"]
        lines.append(
            f"{row['minute']:>6} {row['requests']:>9} {st.get(200, 0):>5} {st.get(304, 0):>6} {st.get(503, 0):>6}"
            f"   {row['hit']['p50_ms']:6.1f} / {row['hit']['p99_ms']:6.1f}"
            f"   {row['miss']['p50_ms']:6.0f} / {row['miss']['p99_ms']:6.0f}   {row['rss_mb']:6.0f}"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10.0, help="how long to drive the load (default 10)")
    p.add_argument("--workers", type=int, default=2, help="render workers (default 2)")
    p.add_argument("--queue-limit", type=int, default=4, help="renders waiting before 503 (default 4)")
    p.add_argument("--hit-clients", type=int, default=3, help="concurrent clients asking for cached renditions")
    p.add_argument("--miss-clients", type=int, default=8, help="concurrent clients asking for new renditions")
    p.add_argument("--memory-mb", type=int, default=32, help="the server's memory cache (default 32)")
    p.add_argument("--disk-mb", type=int, default=256, help="the server's disk cache (default 256)")
    p.add_argument("--rss-limit", type=float, default=10.0, help="allowed RSS drift in %% (default 10)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", metavar="FILE", help="also write the figures to FILE as JSON")
    args = p.parse_args(argv)
    if not 0 < args.minutes <= 120 or not 1 <= args.workers <= 64 or not 0 <= args.queue_limit <= 1000:
        p.error("--minutes must be more than 0 and at most 120; --workers 1..64; --queue-limit 0..1000")
    if not 1 <= args.hit_clients <= 256 or not 1 <= args.miss_clients <= 256:
        p.error("--hit-clients and --miss-clients must be 1..256")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    info = machine()
    print(f"Machine: {info['cpu']}, {info['cores']} cores; Python {info['python']}, libvips {info['libvips']}")
    with tempfile.TemporaryDirectory(prefix="overload-") as tmp:
        try:
            figures, alive = run_overload(
                args.minutes,
                Path(tmp),
                workers=args.workers,
                queue_limit=args.queue_limit,
                hit_clients=args.hit_clients,
                miss_clients=args.miss_clients,
                memory_mb=args.memory_mb,
                disk_mb=args.disk_mb,
                seed=args.seed,
            )
        except KeyboardInterrupt:
            print("\ninterrupted; the server was stopped", file=sys.stderr)
            return 130
        except (RuntimeError, subprocess.SubprocessError) as e:
            print(f"overload: {e}", file=sys.stderr)
            return 1
    figures["machine"] = info
    # The drift bar is for runs long enough to have a minute 2 to measure from.
    failed = check(figures, alive, args.rss_limit if args.minutes >= 5 else None)
    print(report(figures))
    print("\n" + ("all invariants hold" if not failed else "FAILED:\n  " + "\n  ".join(failed)))
    if args.json:
        Path(args.json).write_text(json.dumps({**figures, "failed": failed}, indent=2) + "\n")
        print(f"figures written to {args.json}")
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
