"""`edge purge` (drop a master's renditions from the caches) and `edge warm` (fill them from the rules)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import httpx

from edge.caches.disk import purge_files
from edge.cdn import send_purge
from edge.cli.commands import summary
from edge.cli.common import add_common
from edge.config import Config, ConfigError
from edge.services import capacity_of, load_rule_set, lookup_master
from edge.signing import Signer
from edge.warm import warm, warm_requests
from origin.core.keys import master_id, master_tag
from origin.masters.local import LocalMasterStore


def register(sub: argparse._SubParsersAction) -> None:
    purge = sub.add_parser(
        "purge",
        help=summary("purge"),
        description="Remove every rendition of a master (all versions, all formats) from the shared disk and "
        "S3 tiers of this configuration, and from the memory of each --server (POST /admin/purge, with "
        "admin.token). Versioned URLs make this unnecessary for content changes: use it for takedowns.",
    )
    add_common(purge)
    purge.add_argument("path", help="master path, relative to the masters root")
    purge.add_argument("--server", action="append", help="base URL of a running server to purge too (repeatable)")
    purge.set_defaults(func=cmd_purge)

    warm_parser = sub.add_parser(
        "warm",
        help=summary("warm"),
        description="Request, through a running server, every rendition the breakpoint rules declare for "
        "the given masters (negotiated URLs once per Accept bucket), so the first visitor never waits.",
    )
    add_common(warm_parser)
    warm_parser.add_argument("masters_to_warm", nargs="*", metavar="MASTER", help="master paths")
    warm_parser.add_argument("--all", action="store_true", help="every master in the (local) masters directory")
    warm_parser.add_argument("--server", required=True, help="base URL of the server (or of the cache in front of it)")
    warm_parser.add_argument("--concurrency", type=int, default=4, help="requests in flight at once (default 4)")
    warm_parser.add_argument("--progress", action="store_true", help="show progress even when stderr is not a terminal")
    warm_parser.set_defaults(func=cmd_warm)


def cmd_purge(args: argparse.Namespace, config: Config) -> int:
    """Drop a master's renditions from the shared tiers (disk, S3) and from each named server."""
    prefix, tag = master_id(args.path), master_tag(args.path)
    headers = ", ".join(config.cache.surrogate_key_headers)
    failed = 0
    disk = Path(config.cache.disk_dir)
    if config.cache.disk_mb and disk.is_dir():  # never creates a cache directory where there is none
        print(f"edge-disk ({disk}): {purge_files(disk, prefix)} renditions removed")
    if config.cache.s3_url:
        from edge.caches.s3 import S3Tier  # aiobotocore: only where S3 is configured

        tier = S3Tier(config.cache.s3_url, config.s3)

        async def purge_s3() -> int:
            try:
                return await tier.purge(prefix)
            finally:
                await tier.close()

        print(f"edge-s3 ({config.cache.s3_url}): {asyncio.run(purge_s3())} renditions removed")
    for server in args.server or []:
        try:
            response = httpx.post(
                f"{server.rstrip('/')}/admin/purge/{args.path}",
                headers={"Authorization": f"Bearer {config.admin.token}"},
                timeout=30,
            )
        except httpx.HTTPError as e:
            print(f"{server}: not reachable ({type(e).__name__})", file=sys.stderr)
            failed += 1
            continue
        if response.status_code == 200:
            removed = response.json().get("removed", {})
            print(f"{server}: " + ", ".join(f"{tier} {n}" for tier, n in removed.items()) + " removed")
        else:
            detail = response.json().get("detail", "") if "json" in response.headers.get("content-type", "") else ""
            print(f"{server}: {response.status_code} {detail or response.text.strip()[:200]}", file=sys.stderr)
            failed += 1
    # Last: with the origin's copies gone first, a request in between cannot fill the CDN again.
    if config.cdn.provider:
        try:
            print(send_purge(config.cdn, tag, args.path, config.s3.region))
        except RuntimeError as e:
            print(f"CDN: {e}", file=sys.stderr)
            failed += 1
    elif headers:
        print(f"CDN: purge tag {tag} (sent as {headers} on every rendition of {args.path}; [cdn] sends it)")
    return 1 if failed else 0


def cmd_warm(args: argparse.Namespace, config: Config) -> int:
    ruleset = load_rule_set(config)
    masters = args.masters_to_warm or []
    if args.all:
        if config.masters_in_s3:
            raise ConfigError("--all lists local masters only; name the S3 masters to warm")
        masters = LocalMasterStore(config.masters_dir).list()
    sign = Signer(config.signing_keys()).sign_url
    capacity = capacity_of(config)
    requests = []
    for path in masters:
        requests += warm_requests(ruleset, lookup_master(config, path), sign, capacity)
    if not requests:
        print("edge: no rule declares any rendition of these masters", file=sys.stderr)
        return 1
    counts = asyncio.run(warm(args.server, requests, args.concurrency, args.progress or sys.stderr.isatty()))
    print(", ".join(f"{n} {what}" for what, n in sorted(counts.items())))
    return 1 if any(what.startswith("failed") for what in counts) else 0
