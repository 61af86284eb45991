"""`edge sign` (a signed, versioned URL for a master) and `edge hash` (its version hash; also `edge
version`, its first name).

`edge sign --from FILE|-` signs many at once for build pipelines: one master per line, as
`PATH [name=value ...]` (`cats/tom.jpg w=640 fm=avif`) or a JSON object (`{"path": "cats/tom.jpg",
"w": 640, "fm": "avif"}`), and prints JSON Lines (`{"line": 1, "path": ..., "url": ...}`, or
`"error"` for a line that cannot be signed; the exit status is then 1). Each master is read and
hashed once, however many lines name it.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Iterable
from dataclasses import replace
from typing import TextIO

from edge.cli.commands import summary
from edge.cli.common import add_common, warn_dev_key
from edge.config import Config, ConfigError
from edge.services import lookup_master, survey_masters
from edge.signing import Signer
from origin.core.errors import Problem
from origin.core.master import MasterRecord
from origin.core.request import OPTIONS, RenditionOptions, parse_options, shape_key

SIGN_OPTIONS = tuple(name for name in OPTIONS if name != "v")  # v comes from the master itself


def register(sub: argparse._SubParsersAction) -> None:
    sign = sub.add_parser(
        "sign",
        help=summary("sign"),
        description="Print the signed, versioned URL path and query (/img/...?...&s=...) for a master.",
    )
    add_common(sign)
    sign.add_argument("path", nargs="?", help="master path, relative to the masters directory")
    sign.add_argument(
        "--from",
        dest="from_file",
        metavar="FILE",
        help="sign one master per line of FILE (- for stdin): 'PATH name=value ...' or a JSON object; JSON Lines out",
    )
    for name in SIGN_OPTIONS:
        sign.add_argument(f"--{name}", help=OPTIONS[name].help)
    sign.add_argument(
        "--info", action="store_true", help="sign the master's /info/ URL (dimensions, version, placeholders) instead"
    )
    sign.set_defaults(func=cmd_sign)

    version = sub.add_parser(
        "hash",
        aliases=["version"],  # its first name, kept for scripts; `edge --version` is the program's
        help=summary("hash"),
        description="Print a master's version hash (blake3): the v= of its URLs.",
    )
    add_common(version)
    version.add_argument("path", help="master path, relative to the masters directory")
    version.add_argument("--full", action="store_true", help="print all 64 hex digits, not the URL prefix")
    version.set_defaults(func=cmd_version)


def cmd_sign(args: argparse.Namespace, config: Config) -> int:
    warn_dev_key(config)
    if args.from_file:
        if args.path:
            raise ConfigError("give a PATH or --from FILE, not both")
        stream = sys.stdin if args.from_file == "-" else open(args.from_file, encoding="utf-8")
        with stream:
            return sign_lines(stream, config, sys.stdout)
    if not args.path:
        raise ConfigError("edge sign needs a master PATH (or --from FILE)")
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


def parse_line(text: str) -> tuple[str, dict[str, str]]:
    """(master path, raw option values) of one --from line; ValueError when it is not one."""
    if text.lstrip().startswith("{"):
        item = json.loads(text)
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            raise ValueError('a JSON line needs "path" (a string)')
        return item.pop("path"), {str(k): str(v) for k, v in item.items()}
    words = shlex.split(text)
    options = {}
    for word in words[1:]:
        name, sep, value = word.partition("=")
        if not sep:
            raise ValueError(f"expected name=value after the path, got {word!r}")
        options[name] = value
    return words[0], options


def sign_lines(lines: Iterable[str], config: Config, out: TextIO) -> int:
    """Sign every line; JSON Lines to `out`; 1 when some line could not be signed."""
    signer = Signer(config.signing_keys())
    parsed: list[tuple[int, str, RenditionOptions | str]] = []
    for number, text in enumerate(lines, start=1):
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        try:
            path, values = parse_line(text)
            unknown = sorted(set(values) - set(SIGN_OPTIONS))
            if unknown:
                raise ValueError(f"unknown option {unknown[0]!r} (known: {', '.join(SIGN_OPTIONS)})")
            parsed.append((number, path, parse_options(values)))
        except (ValueError, Problem) as e:
            parsed.append((number, text.split()[0] if text.split() else "", getattr(e, "detail", None) or str(e)))
    paths = sorted({path for _, path, opts in parsed if not isinstance(opts, str)})
    records = dict(zip(paths, survey_masters(config, paths), strict=True))
    failed = False
    for number, path, opts in parsed:
        record = records.get(path)
        row: dict[str, object] = {"line": number, "path": path}
        if isinstance(opts, str):
            row["error"] = opts
        elif isinstance(record, MasterRecord):
            try:
                row["url"] = signer.sign_url(path, replace(opts, v=record.short_version))
            except ValueError as e:  # an unknown kid
                row["error"] = str(e)
        else:
            row["error"] = record.detail if isinstance(record, Problem) else "no master"
        failed = failed or "error" in row
        out.write(json.dumps(row, ensure_ascii=False) + "\n")
    return 1 if failed else 0


def cmd_version(args: argparse.Namespace, config: Config) -> int:
    record = lookup_master(config, args.path)
    print(record.version if args.full else record.short_version)
    return 0
