"""High-DPR misses with the remote super-resolution backend: throughput and p50/p95 at 1, 4 and 16
concurrent requests, against the local backend in the same run.

Every request names a master copy no request used before (distinct bytes, the same 640x427 photo),
at w=600&dpr=2: the x2 model over the whole master (4 tiles), then a WebP encode; the budget is
long, so every answer is the model's (the table says so). The remote backend talks to
deploy/kserve/runtime.py on loopback (KServe's Python server, onnxruntime on the CPU: the
environment is built once into .venv-kserve, as the tests do), or to `--url` (a Triton or a GPU
runtime elsewhere); on this 2-core machine the server and the origin share the cores.

    .venv/bin/python benchmarks/sr_remote.py [--levels 1,4,16] [--requests 24] [--url http://gpu:8000]
        [--backends remote,local] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
from render_bench import Server, machine, make_copies, percentile  # noqa: E402

from origin.core.request import RenditionOptions  # noqa: E402
from tests.support.inference import InferenceServer, start_inference_server  # noqa: E402

MASTER = ROOT / "tests" / "corpus" / "flower_640x427.jpg"
WIDTH, DPR = 600, 2
SERVED = "edgesr_x2_v2_0"  # what the origin asks the runtime for, by default


async def misses(server: Server, names: list[tuple[str, str]], concurrency: int) -> dict[str, float]:
    """Ask each (master, version) once, `concurrency` at a time: req/s, p50, p95, share the model made."""
    queue = list(names)
    seconds: list[float] = []
    made_by_model = 0
    failed = 0

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal made_by_model, failed
        while queue:
            name, version = queue.pop()
            url = server.base + server.signer.sign_url(name, RenditionOptions(w=WIDTH, dpr=DPR, fm="webp", v=version))
            started = time.perf_counter()
            r = await http.get(url)
            seconds.append(time.perf_counter() - started)
            if r.status_code != 200:
                failed += 1
            elif r.headers.get("x-upscale", "").startswith("edgesr"):
                made_by_model += 1

    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=300, trust_env=False) as http:
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
    wall = time.perf_counter() - started
    return {
        "requests": len(names),
        "req_per_s": len(names) / wall,
        "p50_s": percentile(seconds, 50),
        "p95_s": percentile(seconds, 95),
        "model_share": made_by_model / len(names),
        "failed": failed,
    }


def tiles_per_request(inference: InferenceServer | None, since: int) -> float | None:
    """Mean tiles per infer request after the first `since` (the runtime logs each request)."""
    batches = inference.batches(SERVED)[since:] if inference else []
    return sum(b[0] for b in batches) / len(batches) if batches else None


def run(args: argparse.Namespace, tmp: Path) -> dict[str, object]:
    levels = [int(n) for n in args.levels.split(",")]
    total = (sum(max(args.requests, 2 * n) for n in levels) + 1) * len(args.backends.split(","))
    (tmp / "masters").mkdir()
    copies = make_copies(MASTER, tmp / "masters", total)
    inference = None
    url = args.url
    if "remote" in args.backends and not url:
        inference = start_inference_server(tmp, threads=os.cpu_count() or 2)
        url = inference.url
    results: dict[str, object] = {"machine": machine(), "url": url or "", "rows": []}
    rows: list[dict[str, object]] = results["rows"]  # type: ignore[assignment]
    try:
        for backend in args.backends.split(","):
            env = {
                "EDGE_SUPERRES_BACKEND": backend,
                "EDGE_SUPERRES_BUDGET_S": "300",
                "EDGE_SUPERRES_QUEUE_LIMIT": "64",
                "EDGE_SUPERRES_REMOTE_CONCURRENCY": "16",
                "EDGE_SERVER_QUEUE_LIMIT": "64",
            }
            if backend == "remote":
                env["EDGE_SUPERRES_URL"] = url
            server = Server(copies.folder, tmp / f"cache-{backend}", tmp / f"edge-{backend}.log", env)
            try:
                server.wait_healthy()
                asyncio.run(misses(server, [copies.take()], 1))  # sessions opened, speed measured: not timed
                for level in levels:
                    since = len(inference.batches(SERVED)) if inference else 0
                    names = [copies.take() for _ in range(max(args.requests, 2 * level))]
                    row = {"backend": backend, "concurrency": level, **asyncio.run(misses(server, names, level))}
                    row["tiles_per_request"] = tiles_per_request(inference, since) if backend == "remote" else None
                    rows.append(row)
                    print(format_row(row), flush=True)
            finally:
                server.stop()
    finally:
        if inference is not None:
            inference.stop()
    return results


def format_row(row: dict[str, object]) -> str:
    tiles = row.get("tiles_per_request")
    return (
        f"{row['backend']:>7} c={row['concurrency']:<3} {row['requests']:>4} misses  "
        f"{row['req_per_s']:6.2f} req/s  p50 {row['p50_s'] * 1000:7.0f} ms  p95 {row['p95_s'] * 1000:7.0f} ms  "
        f"model {row['model_share']:.0%}  failed {row['failed']}"
        + (f"  tiles/request {tiles:.1f}" if isinstance(tiles, float) else "")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", default="1,4,16")
    parser.add_argument("--requests", type=int, default=24, help="misses per level (at least 2 x the level)")
    parser.add_argument("--backends", default="remote,local")
    parser.add_argument("--url", default="", help="an inference server to use instead of starting one")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sr-remote-") as tmp:
        results = run(args, Path(tmp))
    print(f"machine: {results['machine']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
