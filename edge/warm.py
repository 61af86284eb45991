"""Warm on publish: request every rendition the rules declare for some masters, so the first
visitor never pays a cold render.

It goes through a running server over HTTP (not around it), so every tier fills the way a real
request would fill it: the server's memory, disk and shared S3 tiers, and a cache in front when
`--server` points at that instead. Negotiated URLs (`fm=auto`) are fetched once per Accept bucket.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import httpx

from origin.core.formats import ACCEPT_BUCKETS
from origin.core.master import MasterRecord
from origin.core.request import RenditionOptions
from rules.model import RuleSet
from rules.srcset import Capacity, plan


@dataclass(frozen=True)
class WarmRequest:
    url: str
    accept: str


def warm_requests(
    ruleset: RuleSet, record: MasterRecord, sign: Callable[[str, RenditionOptions], str], capacity: Capacity
) -> list[WarmRequest]:
    """Every URL the rules' markup can contain for this master, with the Accept headers to send:
    negotiated URLs once per Accept bucket the origin distinguishes."""
    seen: set[tuple[str, str]] = set()
    out = []
    for rule in ruleset.rules_for(record.info.path):
        for source in plan(rule, record.header, capacity).all_sources:
            for candidate in source.candidates:
                url = sign(record.info.path, replace(candidate.options, v=record.short_version))
                accepts = tuple(ACCEPT_BUCKETS.values()) if candidate.options.fm == "auto" else ("*/*",)
                for accept in accepts:
                    if (url, accept) not in seen:
                        seen.add((url, accept))
                        out.append(WarmRequest(url, accept))
    return out


def outcome(response: httpx.Response) -> str:
    if response.status_code != 200:
        return f"failed {response.status_code}"
    return "already cached" if "; hit" in response.headers.get("cache-status", "") else "rendered"


async def warm(server: str, requests: Iterable[WarmRequest], concurrency: int, progress: bool) -> Counter[str]:
    """Fetch every request with at most `concurrency` in flight; count the outcomes."""
    todo = list(requests)
    counts: Counter[str] = Counter()
    gate = asyncio.Semaphore(concurrency)
    started = time.monotonic()

    async def one(client: httpx.AsyncClient, request: WarmRequest) -> None:
        async with gate:
            try:
                response = await client.get(server.rstrip("/") + request.url, headers={"Accept": request.accept})
                counts[outcome(response)] += 1
            except httpx.HTTPError as e:
                counts[f"failed {type(e).__name__}"] += 1
        if progress:
            done = sum(counts.values())
            rate = done / max(time.monotonic() - started, 1e-6)
            print(f"\rwarmed {done}/{len(todo)} ({rate:.1f}/s)", end="", file=sys.stderr, flush=True)

    async with httpx.AsyncClient(timeout=120) as client:
        await asyncio.gather(*(one(client, r) for r in todo))
    if progress:
        print(file=sys.stderr)
    return counts
