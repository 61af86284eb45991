"""`edge sign` (a signed, versioned URL for a master) and `edge version` (its version hash)."""

from __future__ import annotations

import argparse
from dataclasses import replace

from edge.cli.common import add_common
from edge.config import Config, ConfigError
from edge.services import lookup_master
from edge.signing import Signer
from origin.core.request import OPTIONS, parse_options, shape_key

SIGN_OPTIONS = tuple(name for name in OPTIONS if name != "v")  # v comes from the master itself


def register(sub: argparse._SubParsersAction) -> None:
    sign = sub.add_parser(
        "sign",
        help="print a signed, versioned URL for a master",
        description="Print the signed, versioned URL path and query (/img/...?...&s=...) for a master.",
    )
    add_common(sign)
    sign.add_argument("path", help="master path, relative to the masters directory")
    for name in SIGN_OPTIONS:
        sign.add_argument(f"--{name}", help=OPTIONS[name].help)
    sign.add_argument(
        "--info", action="store_true", help="sign the master's /info/ URL (dimensions, version, placeholders) instead"
    )
    sign.set_defaults(func=cmd_sign)

    version = sub.add_parser(
        "version", help="print a master's version hash", description="Print a master's version hash (blake3)."
    )
    add_common(version)
    version.add_argument("path", help="master path, relative to the masters directory")
    version.add_argument("--full", action="store_true", help="print all 64 hex digits, not the URL prefix")
    version.set_defaults(func=cmd_version)


def cmd_sign(args: argparse.Namespace, config: Config) -> int:
    values = {name: str(getattr(args, name)) for name in SIGN_OPTIONS if getattr(args, name) is not None}
    opts = parse_options(values)  # a 400 Problem names a bad option before the master is read
    if args.info and shape_key(opts):
        raise ConfigError("--info takes no rendering options (only --exp and --kid)")
    record = lookup_master(config, args.path)
    opts = replace(opts, v=record.short_version)
    try:
        print(Signer(config.signing_keys()).sign_url(args.path, opts, "info" if args.info else "img"))
    except ValueError as e:  # an unknown --kid
        raise ConfigError(str(e)) from None
    return 0


def cmd_version(args: argparse.Namespace, config: Config) -> int:
    record = lookup_master(config, args.path)
    print(record.version if args.full else record.short_version)
    return 0
