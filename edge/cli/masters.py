"""`edge masters check`: which files of the masters folder can be served, and why the others cannot.

edge masters check [--masters DIR] [PATH...]

A masters folder is user data (notes, manifests, bombs may sit beside the photos); the server
starts whatever it holds, and this says, on request, what each file is: size and format, or the
status and reason a request for it would get (415 undecodable, 422 over the limits...). Exit
status 1 when some file cannot be served, so a publishing pipeline can stop on it.
"""

from __future__ import annotations

import argparse

from edge.cli.commands import summary
from edge.cli.common import add_common
from edge.config import Config
from edge.services import survey_masters
from origin.core.errors import Problem
from origin.masters.local import LocalMasterStore


def register(subparsers: argparse._SubParsersAction) -> None:
    masters = subparsers.add_parser("masters", help=summary("masters"), description="Work with the masters folder.")
    actions = masters.add_subparsers(dest="masters_command", required=True)
    check = actions.add_parser(
        "check",
        help="say which masters can be served and why the others cannot",
        description="Look each master up as a request would (headers only, no pixels decoded): its size "
        "and format, or the status and reason it would get. Exit status 1 when any cannot be served.",
    )
    add_common(check)
    check.add_argument("paths", nargs="*", metavar="PATH", help="masters to check (default: every file)")
    check.set_defaults(func=cmd_check)


def cmd_check(args: argparse.Namespace, config: Config) -> int:
    if args.paths:
        paths = list(args.paths)
    elif config.masters_in_s3:
        raise SystemExit("edge: name the masters to check (an S3 prefix is not listed)")
    else:
        paths = LocalMasterStore(config.masters_dir).list()
    bad = 0
    for path, result in zip(paths, survey_masters(config, paths), strict=True):
        if isinstance(result, Problem):
            bad += 1
            print(f"{result.status}  {path}  {result.detail}")
        else:
            h = result.header
            frames = f", {h.frames} frames" if h.animated else ""
            print(f"ok   {path}  {h.width}x{h.height} {h.format}{frames}")
    print(f"{len(paths)} file(s): {len(paths) - bad} servable, {bad} not")
    return 1 if bad else 0
