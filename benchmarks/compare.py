"""The same-run comparison the performance goals are judged by: this server against the peers
(thumbor with two processes, ipx, and nginx's static ceiling, via ../shared/peers when they are
installed) and an in-process libvips floor, on four workloads:

  first    first touch: every request names a master never seen before (distinct bytes, same
           pixels), 800w and 320w JPEG/WebP/AVIF, 16 concurrent: req/s and server CPU-ms per render
  burst    srcset burst: every rendition a rule's <picture> declares for one master (every width,
           every format), asked together, master after master, 16 in flight; the peers render the
           same renditions independently
  hits     one rendition from the memory tier and from the disk tier, wrk -t2 -c64; nginx serving a
           static file of the same bytes is the ceiling
  quality  bytes at equal SSIMULACRA2 (needs `pip install ssimulacra2`): each rendition of
           `--quality` (800w JPEG/WebP/AVIF, 320w JPEG) from thumbor, and ours at the quality that
           reaches thumbor's score (after its upgrade), both scored against one neutral reference
           (the master reduced with Lanczos3)
  big      (not in the default set) 16 concurrent first touches of 20 MP masters (5480x3650 JPEG,
           distinct bytes), 800w WebP or `--big W:FMT,...`: the peak RSS of all the server's processes (goal: 600 MB)

    .venv/bin/python benchmarks/compare.py [--workloads first,burst,hits,quality,big] [--duration 20]
        [--peers thumbor,ipx] [--json FILE]

Without ../shared/peers (or before its install_all.sh has run) the peers are skipped with a note
and the server is measured against the floor alone. Quote ratios from one run: this 2-core machine
is shared and noisy, so the script also reports how much CPU other processes took during each unit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import httpx  # noqa: E402
import pyvips  # noqa: E402
import render_bench  # noqa: E402
from render_bench import machine, unique_copy  # noqa: E402

from origin.core.formats import FORMATS, EncodeSettings  # noqa: E402
from origin.core.limits import Limits  # noqa: E402
from origin.core.master import MasterHeader  # noqa: E402
from origin.core.request import RenditionOptions  # noqa: E402
from origin.plan import jpeg_shrink  # noqa: E402
from origin.superres.policy import SuperResPolicy  # noqa: E402
from rules.loader import load_rules  # noqa: E402
from rules.srcset import Capacity, plan  # noqa: E402

PEERS_DIR = ROOT.parent / "shared" / "peers"
PEERS = Path(os.environ.get("PEERS", "/tmp/peers"))
CLK_TCK = os.sysconf("SC_CLK_TCK")
CONCURRENCY = 16
QUALITY = {"jpeg": 80, "webp": 80, "avif": 50}
FIRST_TOUCH = [(800, "jpeg"), (800, "webp"), (800, "avif"), (320, "jpeg"), (320, "webp"), (320, "avif")]
# The burst rule: a full-width hero up to 1920 px viewports, 1x and 2x, three formats. No aspect, so
# every peer can make exactly the same renditions (width, format, quality).
BURST_RULE = """\
rules:
  burst:
    masters: "**"
    sizes: {default: 100vw, lg: 50vw}
    dprs: [1, 2]
    formats: {avif: 50, webp: 80, jpeg: 80}
