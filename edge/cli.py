"""The `edge` command: serve, sign, version. Every subcommand has --help."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

import edge.models_cli
import rules.cli
import sitemaps.cli
from edge.config import Config, ConfigError, load_config
from edge.options import PARSERS, RenditionOptions, validate
from edge.problems import Problem
from edge.stores import lookup_master
from origin.masters import LocalMasterStore

SIGN_OPTIONS = ("w", "h", "dpr", "fit", "g", "fx", "fy", "crop", "q", "fm", "exp", "kid")
PLUGINS = [rules.cli, sitemaps.cli, edge.models_cli]  # modules with register(subparsers, common): see build_parser


def _config(args: argparse.Namespace) -> Config:
    return load_config(
        args.config,
        **{
            "server.masters": getattr(args, "masters", None),
            "server.host": getattr(args, "host", None),
            "server.port": getattr(args, "port", None),
        },
    )


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from edge.app import create_app
    from edge.services import build_services

    config = _config(args)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("pyvips").setLevel(logging.WARNING)  # ~17 INFO lines per render otherwise
    access = logging.getLogger("edge.access")  # JSON lines, one per request, nothing around them
    access.propagate = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access.addHandler(handler)
    services = build_services(config)
    app = create_app(config, services)
    base = f"http://{config.server.host}:{config.server.port}"
    examples = [] if config.masters_in_s3 else LocalMasterStore(config.masters_dir).list()[:1]
    print(f"edge-image-cdn: masters in {config.masters_dir}", file=sys.stderr)
    for path in examples:
        record = lookup_master(config, path)
        opts = RenditionOptions(w=640, dpr=2, v=record.short_version)
        print(f"Try: {base}{services.signer.sign_url(path, opts)}", file=sys.stderr)
    # No per-request access log line from uvicorn: it costs a large share of a cache hit's CPU.
    uvicorn.run(app, host=config.server.host, port=config.server.port, log_level="info", access_log=False)
    return 0


def cmd_sign(args: argparse.Namespace) -> int:
    config = _config(args)
    from edge.signing import Signer

    values = {}
    for name in SIGN_OPTIONS:
        raw = getattr(args, name)
        if raw is not None:
            values[name] = PARSERS[name](name, str(raw))
    record = lookup_master(config, args.path)
    opts = validate(RenditionOptions(**values, v=record.short_version))  # type: ignore[arg-type]
    try:
        print(Signer(config.signing_keys()).sign_url(args.path, opts))
    except ValueError as e:  # an unknown --kid
        raise ConfigError(str(e)) from None
    return 0


def cmd_version(args: argparse.Namespace) -> int:
    record = lookup_master(_config(args), args.path)
    print(record.version if args.full else record.short_version)
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    """Drop a master's renditions from the shared tiers (disk, S3) and from each named server."""
    import httpx

    from edge.renditions import master_id
    from edge.services import build_services

    config = _config(args)
    services = build_services(config)
    shared = [t for t in services.tiers if t.name != "edge-memory"]

    async def purge_shared() -> dict[str, int]:
        try:
            return {t.name: await t.purge(master_id(args.path)) for t in shared}
        finally:
            for t in shared:
                close = getattr(t, "close", None)
                if close is not None:
                    await close()

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


