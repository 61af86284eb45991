"""Render benchmark: the real server against plain pyvips, on one 10-20 MP photo.

Prints, per rendition (800 and 320 px wide; JPEG q80, WebP q80, AVIF q50):
  - cold-cache miss latency of the real server over loopback HTTP (p50/p95), next to the
    floor: the same thumbnail + save done in-process with plain pyvips (p50/p95);
  - where a miss spends its time, from the server's Server-Timing header;
then cache-hit requests/s at concurrency 16, and the server's peak RSS while 16 cold misses
arrive at once. Goals: miss p50 <= 1.10 x floor p50, peak RSS <= 400 MB.

Run: ./dev bench [--quick] [--repeats N] [--master PATH] [--json FILE] (see benchmarks/README.md)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import re
import resource
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a file: make `edge` and `origin` importable without install

import httpx  # noqa: E402
import pyvips  # noqa: E402

from edge.signing import Signer, parse_keys  # noqa: E402
from origin.core.formats import FORMATS, EncodeSettings  # noqa: E402
from origin.core.limits import Limits  # noqa: E402
from origin.core.master import VERSION_DIGITS  # noqa: E402
from origin.core.request import RenditionOptions  # noqa: E402
from origin.masters.index import version_hash  # noqa: E402

DEFAULT_MASTER = ROOT.parent / "shared" / "corpus" / "photos" / "seeding_dandelions_5312x2988.jpg"
FALLBACK_DIRS = (ROOT / "tests" / "corpus", ROOT / "edge" / "demo" / "masters")
BENCH_KEYS = "bench:render-bench-key-0123456789abcdefghijkl"
CONCURRENCY = 16
MISS_TARGET = 1.10  # server miss p50 / floor p50
RSS_TARGET_MB = 400
RSS_SAMPLE_S = 0.020
HTTP_TIMEOUT_S = 120.0
MAX_HIT_REQUESTS = 500_000  # a bound on the hit loop besides its duration


@dataclass(frozen=True)
class Rendition:
    width: int
    fmt: str
    q: int

    @property
    def label(self) -> str:
        return f"{self.width}w {self.fmt} q{self.q}"


RENDITIONS = [Rendition(w, fmt, q) for w in (800, 320) for fmt, q in (("jpeg", 80), ("webp", 80), ("avif", 50))]


# ------------------------------------------------------------------------------ small helpers


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile: with 15 samples, p95 is the slowest one."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_status_kb(pid: int, field_name: str) -> int:
    """A `kB` field (VmRSS, VmHWM) of /proc/<pid>/status; 0 once the process is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    m = re.search(rf"^{field_name}:\s+(\d+) kB", text, re.MULTILINE)
    return int(m.group(1)) if m else 0


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def parse_server_timing(header: str) -> dict[str, float]:
    """`fetch;dur=1.2, render;dur=80.0` -> {"fetch": 0.0012, "render": 0.08} (seconds)."""
    out = {}
    for part in header.split(","):
        m = re.fullmatch(r"\s*([\w-]+);dur=([0-9.]+)\s*", part)
        if m:
            out[m.group(1)] = float(m.group(2)) / 1000
    return out


def machine() -> dict[str, object]:
    model = "unknown CPU"
    try:
        m = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE)
        model = m.group(1) if m else model
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "libvips": ".".join(str(pyvips.version(i)) for i in range(3)),
    }


# ------------------------------------------------------------------------------ the master


def find_master(requested: str | None) -> tuple[Path, str]:
    """The photo to benchmark and a note on where it came from."""
    if requested:
        if not Path(requested).is_file():
            raise SystemExit(f"--master {requested}: no such file")
        return Path(requested), "given with --master"
    if DEFAULT_MASTER.is_file():
        return DEFAULT_MASTER, "the shared corpus default"
    candidates = []
    for folder in FALLBACK_DIRS:
        for path in folder.glob("*"):
            if path.suffix.lower() not in (".jpg", ".jpeg", ".png"):
                continue
            try:
                # fail_on=warning, as the server decodes: bombs, truncated and corrupt files drop out.
                image = pyvips.Image.new_from_file(str(path), fail_on="warning")
                pixels = image.width * image.height
                if pixels <= Limits().max_master_pixels and image.thumbnail_image(64).avg() >= 0:
                    candidates.append((pixels, path))
            except pyvips.Error:
                continue
    if not candidates:
        raise SystemExit("no master: ../shared/corpus is absent and no usable photo was found; use --master")
    path = max(candidates)[1]
    return path, f"FALLBACK: {DEFAULT_MASTER} is absent, so the largest local photo (not 10-20 MP)"


