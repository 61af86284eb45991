"""HTTP dates (RFC 9110 5.6.7): what stores read from `Last-Modified` and the edge writes into it."""

from __future__ import annotations

from email.utils import formatdate, parsedate_to_datetime


def http_date(timestamp: float) -> str:
    """IMF-fixdate in whole seconds: `Wed, 02 Dec 2026 04:00:07 GMT`."""
    return formatdate(int(timestamp), usegmt=True)


def parse_http_date(value: str | None) -> float | None:
    """Unix seconds of an HTTP date; None when absent or not a date (callers then ignore it)."""
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