def cmd_warm(args: argparse.Namespace) -> int:
    from edge.services import load_rule_set
    from edge.signing import Signer
    from edge.warm import warm, warm_requests

    config = _config(args)
    ruleset = load_rule_set(config)
    masters = args.masters_to_warm or []
    if args.all:
        if config.masters_in_s3:
            raise ConfigError("--all lists local masters only; name the S3 masters to warm")
        masters = LocalMasterStore(config.masters_dir).list()
    signer = Signer(config.signing_keys())
    requests = []
    for path in masters:
        requests += warm_requests(ruleset, lookup_master(config, path), signer.sign_url)
    if not requests:
        print("edge: no rule declares any rendition of these masters", file=sys.stderr)
        return 1
    counts = asyncio.run(warm(args.server, requests, args.concurrency, args.progress or sys.stderr.isatty()))
    print(", ".join(f"{n} {what}" for what, n in sorted(counts.items())))
    return 1 if any(what.startswith("failed") for what in counts) else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge", description="Image CDN origin: signed, negotiated renditions.")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", help="TOML config file (default: $EDGE_CONFIG)")
        p.add_argument("--masters", help="directory of masters (default: the bundled demo masters)")

    serve = sub.add_parser("serve", help="run the HTTP server", description="Run the HTTP server.")
    common(serve)
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8080)")
    serve.set_defaults(func=cmd_serve)

    sign = sub.add_parser(
        "sign",
        help="print a signed, versioned URL for a master",
        description="Print the signed, versioned URL path and query (/img/...?...&s=...) for a master.",
    )
    common(sign)
    sign.add_argument("path", help="master path, relative to the masters directory")
    helps = {
        "w": "width in CSS pixels, 1..8192",
        "h": "height in CSS pixels, 1..8192",
        "dpr": "device pixel ratio 1..4",
        "fit": "cover, contain, fill, inside or outside",
        "g": "gravity: center, n, s, e, w, ne, nw, se, sw, smart or focal",
        "fx": "focal point x, 0..1 (with --g focal)",
        "fy": "focal point y, 0..1 (with --g focal)",
        "crop": "region x,y,w,h of the master taken before resizing",
        "q": "quality 1..100",
        "fm": "auto, avif, webp, jpeg, png or gif",
        "exp": "unix time after which the URL is refused",
        "kid": "id of the signing key (default: the first key)",
    }
    for name in SIGN_OPTIONS:
        sign.add_argument(f"--{name}", help=helps[name])
    sign.set_defaults(func=cmd_sign)

    version = sub.add_parser(
        "version", help="print a master's version hash", description="Print a master's version hash (blake3)."
    )
    common(version)
    version.add_argument("path", help="master path, relative to the masters directory")
    version.add_argument("--full", action="store_true", help="print all 64 hex digits, not the URL prefix")
    version.set_defaults(func=cmd_version)

    purge = sub.add_parser(
        "purge",
        help="remove every rendition of a master from the caches",
        description="Remove every rendition of a master (all versions, all formats) from the shared disk and "
        "S3 tiers of this configuration, and from the memory of each --server (POST /admin/purge, with "
        "admin.token). Versioned URLs make this unnecessary for content changes: use it for takedowns.",
    )
    common(purge)
    purge.add_argument("path", help="master path, relative to the masters root")
    purge.add_argument("--server", action="append", help="base URL of a running server to purge too (repeatable)")
    purge.set_defaults(func=cmd_purge)

    warm = sub.add_parser(
        "warm",
        help="pre-render what the rules declare for some masters",
        description="Request, through a running server, every rendition the breakpoint rules declare for "
        "the given masters (negotiated URLs once per Accept bucket), so the first visitor never waits.",
    )
    common(warm)
    warm.add_argument("masters_to_warm", nargs="*", metavar="MASTER", help="master paths")
    warm.add_argument("--all", action="store_true", help="every master in the (local) masters directory")
    warm.add_argument("--server", required=True, help="base URL of the server (or of the cache in front of it)")
    warm.add_argument("--concurrency", type=int, default=4, help="requests in flight at once (default 4)")
    warm.add_argument("--progress", action="store_true", help="show progress even when stderr is not a terminal")
    warm.set_defaults(func=cmd_warm)

    # Feature packages add their own subcommands: each has register(subparsers, common).
    for module in PLUGINS:
        module.register(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as e:
        print(f"edge: configuration error: {e}", file=sys.stderr)
        return 2
    except Problem as e:
        print(f"edge: {e.detail}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
