"""Output format negotiation from the `Accept` header.

Browsers announce AVIF and WebP support by naming them (`image/avif,image/webp,*/*`); a wildcard
proves nothing about a modern codec, so AVIF and WebP count as accepted only when named with q > 0
(`image/avif;q=0` means "not AVIF"). JPEG, PNG and GIF are understood by every client and are the
fallbacks. Alpha is never sent as JPEG; animation goes out as animated WebP, else GIF.
"""

from __future__ import annotations

from dataclasses import dataclass

from origin.core.formats import FORMATS, NAMED, fallback, keeps


@dataclass(frozen=True)
class MediaRange:
    type: str
    subtype: str
    q: float


def weighted(header: str | None) -> list[tuple[str, float]]:
    """The items of an RFC 9110 weighted list (Accept, Accept-Encoding), lower case, each with its
    q-value in 0..1; an unreadable weight counts as 0 (no evidence of support)."""
    items: list[tuple[str, float]] = []
    for part in (header or "").split(","):
        item, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(max(float(value.strip()), 0.0), 1.0)
                except ValueError:
                    q = 0.0
                if q != q:  # NaN passes min/max unchanged and would make max() depend on the order
                    q = 0.0
        if item:
            items.append((item.lower(), q))
    return items


def parse_accept(header: str | None) -> list[MediaRange]:
    """Media ranges with their q-values; malformed parts are skipped, as RFC 9110 clients expect."""
    ranges: list[MediaRange] = []
    for media, q in weighted(header):
        type_, sep, subtype = media.partition("/")
        if sep and type_ and subtype:
            ranges.append(MediaRange(type_, subtype, q))
    return ranges


def names_format(ranges: list[MediaRange], fmt: str) -> bool:
    """True when the client names `image/{fmt}` with q > 0 (the most specific mention wins)."""
    qs = [r.q for r in ranges if r.type == "image" and r.subtype == fmt]
    return bool(qs) and max(qs) > 0


def negotiate_format(
    accept: str | None,
    preference: tuple[str, ...] = ("avif", "webp", "jpeg"),
    *,
    has_alpha: bool = False,
    animated: bool = False,
) -> str:
    """The first format in `preference` that the client takes and that keeps what the master has."""
    ranges = parse_accept(accept)

    def takes(fmt: str) -> bool:
        return names_format(ranges, fmt) if FORMATS[fmt].named else True

    candidates = [f for f in preference if keeps(f, alpha=has_alpha, animated=animated)]
    return next((f for f in candidates if takes(f)), fallback(alpha=has_alpha, animated=animated))


def accept_bucket(accept: str | None) -> str:
    """The cache-relevant class of an Accept header, a key of ACCEPT_BUCKETS: 'avif', 'webp' or
    'other' (for CDN cache keys; origin.core.formats says what each bucket's Accept is)."""
    ranges = parse_accept(accept)
    return next((f for f in NAMED if names_format(ranges, f)), "other")
