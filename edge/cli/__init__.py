"""The `edge` command. Each module of this package registers its subcommands (every one has --help)
and is called with the configuration main() loaded from --config, the environment and the flags:

    serve                          edge.cli.serve
    sign, hash (alias version)     edge.cli.sign
    --version                      edge.cli (Versions)
    purge, warm                    edge.cli.caches
    rules check, srcset, preload   edge.cli.rules
    sitemap build                  edge.cli.sitemaps
    models list, models add        edge.cli.models
    deploy nginx                   edge.cli.deploy
    masters check                  edge.cli.masters
    provenance FILE|URL            edge.cli.provenance
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from edge.cli import caches, deploy, masters, models, provenance, rules, serve, sign, sitemaps
from edge.cli.common import config_from_args
from edge.config import ConfigError
from origin.core.errors import Problem
from origin.core.software import SOFTWARE
from origin.imaging.runtime import libvips_version
from origin.superres.runtime import onnxruntime_version

GROUPS = [
    serve,
    sign,
    caches,
    rules,
    sitemaps,
    models,
    deploy,
    masters,
    provenance,
]  # modules with register(subparsers)


class Versions(argparse.Action):
    """`edge --version`: this package's, libvips' and onnxruntime's versions."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(
            option_strings, dest, nargs=0, help="print the versions of edge-image-cdn, libvips and onnxruntime"
        )

    def __call__(self, parser: argparse.ArgumentParser, *_args: object, **_kwargs: object) -> None:
        print(f"{SOFTWARE} libvips/{libvips_version()} onnxruntime/{onnxruntime_version()}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge", description="Image CDN origin: signed, negotiated renditions.")
    parser.add_argument("--version", action=Versions)
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args, config_from_args(args))
        return code
    except ConfigError as e:
        print(f"edge: configuration error: {e}", file=sys.stderr)
        return 2
    except Problem as e:
        print(f"edge: {e.detail}", file=sys.stderr)
        return 1