def unique_copy(data: bytes, n: int) -> bytes:
    """The same pixels in different bytes: a JPEG COM segment or a PNG tEXt chunk naming copy n.

    Rendition keys are built from the master's content hash, so only different bytes make a
    request a true miss; a comment changes the hash and nothing that is decoded.
    """
    tag = f"render-bench copy {n}".encode()
    if data[:2] == b"\xff\xd8":
        return data[:2] + b"\xff\xfe" + struct.pack(">H", len(tag) + 2) + tag + data[2:]
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        body = b"Comment\0" + tag
        chunk = struct.pack(">I", len(body)) + b"tEXt" + body + struct.pack(">I", zlib.crc32(b"tEXt" + body))
        ihdr_end = 8 + 8 + 13 + 4  # signature, then IHDR: length + type + 13 bytes + CRC
        return data[:ihdr_end] + chunk + data[ihdr_end:]
    raise SystemExit("the master must be a JPEG or a PNG (copies are made unique with a comment)")


@dataclass
class MasterCopies:
    """Copies of the master under fresh names, each used for one request only."""

    folder: Path
    suffix: str
    versions: list[str] = field(default_factory=list)
    _next: int = 0

    def name(self, n: int) -> str:
        return f"m{n:04d}{self.suffix}"

    def take(self) -> tuple[str, str]:
        """(master path, short version) of a copy no request has used yet."""
        if self._next >= len(self.versions):
            raise RuntimeError("ran out of master copies: make_copies was asked for too few")
        n = self._next
        self._next += 1
        return self.name(n), self.versions[n][:VERSION_DIGITS]

    def bytes_of(self, name: str) -> bytes:
        return (self.folder / name).read_bytes()


def make_copies(master: Path, folder: Path, count: int) -> MasterCopies:
    data = master.read_bytes()
    copies = MasterCopies(folder, master.suffix.lower())
    for n in range(count):
        copy = unique_copy(data, n)
        (folder / copies.name(n)).write_bytes(copy)
        copies.versions.append(version_hash(copy))
    if len(set(copies.versions)) != count:
        raise SystemExit("master copies share a version hash: their renditions would be cache hits")
    # The comment must change nothing that is decoded (fail_on=warning, as the server loads).
    a = pyvips.Image.new_from_buffer(data, "", fail_on="warning")
    b = pyvips.Image.new_from_buffer(copies.bytes_of(copies.name(0)), "", fail_on="warning")
    if (a.width, a.height) != (b.width, b.height) or (a - b).abs().max() != 0:
        raise SystemExit("a master copy decodes to different pixels from the master")
    return copies


# ------------------------------------------------------------------------------ the server


