"""What every subcommand shares: the --config and --masters flags, and the configuration they load."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from edge.config import Config, load_config

Command = Callable[[argparse.Namespace, Config], int]


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML config file (default: $EDGE_CONFIG)")
    parser.add_argument("--masters", help="directory of masters (default: the bundled demo masters)")


def warn_dev_key(config: Config) -> None:
    """The warning of every command that signs URLs with the built-in development key."""
    if config.uses_dev_key:
        print("edge: warning: signing with the built-in development key; set EDGE_KEYS", file=sys.stderr)


def config_from_args(args: argparse.Namespace) -> Config:
    """The configuration: the file, then the environment, then the command line's flags."""
    return load_config(
        getattr(args, "config", None),
        **{
            "server.masters": getattr(args, "masters", None),
            "server.host": getattr(args, "host", None),
            "server.port": getattr(args, "port", None),
            "server.log_level": getattr(args, "log_level", None),
            "server.log_format": getattr(args, "log_format", None),
        },
    )