"""


# ------------------------------------------------------------------------------ processes and CPU


def descendants(pid: int) -> list[int]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                kids.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
            except OSError:
                continue
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            continue
    return total


def machine_ticks() -> int:
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    idle = int(fields[3]) + int(fields[4])
    return sum(int(f) for f in fields[:8]) - idle


def rss_mb(pids: list[int]) -> float:
    return sum(render_bench.proc_status_kb(p, "VmRSS") for p in pids) / 1024


@dataclass
class Measured:
    """CPU of the server, of this process, and of everything else, over a unit of load."""

    server_pids: Callable[[], list[int]]
    server_cpu_s: float = 0.0
    other_cpu_pct: float = 0.0
    peak_rss_mb: float = 0.0
    _t: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> Measured:
        self._pids = self.server_pids()
        self._s0, self._m0, self._o0 = cpu_ticks(self._pids), machine_ticks(), cpu_ticks([os.getpid()])
        self._t = time.monotonic()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            self.peak_rss_mb = max(self.peak_rss_mb, rss_mb(self.server_pids()))

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._sampler.join(2)
        pids = self.server_pids()
        server = cpu_ticks(pids) - self._s0
        own = cpu_ticks([os.getpid()]) - self._o0
        busy = machine_ticks() - self._m0
        wall = time.monotonic() - self._t
        self.server_cpu_s = server / CLK_TCK
        self.other_cpu_pct = round(100 * max(0, busy - server - own) / CLK_TCK / wall, 1)


# ------------------------------------------------------------------------------ the servers


@dataclass
class Target:
    name: str
    base: str
    url: Callable[[str, int, str, int], str]  # (image, width, format, quality) -> path
    pids: Callable[[], list[int]]
    stop: Callable[[], None]


EDGE_ENV: dict[str, str] = {}  # --edge-env


def start_edge(masters: Path, work: Path, env: dict[str, str] | None = None) -> Target:
    cache = Path(tempfile.mkdtemp(dir=work, prefix="edge-cache-"))
    # The server's defaults (worker processes: one per CPU), unless --edge-env says otherwise.
    settings = {"EDGE_SERVER_ACCESS_LOG": "false", "EDGE_SERVER_WORKERS": "0", **EDGE_ENV, **(env or {})}
    server = render_bench.Server(masters, cache, work / "edge.log", settings)
    server.wait_healthy(60)

    def url(image: str, width: int, fmt: str, q: int) -> str:
        return server.signer.sign_url(image, RenditionOptions(w=width, fm=fmt, q=q))

    def stop() -> None:
        server.stop()
        shutil.rmtree(cache, ignore_errors=True)

    return Target("edge", server.base, url, lambda: descendants(server.pid), stop)


def peers_ready() -> str | None:
    """None when ../shared/peers and its installs are there; else why the peers are skipped."""
    if not (PEERS_DIR / "servers.py").is_file():
        return f"{PEERS_DIR} is absent: peers skipped"
    if not (PEERS / "thumbor-venv").is_dir() or not (PEERS / "ipx").is_dir():
        return f"the peers are not installed under {PEERS}: run {PEERS_DIR}/install_all.sh once"
    return None


def start_peer(name: str, masters: Path) -> Target:
    sys.path.insert(0, str(PEERS_DIR))
    import servers  # the peers' own URL spellings

    env = {**os.environ, "PEERS": str(PEERS), "IMAGES": str(masters), "THUMBOR_PROCESSES": "2"}
    script = {"thumbor": "start_thumbor.sh", "ipx": "start_ipx.sh", "nginx": "start_nginx.sh"}[name]
    started = subprocess.run(["bash", str(PEERS_DIR / script)], env=env, capture_output=True, text=True, timeout=120)
    if started.returncode != 0:
        subprocess.run(["bash", str(PEERS_DIR / "stop.sh"), name], env=env, capture_output=True, timeout=60)
        raise RuntimeError(f"{script} failed: {started.stdout[-500:]}{started.stderr[-500:]}")
    spec = servers.SERVERS[name]
    pid_file = PEERS / "run" / f"{name}.pids"
    root = int(pid_file.read_text().split()[0])

    def url(image: str, width: int, fmt: str, q: int) -> str:
        return spec.url(image, width, fmt, q, 0)

    def stop() -> None:
        subprocess.run(["bash", str(PEERS_DIR / "stop.sh"), name], env=env, capture_output=True, timeout=60)

    return Target(name, spec.base_url, url, lambda: descendants(root), stop)


# ------------------------------------------------------------------------------ load


@dataclass
class Unit:
    target: str
    workload: str
    label: str
    ok: int = 0
    errors: int = 0
    seconds: float = 0.0
    server_cpu_ms: float = 0.0  # per completed request
    other_cpu_pct: float = 0.0
    peak_rss_mb: float = 0.0
    bytes_median: int = 0
    p50_ms: float = 0.0

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


async def drive(
    target: Target, paths: Callable[[], str | None], duration: float, conc: int
) -> tuple[int, int, list[float], list[int]]:
    """`conc` keep-alive clients ask for `paths()` until it returns None or time is up."""
    deadline = time.monotonic() + duration
    ok, errors, latencies, sizes = 0, 0, [], []
    limits = httpx.Limits(max_connections=conc, max_keepalive_connections=conc)
    async with httpx.AsyncClient(base_url=target.base, timeout=300, limits=limits, trust_env=False) as client:

        async def worker() -> None:
            nonlocal ok, errors
            while time.monotonic() < deadline:
                path = paths()
                if path is None:
                    return
                started = time.monotonic()
                try:
                    response = await client.get(path, headers={"Accept": "*/*"})
                except httpx.HTTPError:
                    errors += 1
                    continue
                if time.monotonic() > deadline + 0.001:
                    return  # finished after the window: not counted
                if response.status_code == 200:
                    ok += 1
                    latencies.append(time.monotonic() - started)
                    sizes.append(len(response.content))
                else:
                    errors += 1

        await asyncio.gather(*(worker() for _ in range(conc)))
    return ok, errors, latencies, sizes


def run_unit(target: Target, workload: str, label: str, paths: Callable[[], str | None], duration: float) -> Unit:
    with Measured(target.pids) as m:
        started = time.monotonic()
        ok, errors, latencies, sizes = asyncio.run(drive(target, paths, duration, CONCURRENCY))
        seconds = min(time.monotonic() - started, duration)
    unit = Unit(
        target.name,
        workload,
        label,
        ok,
        errors,
        seconds,
        1000 * m.server_cpu_s / max(ok, 1),
        m.other_cpu_pct,
        round(m.peak_rss_mb, 1),
        int(statistics.median(sizes)) if sizes else 0,
        round(1000 * statistics.median(latencies), 1) if latencies else 0.0,
    )
    note = "  (contended)" if unit.other_cpu_pct > 15 else ""
    print(
        f"  {target.name:8} {workload:6} {label:22} {unit.rps:7.1f} req/s  {unit.server_cpu_ms:6.1f} CPU-ms  "
        f"p50 {unit.p50_ms:7.1f} ms  {unit.bytes_median:7d} B  err {errors}  other {unit.other_cpu_pct}%"
        f"  rss {unit.peak_rss_mb} MB{note}",
        flush=True,
    )
    return unit


# ------------------------------------------------------------------------------ masters


def source_photos() -> list[Path]:
    """The peers' test masters (4000x3000 JPEG q90 with grain) when installed, else the corpus photos."""
    images = PEERS / "images"
    if images.is_dir() and list(images.glob("*.jpg")):
        return sorted(p for p in images.glob("*.jpg") if p.name != "hit_50k.jpg")
    corpus = ROOT.parent / "shared" / "corpus" / "photos"
    folder = corpus if corpus.is_dir() else ROOT / "tests" / "corpus"
    return sorted(p for p in folder.glob("*.jpg") if p.stat().st_size > 200_000)[:6]