class Server:
    """`edge serve` as a subprocess on a free port, with a known key and a fresh, cold cache."""

    def __init__(self, masters: Path, cache_dir: Path, log_path: Path, extra_env: dict[str, str] | None = None):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.signer = Signer(parse_keys(BENCH_KEYS))
        env = {k: v for k, v in os.environ.items() if not k.startswith("EDGE_")}
        env.update(
            {
                "EDGE_KEYS": BENCH_KEYS,
                "EDGE_CACHE_DIR": str(cache_dir),
                # Room for 16 concurrent misses: with the default a burst could be answered 503.
                "EDGE_SERVER_QUEUE_LIMIT": "32",
                # One process, so the figures (RSS, CPU) are this process's; compare.py runs the default.
                "EDGE_SERVER_WORKERS": "1",
                **(extra_env or {}),
            }
        )
        self.log_path = log_path
        with open(log_path, "wb") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                [sys.executable, "-m", "edge.cli", "serve", "--masters", str(masters), "--port", str(self.port)],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the benchmark, which then stops the server
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_healthy(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(self.base + "/healthz", timeout=1, trust_env=False).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server not healthy after {timeout_s:g} s:\n{self.log_tail()}")

    def url(self, master_path: str, version: str, r: Rendition) -> str:
        # Explicit fm and q, signed like `edge sign`: no negotiation, no config defaults involved.
        opts = RenditionOptions(w=r.width, q=r.q, fm=r.fmt, v=version)
        return self.base + self.signer.sign_url(master_path, opts)

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # uvicorn shuts down cleanly on SIGTERM
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


class RssSampler:
    """Samples a process's VmRSS every 20 ms in a thread, for the whole run."""

    def __init__(self, pid: int):
        self.pid = pid
        self.samples: list[tuple[float, int]] = []  # (monotonic time, kB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(RSS_SAMPLE_S):
            kb = proc_status_kb(self.pid, "VmRSS")
            if kb:
                self.samples.append((time.monotonic(), kb))

    def peak_mb(self, since: float = 0.0) -> float:
        window = [kb for t, kb in self.samples if t >= since]
        return max(window, default=0) / 1024


# ------------------------------------------------------------------------------ the work


def floor_render(data: bytes, r: Rendition) -> bytes:
    """The compute floor: libvips' thumbnail from bytes in memory, then the saver as the server calls it.

    Saver and options from the format's row (origin.core.formats) with the default EncodeSettings
    (what the server runs with here). keep="none": the server keeps only rights metadata, which the
    corpus photos do not carry.
    """
    row = FORMATS[r.fmt]
    image = pyvips.Image.thumbnail_buffer(data, r.width)
    save = getattr(image, f"{row.saver}_buffer")
    return save(**row.options(r.q, EncodeSettings()), keep="none")


@dataclass
class MissResult:
    rendition: str
    server_s: list[float] = field(default_factory=list)
    floor_s: list[float] = field(default_factory=list)
    phases_s: dict[str, list[float]] = field(default_factory=dict)  # from Server-Timing
    server_bytes: int = 0
    floor_bytes: int = 0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        s50, f50 = statistics.median(self.server_s), statistics.median(self.floor_s)
        return {
            "server_p50_ms": s50 * 1000,
            "server_p95_ms": percentile(self.server_s, 95) * 1000,
            "floor_p50_ms": f50 * 1000,
            "floor_p95_ms": percentile(self.floor_s, 95) * 1000,
            "ratio_p50": s50 / f50,
            **{f"{k}_p50_ms": statistics.median(v) * 1000 for k, v in self.phases_s.items()},
        }


def one_miss(
    client: httpx.Client, server: Server, copies: MasterCopies, r: Rendition
) -> tuple[float, httpx.Response, str]:
    """One request for a rendition of a master no request has used: (wall s, response, master)."""
    name, version = copies.take()
    url = server.url(name, version, r)
    started = time.perf_counter()
    response = client.get(url)
    return time.perf_counter() - started, response, name


def one_floor(data: bytes, r: Rendition) -> tuple[float, bytes]:
    started = time.perf_counter()
    body = floor_render(data, r)
    return time.perf_counter() - started, body


def measure_misses(server: Server, copies: MasterCopies, r: Rendition, repeats: int) -> MissResult:
    """Server miss and floor, interleaved one by one so the machine's drift touches both alike."""
    result = MissResult(r.label)
    with httpx.Client(timeout=HTTP_TIMEOUT_S, trust_env=False) as client:
        for i in range(repeats + 1):  # the first round warms both up and is not counted
            wall, response, name = one_miss(client, server, copies, r)
            status = response.headers.get("cache-status", "")
            if response.status_code != 200:
                result.problems.append(f"HTTP {response.status_code}: {response.text[:200]}")
                continue
            if "hit" in status or "fwd=miss" not in status:
                result.problems.append(f"not a miss: Cache-Status {status!r}")
            floor_wall, floor_body = one_floor(copies.bytes_of(name), r)
            if i == 0:
                continue
            result.server_s.append(wall)
            result.floor_s.append(floor_wall)
            phases = parse_server_timing(response.headers.get("server-timing", ""))
            phases["other"] = wall - sum(phases.values())  # HTTP, checks, master inspection, cache store
            for phase, seconds in phases.items():
                result.phases_s.setdefault(phase, []).append(seconds)
            result.server_bytes, result.floor_bytes = len(response.content), len(floor_body)
    if not result.server_s:
        raise RuntimeError(f"{r.label}: no successful miss: {result.problems[:3]}")
    return result


@dataclass
class HitResult:
    client: str  # "wrk" or "httpx"
    seconds: float
    requests: int
    non_200: int
    p50_s: float
    p99_s: float
    server_cpu_s: float
    client_cpu_s: float

    def summary(self) -> dict[str, float]:
        return {
            "requests_per_s": self.requests / self.seconds,
            "p50_ms": self.p50_s * 1000,
            "p99_ms": self.p99_s * 1000,
            "server_cpu_ms_per_hit": self.server_cpu_s / max(1, self.requests) * 1000,
            "client_cpu_ms_per_hit": self.client_cpu_s / max(1, self.requests) * 1000,
        }


async def drive_hits(url: str, duration_s: float) -> tuple[int, int, list[float]]:
    """CONCURRENCY clients asking for one cached URL in a loop until the time is up."""
    latencies: list[float] = []
    non_200 = 0
    deadline = time.perf_counter() + duration_s
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal non_200
        while time.perf_counter() < deadline and len(latencies) < MAX_HIT_REQUESTS:
            started = time.perf_counter()
            response = await client.get(url)
            latencies.append(time.perf_counter() - started)
            non_200 += response.status_code != 200

    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S, limits=limits, trust_env=False) as client:
        await asyncio.gather(*(worker(client) for _ in range(CONCURRENCY)))
    return len(latencies), non_200, latencies


