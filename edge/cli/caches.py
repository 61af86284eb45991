"""`edge purge` (drop a master's renditions from the caches) and `edge warm` (fill them from the rules)."""

from __future__ import annotations

import argparse
import asyncio
import sys

import httpx

from edge.cli.common import add_common
from edge.config import Config, ConfigError
from edge.services import cache_tiers, capacity_of, load_rule_set, lookup_master
from edge.signing import Signer
from edge.warm import warm, warm_requests
from origin.core.keys import master_id
from origin.masters.local import LocalMasterStore


def register(sub: argparse._SubParsersAction) -> None:
    purge = sub.add_parser(
        "purge",
        help="remove every rendition of a master from the caches",
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
        help="pre-render what the rules declare for some masters",
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
    shared = cache_tiers(config, shared_only=True)

    async def purge_shared() -> dict[str, int]:
        try:
            return {t.name: await t.purge(master_id(args.path)) for t in shared}
        finally:
            for t in shared:
                await t.close()

    print(f"shared tiers: {asyncio.run(purge_shared())}")
    failed = 0
    for server in args.server or []:
        response = httpx.post(
            f"{server.rstrip('/')}/admin/purge/{args.path}",
            headers={"Authorization": f"Bearer {config.admin.token}"},
            timeout=30,
        )
        print(f"{server}: {response.status_code} {response.text.strip()}")
        failed += response.status_code != 200
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