def make_masters(folder: Path, photos: list[Path], copies: int) -> list[str]:
    """`copies` distinct-bytes copies of each photo (same pixels), interleaved: every request can
    name a master no server has seen."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    datas = [p.read_bytes() for p in photos]
    for n in range(copies):
        for i, data in enumerate(datas):
            name = f"c{n:04d}_{photos[i].stem}.jpg"
            (folder / name).write_bytes(unique_copy(data, n))
            names.append(name)
    hit = PEERS / "images" / "hit_50k.jpg"
    if hit.is_file():
        shutil.copy(hit, folder / "hit_50k.jpg")  # ipx's start script waits for it
    return names


def make_big_masters(folder: Path, photo: Path, copies: int) -> list[str]:
    """`copies` distinct-bytes 20 MP JPEG q90 masters (5480x3650) made from `photo`."""
    folder.mkdir(parents=True, exist_ok=True)
    image = pyvips.Image.new_from_file(str(photo))
    data = image.resize(5480 / image.width, vscale=3650 / image.height, kernel="lanczos3").jpegsave_buffer(Q=90)
    names = []
    for n in range(copies):
        names.append(f"big{n:04d}.jpg")
        (folder / names[-1]).write_bytes(unique_copy(data, n))
    return names


# ------------------------------------------------------------------------------ workloads


def first_touch(targets: list[Target | Callable[[], Target]], masters: list[str], duration: float) -> list[Unit]:
    units = []
    for make in targets:
        for width, fmt in FIRST_TOUCH:
            target = make() if callable(make) else make  # edge restarts per unit: a cold master index
            it = iter(masters)
            units.append(
                run_unit(
                    target,
                    "first",
                    f"{width}w {fmt} q{QUALITY[fmt]}",
                    lambda it=it, width=width, fmt=fmt, t=target: _next_url(t, it, width, fmt),
                    duration,
                )
            )
            if callable(make):
                target.stop()
    return units


def _next_url(target: Target, names, width: int, fmt: str) -> str | None:  # noqa: ANN001
    name = next(names, None)
    return None if name is None else target.url(name, width, fmt, QUALITY[fmt])


def burst_renditions(header: MasterHeader) -> list[tuple[int, str, int]]:
    """(width, format, quality) of every URL the burst rule's <picture> declares for this master."""
    with tempfile.TemporaryDirectory() as rules:
        (Path(rules) / "burst.yaml").write_text(BURST_RULE)
        rule = load_rules(rules).named("burst")
    rule_plan = plan(rule, header, Capacity(Limits(), SuperResPolicy()))
    out = []
    for source in (*rule_plan.sources, rule_plan.picture_img):
        for c in source.candidates:
            out.append((c.width, source.format, c.options.q or QUALITY[source.format]))
    return sorted(set(out))