def hits_with_httpx(url: str, duration_s: float) -> tuple[int, int, float, float]:
    """(requests, non-200, p50 s, p99 s)."""
    requests, non_200, latencies = asyncio.run(drive_hits(url, duration_s))
    return requests, non_200, statistics.median(latencies), percentile(latencies, 99)


def _wrk_seconds(value: str, unit: str) -> float:
    return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def hits_with_wrk(url: str, duration_s: float) -> tuple[int, int, float, float]:
    """wrk with one thread: the other core is left to the server (its event loop is one thread)."""
    seconds = max(1, round(duration_s))  # wrk takes whole seconds
    cmd = ["wrk", "-t1", f"-c{CONCURRENCY}", f"-d{seconds}s", "--latency", "--timeout", "10s", url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration_s + 30, check=True).stdout
    latency = {int(p): _wrk_seconds(v, u) for p, v, u in re.findall(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s)$", out, re.M)}
    requests = re.search(r"^\s*(\d+) requests in", out, re.M)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if requests is None or 50 not in latency or 99 not in latency:
        raise RuntimeError(f"could not read wrk's output:\n{out}")
    failed = (int(bad.group(1)) if bad else 0) + (sum(map(int, errors.groups())) if errors else 0)
    return int(requests.group(1)), failed, latency[50], latency[99]


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # waited-for children only: wrk, not the server
    return usage.ru_utime + usage.ru_stime


def measure_hits(server: Server, copies: MasterCopies, duration_s: float, client: str) -> HitResult:
    name, version = copies.take()
    url = server.url(name, version, RENDITIONS[0])
    for _ in range(2):  # the first renders and stores, the second must already be a hit
        response = httpx.get(url, timeout=HTTP_TIMEOUT_S, trust_env=False)
    if response.status_code != 200 or "edge-memory; hit" not in response.headers.get("cache-status", ""):
        raise RuntimeError(f"warming the hit URL failed: {response.status_code} {response.headers}")
    drive = hits_with_wrk if client == "wrk" else hits_with_httpx
    cpu0, client0, t0 = proc_cpu_seconds(server.pid), time.process_time() + children_cpu_seconds(), time.perf_counter()
    requests, non_200, p50, p99 = drive(url, duration_s)
    seconds = time.perf_counter() - t0
    server_cpu = proc_cpu_seconds(server.pid) - cpu0
    client_cpu = time.process_time() + children_cpu_seconds() - client0
    return HitResult(client, seconds, requests, non_200, p50, p99, server_cpu, client_cpu)


@dataclass
class BurstResult:
    seconds: float
    statuses: dict[int, int]
    rss_before_mb: float
    peak_rss_mb: float
    hwm_mb: float  # the kernel's high-water mark over the server's whole life
    mix: str


async def fire_burst(urls: list[str]) -> list[int]:
    limits = httpx.Limits(max_connections=len(urls), max_keepalive_connections=len(urls))
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S, limits=limits, trust_env=False) as client:
        responses = await asyncio.gather(*(client.get(u) for u in urls))
    return [r.status_code for r in responses]


def measure_burst(server: Server, copies: MasterCopies, sampler: RssSampler) -> BurstResult:
    """CONCURRENCY cold URLs at once: each a fresh master copy, renditions taken in turn."""
    urls = []
    for i in range(CONCURRENCY):
        name, version = copies.take()
        urls.append(server.url(name, version, RENDITIONS[i % len(RENDITIONS)]))
    rss_before = proc_status_kb(server.pid, "VmRSS") / 1024
    started = time.monotonic()
    statuses = asyncio.run(fire_burst(urls))
    seconds = time.monotonic() - started
    time.sleep(5 * RSS_SAMPLE_S)  # let the sampler see the moments after the last response too
    return BurstResult(
        seconds=seconds,
        statuses=dict(Counter(statuses)),
        rss_before_mb=rss_before,
        peak_rss_mb=sampler.peak_mb(since=started),
        hwm_mb=proc_status_kb(server.pid, "VmHWM") / 1024,
        mix=f"{CONCURRENCY} distinct masters x the {len(RENDITIONS)} renditions in turn",
    )


