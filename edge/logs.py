"""How `edge serve` logs (each worker process too): INFO with the logger's name on stderr, and the
access log as bare JSON lines (edge.access_log), one per request, nothing around them."""

from __future__ import annotations

import logging
import sys


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("pyvips").setLevel(logging.WARNING)  # ~17 INFO lines per render otherwise
    access = logging.getLogger("edge.access")
    if not access.handlers:
        access.propagate = False
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        access.addHandler(handler)