def burst(target: Target, masters: list[str], renditions: list[tuple[int, str, int]], duration: float) -> Unit:
    queue = ((name, w, f, q) for name in masters for w, f, q in renditions)

    def paths() -> str | None:
        item = next(queue, None)
        return None if item is None else target.url(*item)

    return run_unit(target, "burst", f"{len(renditions)} renditions/master", paths, duration)


def wrk(url: str, seconds: int = 10) -> float:
    if not shutil.which("wrk"):
        return 0.0
    out = subprocess.run(
        ["wrk", "-t2", "-c64", f"-d{seconds}s", url], capture_output=True, text=True, timeout=seconds + 60
    )
    m = re.search(r"Requests/sec:\s+([\d.]+)", out.stdout)
    return float(m.group(1)) if m else 0.0


def hits(masters_dir: Path, masters: list[str], work: Path, with_nginx: bool) -> dict[str, float]:
    """req/s of one cached rendition from each tier, and nginx serving the same bytes as a file."""
    out = {}
    body = b""
    for tier, env in (("memory", {}), ("disk", {"EDGE_CACHE_MEMORY_MB": "0"})):
        edge = start_edge(masters_dir, work, env)
        url = edge.base + edge.url(masters[0], 800, "webp", 80)
        body = httpx.get(url, timeout=120).content
        httpx.get(url, timeout=30)
        with Measured(edge.pids) as m:
            out[tier] = wrk(url)
        out[f"{tier}_server_cpu_pct"] = round(100 * m.server_cpu_s / 10, 1)
        print(
            f"  edge     hits   {tier:6} tier {len(body):7d} B   {out[tier]:9.0f} req/s  server CPU "
            f"{out[f'{tier}_server_cpu_pct']}%  other {m.other_cpu_pct}%",
            flush=True,
        )
        edge.stop()
    if with_nginx:
        (masters_dir / "hit_same.webp").write_bytes(body)
        nginx = start_peer("nginx", masters_dir)
        out["nginx"] = wrk(nginx.base + "/hit_same.webp")
        print(f"  nginx    hits   static file {len(body):7d} B {out['nginx']:9.0f} req/s", flush=True)
        nginx.stop()
    return out


def floor(masters_dir: Path, masters: list[str], duration: float) -> list[Unit]:
    """In process, no HTTP: shrink-on-load decode, resize and encode with this server's encoder
    settings, on as many threads as cores, over fresh masters: what a render costs at best here."""
    return [_floor_unit(masters_dir, masters, width, fmt, duration) for width, fmt in FIRST_TOUCH]


def _floor_unit(masters_dir: Path, masters: list[str], width: int, fmt: str, duration: float) -> Unit:
    row, q, settings = FORMATS[fmt], QUALITY[fmt], EncodeSettings()
    it = iter(masters)
    lock = threading.Lock()
    deadline = time.monotonic() + duration
    sizes: list[int] = []

    def work() -> None:
        while time.monotonic() < deadline:
            with lock:
                name = next(it, None)
            if name is None:
                return
            path = str(masters_dir / name)
            # As the server does: convert to sRGB only from an embedded profile.
            head = pyvips.Image.new_from_file(path)
            colour = {"export_profile": "srgb"} if "icc-profile-data" in head.get_fields() else {}
            height = round(head.height * width / head.width)
            # As the server does: the JPEG decoder's own shrink where it goes below thumbnail's margin.
            shrink = jpeg_shrink((head.width, head.height), width, height)
            if shrink is None:
                image = pyvips.Image.thumbnail(path, width, **colour)
            else:
                image = pyvips.Image.new_from_file(path, shrink=shrink, access="sequential")
                image = image.thumbnail_image(width, height=height, size="force", **colour)
            data = getattr(image, f"{row.saver}_buffer")(**row.options(q, settings), keep="none")
            with lock:
                sizes.append(len(data))

    threads = len(os.sched_getaffinity(0))
    cpu0, started = time.process_time(), time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        for f in [pool.submit(work) for _ in range(threads)]:
            f.result()
    seconds = min(time.monotonic() - started, duration)
    cpu_ms = 1000 * (time.process_time() - cpu0) / max(len(sizes), 1)
    unit = Unit(
        "floor",
        "first",
        f"{width}w {fmt} q{q}",
        len(sizes),
        0,
        seconds,
        cpu_ms,
        0.0,
        0.0,
        int(statistics.median(sizes)) if sizes else 0,
    )
    print(f"  floor    first  {unit.label:22} {unit.rps:7.1f} req/s  {unit.server_cpu_ms:6.1f} CPU-ms", flush=True)
    return unit


