"""How `edge serve` logs (each worker process too): INFO with the logger's name on stderr, and the
access log (edge.access_log, one per request) and the render audit (edge.renditions, one per rendition
made) as bare JSON lines, nothing around them."""

from __future__ import annotations

import logging
import sys

LEVELS = ("debug", "info", "warning", "error")


def configure_logging(level: str = "info") -> None:
    """`level` for the server's own lines (the access log and render audit are INFO lines: they go
    quiet at warning and above)."""
    logging.basicConfig(level=level.upper(), format="%(levelname)s %(name)s: %(message)s", force=True)
    logging.getLogger("pyvips").setLevel(logging.WARNING)  # ~17 INFO lines per render otherwise
    for name in ("edge.access", "edge.render"):  # JSON lines, bare
        lines = logging.getLogger(name)
        if not lines.handlers:
            lines.propagate = False
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("%(message)s"))
            lines.addHandler(handler)