# ------------------------------------------------------------------------------ the report


def miss_table(results: list[MissResult]) -> str:
    head = (
        f"{'rendition':<16}{'server p50':>11}{'p95':>8}{'floor p50':>11}{'p95':>8}"
        f"{'srv/floor':>10}{'bytes srv':>11}{'floor':>8}"
    )
    rows = [head, "-" * len(head)]
    for r in results:
        s = r.summary()
        rows.append(
            f"{r.rendition:<16}{s['server_p50_ms']:>11.1f}{s['server_p95_ms']:>8.1f}{s['floor_p50_ms']:>11.1f}"
            f"{s['floor_p95_ms']:>8.1f}{s['ratio_p50']:>9.2f}x{r.server_bytes:>11}{r.floor_bytes:>8}"
        )
    return "\n".join(rows)


def phase_table(results: list[MissResult]) -> str:
    phases = ["fetch", "render", "encode", "other"]
    head = f"{'rendition':<16}" + "".join(f"{p:>9}" for p in phases) + f"{'floor':>9}"
    rows = [head, "-" * len(head)]
    for r in results:
        s = r.summary()
        cells = "".join(f"{s.get(f'{p}_p50_ms', math.nan):>9.1f}" for p in phases)
        rows.append(f"{r.rendition:<16}{cells}{s['floor_p50_ms']:>9.1f}")
    return "\n".join(rows)


def verdict(met: bool) -> str:
    return "MET" if met else "NOT MET"


def report_misses(results: list[MissResult], repeats: int) -> None:
    print(f"Cold-cache misses ({repeats} sequential per rendition; ms; loopback HTTP, httpx):")
    print(miss_table(results))
    ratios = {r.rendition: r.summary()["ratio_p50"] for r in results}
    met = sum(v <= MISS_TARGET for v in ratios.values())
    worst = max(ratios, key=ratios.__getitem__)
    print(
        f"Target: miss p50 <= {MISS_TARGET:.2f} x floor p50 -> {verdict(met == len(ratios))} "
        f"({met}/{len(ratios)} renditions; worst {worst} at {ratios[worst]:.2f}x)"
    )
    print("\nWhere a miss goes (server p50 ms from Server-Timing; other = wall - the phases: HTTP,")
    print("signature, master stat/read/hash/probe of the new master, cache store):")
    print(phase_table(results))
    for r in results:
        for problem in sorted(set(r.problems)):
            print(f"WARNING {r.rendition}: {problem}")


def report_hits(hits: HitResult) -> None:
    s = hits.summary()
    print(
        f"\nCache hits: {hits.requests} requests in {hits.seconds:.1f} s at concurrency {CONCURRENCY} "
        f"(one URL, {RENDITIONS[0].label}; {hits.client} on the same machine)"
    )
    print(
        f"  {s['requests_per_s']:.0f} req/s, p50 {s['p50_ms']:.2f} ms, p99 {s['p99_ms']:.2f} ms, "
        f"failed or non-200: {hits.non_200}"
    )
    print(
        f"  CPU per hit: server {s['server_cpu_ms_per_hit']:.2f} ms, client {s['client_cpu_ms_per_hit']:.2f} ms "
        "(client and server share the cores: a busy client holds req/s down)"
    )


def report_burst(burst: BurstResult, idle_rss_mb: float) -> None:
    ok = burst.statuses.get(200, 0)
    others = ", ".join(f"HTTP {k}: {v}" for k, v in sorted(burst.statuses.items()) if k != 200)
    print(f"\nPeak server RSS, {CONCURRENCY} concurrent cold misses ({burst.mix}):")
    print(
        f"  peak {burst.peak_rss_mb:.0f} MB (VmRSS every {RSS_SAMPLE_S * 1000:.0f} ms); before the burst "
        f"{burst.rss_before_mb:.0f} MB, idle after start {idle_rss_mb:.0f} MB, VmHWM {burst.hwm_mb:.0f} MB"
    )
    print(f"  {ok}/{CONCURRENCY} answered 200 in {burst.seconds:.2f} s" + (f"; {others}" if others else ""))
    print(f"Target: peak RSS <= {RSS_TARGET_MB} MB -> {verdict(burst.peak_rss_mb <= RSS_TARGET_MB)}")


