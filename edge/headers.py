"""Validators and caching headers for renditions (pure functions): the one place where structured
outcomes (cache lookups, timings) are spelled as header values."""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from enum import Enum

from edge.caches.tiered import TierLookup

IMMUTABLE = "public, max-age=31536000, immutable"
UNVERSIONED = "public, max-age=300, stale-while-revalidate=86400"
STALE_VERSION = "public, max-age=60"
NO_STORE = "no-store"
PROVISIONAL_MAX_AGE = 60  # a fast encode's lifetime in caches: its better encode comes when the server is idle


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


def until_expiry(value: str, exp: int | None, now: float) -> str:
    """A Cache-Control value that keeps no copy fresh past a URL's `exp`: max-age at most the
    seconds left, never `immutable`, no `stale-while-revalidate` (it would serve past expiry)."""
    if exp is None:
        return value
    return f"public, max-age={min([max(0, exp - int(now)), *_max_ages(value)])}"


def _max_ages(value: str) -> list[int]:
    """The max-age values of a Cache-Control value (none or one, in what this server writes)."""
    return [int(part.split("=", 1)[1]) for part in value.replace(" ", "").split(",") if part.startswith("max-age=")]


def bearer_matches(authorization: str, token: str) -> bool:
    """Whether an Authorization header is `Bearer <token>` (RFC 9110 11.1: the scheme is
    case-insensitive; a bare token, without it, is refused), compared in constant time."""
    scheme, _, given = authorization.strip().partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def provisional(value: str) -> str:
    """The Cache-Control of a provisional rendition (edge.upgrades) that would otherwise get
    `value`: never longer than PROVISIONAL_MAX_AGE, never `immutable`."""
    return f"public, max-age={min([PROVISIONAL_MAX_AGE, *_max_ages(value)])}"


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


def cache_status(
    lookups: Iterable[TierLookup], *, stored: bool = False, collapsed: bool = False, unstored: Iterable[str] = ()
) -> str:
    """RFC 9211 Cache-Status: one member per tier asked, the origin side first. `stored` says the
    miss was stored, except in the tiers `unstored` names (they say why not in `detail`)."""
    members = []
    failed = set(unstored)
    for lookup in reversed(list(lookups)):
        if lookup.hit:
            member = f"{lookup.tier}; hit"
        elif stored and lookup.tier in failed:
            member = f'{lookup.tier}; fwd=miss; detail="not stored"'
        else:
            member = f"{lookup.tier}; fwd=miss" + ("; stored" if stored else "")
        members.append(member + ("; collapsed" if collapsed else ""))
    return ", ".join(members)


def server_timing(timings: Mapping[str, float]) -> str:
    """Server-Timing from seconds per phase: `fetch;dur=0.3, render;dur=24.1, encode;dur=61.7` (ms),
    with a `desc` where the timings carry a note (origin.pipeline.Timings: the quality search)."""
    notes: Mapping[str, str] = getattr(timings, "notes", {})
    return ", ".join(
        f"{name};dur={seconds * 1000:.1f}" + (f';desc="{notes[name]}"' if name in notes else "")
        for name, seconds in timings.items()
    )
