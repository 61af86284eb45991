"""The `edge` command in tests: in process (`run_cli`, exceptions propagate) or as a real
subprocess (`edge`, exit code and output as a user sees them)."""

from __future__ import annotations

import os
import subprocess
import sys

from edge.cli import build_parser
from edge.cli.common import config_from_args
from tests.support.corpus import TEST_KEYS


def run_cli(*argv: str) -> int:
    """Run a subcommand in this process; a Problem or ConfigError is raised, not printed."""
    args = build_parser().parse_args(argv)
    code: int = args.func(args, config_from_args(args))
    return code


def edge(
    *args: str,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    timeout: float = 60,
    inherit_env: bool = False,
) -> subprocess.CompletedProcess[str]:
    """`python -m edge.cli ARGS`: a clean environment with the test keys unless `inherit_env`."""
    base = dict(os.environ) if inherit_env else {"PATH": "/usr/bin:/bin", "EDGE_KEYS": TEST_KEYS}
    return subprocess.run(
        [sys.executable, "-m", "edge.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        timeout=timeout,
    )