# ------------------------------------------------------------------------------ quality


QUALITY_RENDITIONS = "800:jpeg,800:webp,800:avif,320:jpeg"  # the issue's: each first touch held to parity


def quality(
    edge: Target, thumbor: Target | None, masters_dir: Path, masters: list[str], renditions: list[tuple[int, str]]
) -> list[dict[str, object]]:
    """Bytes at thumbor's SSIMULACRA2. Both servers' renditions (width, format) are scored against one neutral
    reference: the master decoded whole and reduced with Lanczos3 to the rendition's exact size
    (no shrink-on-load), so a softer resize cannot pass for a better encoder. Our bytes at thumbor's
    exact score are interpolated (in log bytes) between the two qualities that bracket it."""
    try:
        from ssimulacra2 import compute_ssimulacra2
    except ImportError:
        print("  quality: skipped (pip install ssimulacra2)")
        return []
    if thumbor is None:
        print("  quality: skipped (needs thumbor from ../shared/peers)")
        return []
    import io
    import math

    def png(image: pyvips.Image) -> io.BytesIO:
        return io.BytesIO(image.colourspace("srgb").cast("uchar").pngsave_buffer(compression=1))

    def get(target: Target, path: str) -> bytes:
        """The rendition a cache keeps: ours once its better encode has replaced the fast one
        (edge.upgrades: while provisional, its ETag says so)."""
        deadline = time.monotonic() + 60
        while True:
            response = httpx.get(target.base + path, timeout=300)
            response.raise_for_status()
            if "provisional" not in response.headers.get("etag", "") or time.monotonic() > deadline:
                return response.content
            time.sleep(0.1)

    rows = []
    for name in masters[:3]:
        master = pyvips.Image.new_from_file(str(masters_dir / name)).autorot()
        references: dict[tuple[int, int], io.BytesIO] = {}

        def score(data: bytes, master: pyvips.Image = master, refs: dict = references) -> float:  # noqa: B006
            image = pyvips.Image.new_from_buffer(data, "")
            size = (image.width, image.height)
            if size not in refs:
                ref = master.resize(size[0] / master.width, vscale=size[1] / master.height, kernel="lanczos3")
                refs[size] = png(ref.gravity("centre", *size, extend="copy"))
            refs[size].seek(0)
            return float(compute_ssimulacra2(refs[size], png(image)))

        for width, fmt in renditions:
            theirs = get(thumbor, thumbor.url(name, width, fmt, QUALITY[fmt]))
            target_score = score(theirs)
            probes: dict[int, tuple[int, float]] = {}
            lo, hi = 1, 100
            while lo <= hi:  # the lowest q of ours that reaches thumbor's score
                q = (lo + hi) // 2
                ours = get(edge, edge.url(name, width, fmt, q))
                probes[q] = (len(ours), score(ours))
                lo, hi = (lo, q - 1) if probes[q][1] >= target_score else (q + 1, hi)
            above = min((q for q, (_, sc) in probes.items() if sc >= target_score), default=None)
            below = max((q for q, (_, sc) in probes.items() if sc < target_score), default=None)
            our_bytes = None
            if above is not None:
                our_bytes = float(probes[above][0])
                if below is not None and probes[above][1] > probes[below][1]:
                    (b0, s0), (b1, s1) = probes[below], probes[above]
                    t = (target_score - s0) / (s1 - s0)
                    our_bytes = math.exp(math.log(b0) + t * (math.log(b1) - math.log(b0)))
            row = {
                "width": width,
                "format": fmt,
                "master": name,
                "thumbor_bytes": len(theirs),
                "thumbor_score": round(target_score, 2),
                "our_bytes": round(our_bytes) if our_bytes else None,
                "our_q_bracket": [below, above],
            }
            ratio = f"{our_bytes / len(theirs):.2f}x" if our_bytes else "-"
            print(
                f"  quality {width}w {fmt} {name}: thumbor {len(theirs)} B at {target_score:.1f}; "
                f"ours {row['our_bytes']} B (q {below}..{above})  ({ratio})",
                flush=True,
            )
            rows.append(row)
    return rows


