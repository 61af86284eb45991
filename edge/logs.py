"""How `edge serve` logs (each worker process too): INFO with the logger's name on stderr, and the
access log (edge.access_log, one per request) and the render audit (edge.renditions, one per rendition
made) as bare JSON lines, nothing around them."""

from __future__ import annotations

import logging
import sys


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("pyvips").setLevel(logging.WARNING)  # ~17 INFO lines per render otherwise
    for name in ("edge.access", "edge.render"):  # JSON lines, bare
        lines = logging.getLogger(name)
        if not lines.handlers:
            lines.propagate = False
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("%(message)s"))
            lines.addHandler(handler)
