"""How `edge serve` logs (each worker process too), in one format per stream:

- text (a terminal's default): `LEVEL logger: message` for every line, the access log
  (edge.access_log, one per request) and the render audit (edge.renditions, one per rendition)
  included, their message being their JSON record;
- json (the default when stderr is not a terminal: a container, a pipe, a file): every line one
  JSON object, `{"time", "level", "logger", "message"}` (and `"error"` with a traceback), the
  access and audit lines their own records as they are (already objects, kept bare: they are on
  the hot path).

uvicorn's own loggers go through the same handlers (edge.cli.serve passes it no log config).
"""

from __future__ import annotations

import json
import logging
import sys

LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("auto", "json", "text")
RECORD_LOGGERS = ("edge.access", "edge.render")  # their messages are JSON records already
TEXT = "%(levelname)s %(name)s: %(message)s"


class OwnHandler(logging.StreamHandler):
    """The handlers configure_logging installs (and replaces when it runs again)."""


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def resolve_format(fmt: str) -> str:
    """`auto`: json unless stderr is a terminal."""
    if fmt == "auto":
        return "text" if sys.stderr.isatty() else "json"
    return fmt


def configure_logging(level: str = "info", fmt: str = "auto") -> None:
    """`level` for the server's own lines (the access log and render audit are INFO lines: they go
    quiet at warning and above); `fmt` json, text or auto."""
    text = resolve_format(fmt) == "text"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(TEXT) if text else JsonFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    logging.getLogger("pyvips").setLevel(logging.WARNING)  # ~17 INFO lines per render otherwise
    for name in RECORD_LOGGERS:
        lines = logging.getLogger(name)
        for old in [h for h in lines.handlers if isinstance(h, OwnHandler)]:  # a test's stay
            lines.removeHandler(old)
        lines.propagate = False
        own = OwnHandler(sys.stderr)
        own.setFormatter(logging.Formatter(TEXT if text else "%(message)s"))
        lines.addHandler(own)
    for name in ("uvicorn", "uvicorn.error"):  # through the root's handler
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    # Never uvicorn's access lines: ours (edge.access_log) say more, and only when server.access_log
    # is on. uvicorn logs them whenever this logger has a handler, its ancestors' included: with it
    # propagating, every hit paid for a line (hits at 0.15x nginx instead of 0.24x).
    quiet = logging.getLogger("uvicorn.access")
    quiet.handlers.clear()
    quiet.propagate = False
