"""Validators and caching headers for renditions (pure functions)."""

from __future__ import annotations

from enum import Enum

IMMUTABLE = "public, max-age=31536000, immutable"
UNVERSIONED = "public, max-age=300, stale-while-revalidate=86400"
STALE_VERSION = "public, max-age=60"
NO_STORE = "no-store"

CONTENT_TYPES = {
    "avif": "image/avif",
    "webp": "image/webp",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "gif": "image/gif",
}


class VersionState(Enum):
    CURRENT = "current"  # v matches the master: the URL names these bytes forever
    ABSENT = "absent"  # no v: the master may change under this URL
    STALE = "stale"  # v names an older master: serve the current one, briefly


def version_state(requested: str | None, current: str) -> VersionState:
    if requested is None:
        return VersionState.ABSENT
    return VersionState.CURRENT if current.startswith(requested) else VersionState.STALE


def cache_control(state: VersionState) -> str:
    return {
        VersionState.CURRENT: IMMUTABLE,
        VersionState.ABSENT: UNVERSIONED,
        VersionState.STALE: STALE_VERSION,
    }[state]


def strong_etag(rendition_key: str) -> str:
    return f'"{rendition_key}"'


def if_none_match(header: str | None, etag: str) -> bool:
    """True when `If-None-Match` matches `etag` by weak comparison (RFC 9110 13.1.2), or is `*`."""
    if not header:
        return False
    if header.strip() == "*":
        return True
    opaque = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == opaque for tag in header.split(","))
