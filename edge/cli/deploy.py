"""`edge deploy nginx`: print the nginx cache tier's config (edge.deploy)."""

from __future__ import annotations

import argparse
from pathlib import Path

from edge.cli.commands import summary
from edge.cli.common import add_common
from edge.config import Config
from edge.deploy import nginx_config


def register(sub: argparse._SubParsersAction) -> None:
    deploy = sub.add_parser("deploy", help=summary("deploy"), description="Deployment.")
    targets = deploy.add_subparsers(dest="deploy_target", required=True)
    nginx = targets.add_parser(
        "nginx",
        help="the nginx cache tier for in front of origins",
        description="Print a complete nginx config for the cache tier (Accept normalised into the classes the "
        "origin tells apart, one cache entry per class). Without flags the @LISTEN@/@ORIGIN@/@CACHE_DIR@ "
        "placeholders stay in, as in deploy/nginx/edge-cache.conf.",
    )
    add_common(nginx)
    nginx.add_argument("--listen", help="address:port to serve on, e.g. 0.0.0.0:80")
    nginx.add_argument("--origin", help="the origin's address:port (or http://address:port)")
    nginx.add_argument("--cache-dir", help="directory for the cache files and the pid file (made absolute)")
    nginx.set_defaults(func=cmd_nginx)


def cmd_nginx(args: argparse.Namespace, _config: Config) -> int:
    given = [args.listen, args.origin, args.cache_dir]
    if any(given) and not all(given):
        raise SystemExit("edge: give --listen, --origin and --cache-dir together (or none, for the placeholders)")
    if not any(given):
        print(nginx_config(), end="")
        return 0
    origin = args.origin.removeprefix("http://").rstrip("/")
    print(nginx_config(args.listen, origin, str(Path(args.cache_dir).resolve())), end="")
    return 0