# ------------------------------------------------------------------------------ report


def report(units: list[Unit], hit: dict[str, float], quality_rows: list[dict[str, object]]) -> None:
    print("\nFirst touch, c=16 (req/s, server CPU-ms per render):")
    labels = [f"{w}w {f} q{QUALITY[f]}" for w, f in FIRST_TOUCH]
    names = sorted({u.target for u in units if u.workload == "first"}, key=lambda n: (n != "edge", n))
    print(f"{'rendition':18}" + "".join(f"{n:>20}" for n in names) + "   edge / best peer")
    for label in labels:
        cells, peers = [], []
        for n in names:
            u = next((u for u in units if u.target == n and u.workload == "first" and u.label == label), None)
            cells.append(f"{u.rps:8.1f} {u.server_cpu_ms:6.0f} ms  " if u else f"{'-':>20}")
            if u and n not in ("edge", "floor"):
                peers.append(u.rps)
        edge = next((u for u in units if u.target == "edge" and u.workload == "first" and u.label == label), None)
        ratio = f"{edge.rps / max(peers):.2f}" if edge and peers else "-"
        print(f"{label:18}" + "".join(cells) + f"   {ratio}")
    bursts = [u for u in units if u.workload == "burst"]
    if bursts:
        print("\nsrcset burst (renditions/s, server CPU-ms per rendition):")
        for u in bursts:
            print(f"  {u.target:8} {u.rps:8.1f} {u.server_cpu_ms:6.0f} ms")
        edge = next((u for u in bursts if u.target == "edge"), None)
        peers = [u.rps for u in bursts if u.target != "edge"]
        if edge and peers:
            print(f"  edge / best peer: {edge.rps / max(peers):.2f}")
    if hit:
        print("\nHits, wrk -t2 -c64 (req/s):")
        for tier in ("memory", "disk"):
            ratio = f"  ({hit[tier] / hit['nginx']:.3f} x nginx static)" if hit.get("nginx") else ""
            print(f"  edge {tier} tier {hit.get(tier, 0):9.0f}{ratio}")
        if hit.get("nginx"):
            print(f"  nginx static  {hit['nginx']:9.0f}")
    if quality_rows:
        print("\nBytes at thumbor's SSIMULACRA2 (ours / thumbor's, median over masters):")
        for width, fmt in dict.fromkeys((r["width"], r["format"]) for r in quality_rows):
            ratios = [
                r["our_bytes"] / r["thumbor_bytes"]
                for r in quality_rows
                if (r["width"], r["format"]) == (width, fmt) and r["our_bytes"]
            ]
            if ratios:
                print(f"  {width}w {fmt}: {statistics.median(ratios):.2f}")