# ------------------------------------------------------------------------------ main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--master", help=f"photo to render, JPEG or PNG (default: {DEFAULT_MASTER})")
    p.add_argument("--quick", action="store_true", help="a smoke run: 3 repeats, 3 s of hits")
    p.add_argument("--repeats", type=int, help="timed misses per rendition (default 15, or 3 with --quick)")
    p.add_argument("--hit-seconds", type=float, help="how long to drive cache hits (default 10, or 3 with --quick)")
    p.add_argument(
        "--hit-client",
        choices=("auto", "wrk", "httpx"),
        default="auto",
        help="load generator for hits: auto uses wrk when installed (lighter, so it measures the server more)",
    )
    p.add_argument("--json", metavar="FILE", help="also write the figures to FILE as JSON")
    args = p.parse_args(argv)
    args.repeats = args.repeats or (3 if args.quick else 15)
    args.hit_seconds = args.hit_seconds or (3.0 if args.quick else 10.0)
    if not 1 <= args.repeats <= 1000 or not 0 < args.hit_seconds <= 600:
        p.error("--repeats must be 1..1000 and --hit-seconds more than 0, at most 600")
    if args.hit_client == "auto":
        args.hit_client = "wrk" if shutil.which("wrk") else "httpx"
    elif args.hit_client == "wrk" and not shutil.which("wrk"):
        p.error("--hit-client wrk: wrk is not installed")
    return args


def run(args: argparse.Namespace, tmp: Path) -> dict[str, object]:
    master, origin_note = find_master(args.master)
    header = pyvips.Image.new_from_file(str(master))
    info = machine()
    print(f"Machine: {info['cpu']}, {info['cores']} cores; Python {info['python']}, libvips {info['libvips']}")
    print("A small shared machine is noisy: figures are medians; server and floor runs alternate.")
    print(
        f"Master: {master} ({header.width}x{header.height}, {header.width * header.height / 1e6:.1f} MP, "
        f"{master.stat().st_size} bytes) - {origin_note}"
    )

    masters_dir = tmp / "masters"
    masters_dir.mkdir()
    needed = len(RENDITIONS) * (args.repeats + 1) + CONCURRENCY + 1
    copies = make_copies(master, masters_dir, needed)
    print(f"{needed} copies of the master, unique bytes, identical pixels: every miss is a new master.\n")

    server = Server(masters_dir, tmp / "cache", tmp / "server.log")
    try:
        server.wait_healthy()
        idle_rss_mb = proc_status_kb(server.pid, "VmRSS") / 1024
        with RssSampler(server.pid) as sampler:
            misses = []
            for r in RENDITIONS:
                misses.append(measure_misses(server, copies, r, args.repeats))
                print(f"  measured {r.label}", file=sys.stderr)
            burst = measure_burst(server, copies, sampler)
            hits = measure_hits(server, copies, args.hit_seconds, args.hit_client)
    finally:
        server.stop()

    if "Traceback" in server.log_path.read_text(errors="replace"):
        print(f"WARNING: the server logged an error; its log ends:\n{server.log_tail()}\n")
    report_misses(misses, args.repeats)
    report_hits(hits)
    report_burst(burst, idle_rss_mb)
    return {
        "machine": info,
        "master": {"path": str(master), "width": header.width, "height": header.height, "note": origin_note},
        "repeats": args.repeats,
        "misses": [
            {
                "rendition": r.rendition,
                **r.summary(),
                "server_bytes": r.server_bytes,
                "floor_bytes": r.floor_bytes,
                "problems": sorted(set(r.problems)),
            }
            for r in misses
        ],
        "hits": {
            "client": hits.client,
            "concurrency": CONCURRENCY,
            "seconds": hits.seconds,
            "requests": hits.requests,
            "non_200": hits.non_200,
            **hits.summary(),
        },
        "rss": {**asdict(burst), "idle_mb": idle_rss_mb, "target_mb": RSS_TARGET_MB},
        "targets": {"miss_ratio_p50": MISS_TARGET, "peak_rss_mb": RSS_TARGET_MB},
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="render-bench-") as tmp:
        try:
            figures = run(args, Path(tmp))
        except KeyboardInterrupt:
            print("\ninterrupted; the server was stopped", file=sys.stderr)
            return 130
        except (RuntimeError, subprocess.SubprocessError) as e:
            print(f"render_bench: {e}", file=sys.stderr)
            return 1
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
        print(f"\nFigures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
