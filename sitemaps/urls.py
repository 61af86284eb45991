"""Which image URL a sitemap lists for a master, signed and versioned (lookup and signing passed in).

Which rendition a sitemap points to: the master at its own size (`v=` only, no `w`), unless a rule
hook gives a width for the row's rule. Google Images wants the largest, best version of an image and
keeps one URL per image; a `v`-only URL is that version, and it changes only when the master's bytes
do, so the search index is not churned by every new breakpoint. The format stays `auto`: the server
negotiates it from Googlebot's `Accept` like any browser's. Two adjustments keep every URL one the
server will actually render: a width from a rule is never above the master's (no invented pixels in
search results), and a master bigger than `limits.max_output_pixels` / `max_output_side` gets the
largest width that fits (otherwise its URL would be a 422).
"""

from __future__ import annotations

from collections.abc import Callable

from cachetools import LRUCache

from origin.core.errors import Problem
from origin.core.limits import Limits, own_size_width
from origin.core.master import MasterHeader, MasterRecord
from origin.core.request import RenditionOptions
from sitemaps.build import ImageUnavailable

URL_CACHE_ENTRIES = 100_000  # image URLs (and refusals) remembered: many pages share masters

WidthForRule = Callable[[str], "int | None"]
Lookup = Callable[[str], MasterRecord]  # a master's record, or a Problem (404, 413, 415, ...)
Sign = Callable[[str, RenditionOptions], str]  # (master path, options) -> full signed URL


def sitemap_width(header: MasterHeader, limits: Limits, wanted: int | None = None) -> int | None:
    """The `w` for a sitemap image: None (the master's own size) or a width the server will render."""
    return own_size_width(header.width, header.height, limits, wanted)


class SignedImageURLs:
    """image_url for build_sitemaps: `sign(master, v=..[, w=..])`, one lookup per master.

    A master the server would refuse (missing, too big, not an image) raises ImageUnavailable, so the
    sitemap never lists a URL that answers 4xx.
    """

    def __init__(
        self,
        lookup: Lookup,
        sign: Sign,
        limits: Limits,
        width_for_rule: WidthForRule | None = None,
        cache_entries: int = URL_CACHE_ENTRIES,
    ):
        self._lookup = lookup
        self._sign = sign
        self._limits = limits
        self._width_for_rule = width_for_rule
        self._urls: LRUCache[tuple[str, str | None], str | ImageUnavailable] = LRUCache(cache_entries)

    def __call__(self, master: str, rule: str | None = None) -> str:
        key = (master, rule)
        url = self._urls.get(key)
        if url is None:
            url = self._make(master, rule)
            self._urls[key] = url
        if isinstance(url, ImageUnavailable):
            raise ImageUnavailable(str(url))
        return url

    def _make(self, master: str, rule: str | None) -> str | ImageUnavailable:
        try:
            record = self._lookup(master)
        except Problem as problem:
            return ImageUnavailable(f"{problem.detail} ({problem.status})")
        wanted = self._width_for_rule(rule) if rule and self._width_for_rule else None
        width = sitemap_width(record.header, self._limits, wanted)
        return self._sign(master, RenditionOptions(w=width, v=record.short_version))