def renditions_of(spec: str) -> list[tuple[int, str]]:
    """`800:jpeg,320:avif` -> [(800, "jpeg"), (320, "avif")] (--first, --big, --quality)."""
    return [(int(w), f) for w, f in (item.split(":") for item in spec.split(","))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workloads", default="first,burst,hits,quality")
    ap.add_argument("--duration", type=float, default=20.0, help="seconds per unit of load (default 20)")
    ap.add_argument("--peers", default="thumbor,ipx", help="peers to run when installed (default thumbor,ipx)")
    ap.add_argument("--copies", type=int, default=150, help="distinct-bytes copies of each master (default 150)")
    ap.add_argument("--first", help="first-touch renditions, e.g. 800:jpeg,320:avif (default: all six)")
    ap.add_argument("--quality", default=QUALITY_RENDITIONS, help="renditions of the quality workload")
    ap.add_argument("--big", default="800:webp", help="renditions of the big workload, e.g. 800:webp,320:jpeg")
    ap.add_argument("--edge-env", action="append", default=[], metavar="NAME=VALUE", help="configure the server")
    ap.add_argument("--json", type=Path, help="also write every figure here")
    args = ap.parse_args()
    if args.first:
        FIRST_TOUCH[:] = renditions_of(args.first)
    EDGE_ENV.update(item.split("=", 1) for item in args.edge_env)
    workloads = set(args.workloads.split(","))
    info = machine()
    print(f"Machine: {info['cpu']}, {info['cores']} cores; Python {info['python']}, libvips {info['libvips']}")
    skipped = peers_ready()
    peer_names = [] if skipped else [p for p in args.peers.split(",") if p]
    if skipped:
        print(f"Peers: {skipped}")
    photos = source_photos()
    work = Path(tempfile.mkdtemp(prefix="edge-compare-"))
    work.chmod(0o755)  # nginx's workers (another user) read the masters folder
    masters_dir = work / "masters"
    names = ", ".join(p.name for p in photos)
    print(f"Masters: {len(photos)} photos ({names}) x {args.copies} distinct copies in {masters_dir}")
    masters = make_masters(masters_dir, photos, args.copies)
    units: list[Unit] = []
    hit: dict[str, float] = {}
    quality_rows: list[dict[str, object]] = []
    try:
        if "first" in workloads:
            print("\nFirst touch:")
            targets: list[Target | Callable[[], Target]] = [lambda: start_edge(masters_dir, work)]
            for name in peer_names:
                peer = start_peer(name, masters_dir)
                try:
                    units += first_touch([peer], masters, args.duration)
                finally:
                    peer.stop()
            units += first_touch(targets, masters, args.duration)
            units += floor(masters_dir, masters, args.duration)
        if "burst" in workloads:
            first = pyvips.Image.new_from_file(str(masters_dir / masters[0]))
            renditions = burst_renditions(MasterHeader("jpeg", first.width, first.height, 3, False, 1))
            print(
                f"\nsrcset burst: {len(renditions)} renditions per master: "
                + ", ".join(f"{w}w {f}" for w, f, _ in renditions)
            )
            rules = work / "burst-rules"
            rules.mkdir(exist_ok=True)
            (rules / "burst.yaml").write_text(BURST_RULE)  # the server knows what the burst declares
            edge = start_edge(masters_dir, work, {"EDGE_RULES_DIR": str(rules)})
            try:
                units.append(burst(edge, masters, renditions, args.duration * 2))
            finally:
                edge.stop()
            for name in peer_names:
                peer = start_peer(name, masters_dir)
                try:
                    units.append(burst(peer, masters, renditions, args.duration * 2))
                finally:
                    peer.stop()
        if "hits" in workloads:
            print("\nHits:")
            # nginx needs only ../shared/peers and the system nginx, not the other peers' installs.
            nginx_there = (PEERS_DIR / "start_nginx.sh").is_file() and shutil.which("nginx") is not None
            hit = hits(masters_dir, masters, work, with_nginx=nginx_there)
        if "big" in workloads:
            big = make_big_masters(masters_dir, photos[0], 10 * CONCURRENCY)
            peak = 0.0
            for width, fmt in renditions_of(args.big):
                edge = start_edge(masters_dir, work)  # cold caches and master index each time
                try:
                    it = iter(big)
                    unit = run_unit(
                        edge,
                        "big",
                        f"{width}w {fmt}, 20 MP masters",
                        lambda it=it, width=width, fmt=fmt, edge=edge: _next_url(edge, it, width, fmt),
                        args.duration,
                    )
                finally:
                    edge.stop()
                peak = max(peak, unit.peak_rss_mb)
                units.append(unit)
            print(f"  peak RSS of all the server's processes: {peak:.0f} MB (goal 600)")
        if "quality" in workloads:
            print("\nBytes at equal SSIMULACRA2:")
            edge = start_edge(masters_dir, work)
            thumbor = start_peer("thumbor", masters_dir) if "thumbor" in peer_names else None
            try:
                quality_rows = quality(edge, thumbor, masters_dir, masters, renditions_of(args.quality))
            finally:
                edge.stop()
                if thumbor:
                    thumbor.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(units, hit, quality_rows)
    if args.json:
        args.json.write_text(
            json.dumps(
                {"machine": info, "units": [u.__dict__ for u in units], "hits": hit, "quality": quality_rows}, indent=1
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
