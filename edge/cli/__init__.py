"""The `edge` command. Each module of this package registers its subcommands (every one has --help)
and is called with the configuration main() loaded from --config, the environment and the flags.
edge.cli.commands says which module registers which command; only the module of the command
that runs is imported. `--version` is here (Versions).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from edge.cli.commands import COMMANDS, module_of
from edge.cli.common import config_from_args
from edge.config import ConfigError
from origin.core.errors import Problem
from origin.core.software import SOFTWARE


class Versions(argparse.Action):
    """`edge --version`: this package's, libvips' and onnxruntime's versions."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(
            option_strings, dest, nargs=0, help="print the versions of edge-image-cdn, libvips and onnxruntime"
        )

    def __call__(self, parser: argparse.ArgumentParser, *_args: object, **_kwargs: object) -> None:
        # Loaded here: only --version needs libvips and onnxruntime themselves.
        libvips = importlib.import_module("origin.imaging.runtime").libvips_version()
        onnxruntime = importlib.import_module("origin.superres.runtime").onnxruntime_version()
        print(f"{SOFTWARE} libvips/{libvips} onnxruntime/{onnxruntime}")
        parser.exit()


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser. With `argv`, only the module of the command it names is imported (and none
    for `edge --help`): the others are listed by their help line alone. Without, every one."""
    parser = argparse.ArgumentParser(prog="edge", description="Image CDN origin: signed, negotiated renditions.")
    parser.add_argument("--version", action=Versions)
    sub = parser.add_subparsers(dest="command", required=True)
    if argv is None:
        modules = list(dict.fromkeys(module for module, _ in COMMANDS.values()))
    else:
        named = next((module_of(arg) for arg in argv if not arg.startswith("-")), None)
        modules = [named] if named else []
    for module in modules:
        importlib.import_module(module).register(sub)
    for name, (_, help_line) in COMMANDS.items():
        if name not in sub.choices:  # listed, never parsed: its module registers it when it runs
            sub.add_parser(name, help=help_line)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    try:
        code: int = args.func(args, config_from_args(args))
        return code
    except ConfigError as e:
        print(f"edge: configuration error: {e}", file=sys.stderr)
        return 2
    except Problem as e:
        print(f"edge: {e.detail}", file=sys.stderr)
        return 1
