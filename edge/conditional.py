"""Conditional and range requests (RFC 9110 13 and 14), as pure functions over header values.

The order is RFC 9110 13.2.2's: `If-Match` (else `If-Unmodified-Since`) can fail a request with
412; then `If-None-Match` (else `If-Modified-Since`) makes it a 304; then a single `Range`
(honoured only when `If-Range` still names this representation) makes it a 206, or a 416 when
it lies wholly past the end. Several ranges in one request are answered with the whole body
(allowed, and what most origins do: a rendition is small). ETags here are strong, so `If-Match`
and `If-Range` compare strongly; `If-None-Match` weakly (edge.headers.if_none_match).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from edge.headers import if_none_match
from origin.core.dates import parse_http_date

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


@dataclass(frozen=True)
class Conditions:
    """The conditional headers of a request (the first of each), as sent."""

    if_match: str | None = None
    if_none_match: str | None = None
    if_modified_since: str | None = None
    if_unmodified_since: str | None = None
    range: str | None = None
    if_range: str | None = None


FIELDS = {  # request header -> Conditions field
    b"if-match": "if_match",
    b"if-none-match": "if_none_match",
    b"if-modified-since": "if_modified_since",
    b"if-unmodified-since": "if_unmodified_since",
    b"range": "range",
    b"if-range": "if_range",
}


NONE = Conditions()


def conditions_of(headers: Iterable[tuple[bytes, bytes]]) -> Conditions:
    """The conditional headers of a request (ASGI: lower-case names; the first of each); `NONE`,
    the one shared instance, when it has none (most requests)."""
    found: dict[str, str] = {}
    for name, value in headers:
        if name in FIELDS:
            found.setdefault(FIELDS[name], value.decode("latin-1"))
    return Conditions(**found) if found else NONE


def _strong_match(header: str, etag: str) -> bool:
    if header.strip() == "*":
        return True
    return not etag.startswith("W/") and any(tag.strip() == etag for tag in header.split(","))


def precondition(conditions: Conditions, etag: str, modified: float | None) -> int | None:
    """412, 304, or None (go on) for a GET or HEAD of a representation with `etag` and
    `modified` (unix seconds, None when unknown)."""
    if conditions.if_match is not None:
        if not _strong_match(conditions.if_match, etag):
            return 412
    elif modified is not None:
        since = parse_http_date(conditions.if_unmodified_since)
        if since is not None and int(modified) > int(since):
            return 412
    if conditions.if_none_match is not None:
        return 304 if if_none_match(conditions.if_none_match, etag) else None
    if modified is not None:
        since = parse_http_date(conditions.if_modified_since)
        if since is not None and int(modified) <= int(since):
            return 304
    return None


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive

    def content_range(self, length: int) -> str:
        return f"bytes {self.start}-{self.end}/{length}"


UNSATISFIABLE = "unsatisfiable"


def byte_range(conditions: Conditions, etag: str, modified: float | None, length: int) -> ByteRange | str | None:
    """The one range to send, UNSATISFIABLE (416), or None (send the whole body: no Range, a
    stale If-Range, several ranges, or a Range that is not bytes=)."""
    header = conditions.range
    if header is None or not _if_range_holds(conditions.if_range, etag, modified):
        return None
    m = _RANGE.fullmatch(header.strip().replace(" ", ""))
    if m is None:
        return None  # several ranges or another unit: the whole body is a valid answer
    first, last = m.groups()
    if not first and not last:
        return None
    if not first:  # a suffix: the last N bytes
        n = int(last)
        if n == 0 or length == 0:
            return UNSATISFIABLE
        return ByteRange(max(0, length - n), length - 1)
    start = int(first)
    end = min(int(last), length - 1) if last else length - 1
    if last and int(last) < start:
        return None  # invalid: ignored
    if start >= length:
        return UNSATISFIABLE
    return ByteRange(start, end)


def _if_range_holds(if_range: str | None, etag: str, modified: float | None) -> bool:
    if if_range is None:
        return True
    value = if_range.strip()
    if value.startswith('"') or value.startswith("W/"):
        return value == etag and not etag.startswith("W/")
    since = parse_http_date(value)
    return since is not None and modified is not None and int(modified) == int(since)
