"""`edge sitemap build`: image sitemaps from a pages manifest, with signed, versioned image URLs.

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

import argparse
import asyncio
import math
import sys
import time
from collections.abc import Callable
from typing import TextIO

from cachetools import LRUCache

from edge.options import MAX_SIZE, RenditionOptions
from edge.problems import Problem
from edge.signing import Signer, SigningKey
from edge.stores import close_store
from origin.limits import Limits
from origin.masters import MasterStore
from origin.probe import MasterHeader
from origin.versions import MasterIndex, MasterRecord
from sitemaps.build import BuildError, BuildReport, ImageUnavailable, build_sitemaps
from sitemaps.pages import PagesError, absolute_url, read_pages

URL_CACHE_ENTRIES = 100_000  # image URLs (and refusals) remembered: many pages share masters

WidthForRule = Callable[[str], "int | None"]


def sitemap_width(header: MasterHeader, limits: Limits, wanted: int | None = None) -> int | None:
    """The `w` for a sitemap image: None (the master's own size) or a width the server will render."""
    width = min(wanted, header.width) if wanted else header.width
    scale = width / header.width
    longest = max(header.width, header.height) * scale
    if longest > limits.max_output_side:
        scale *= limits.max_output_side / longest
    pixels = header.width * header.height * scale * scale
    if pixels > limits.max_output_pixels:
        scale *= math.sqrt(limits.max_output_pixels / pixels)
    width = min(math.floor(header.width * scale), MAX_SIZE)
    # The server rounds the height; step down past any rounding that would cross the pixel limit.
    for _ in range(8):
        if width * max(1, round(header.height * width / header.width)) <= limits.max_output_pixels:
            break
        width -= 1
    return None if width >= header.width else max(1, width)


class SignedImageURLs:
    """image_url for build_sitemaps: `base + /img/{master}?kid=..&v=..[&w=..]&s=..`, one lookup per master.

    A master the server would refuse (missing, too big, not an image) raises ImageUnavailable, so the
    sitemap never lists a URL that answers 4xx. Use it as a context manager (it runs an event loop).
    """

    def __init__(
        self,
        store: MasterStore,
        keys: list[SigningKey],
        limits: Limits,
        base_url: str,
        width_for_rule: WidthForRule | None = None,
        cache_entries: int = URL_CACHE_ENTRIES,
    ):
        self._store = store
        self._index = MasterIndex(store, limits, max_entries=cache_entries)
        self._signer = Signer(keys)
        self._limits = limits
        self._base = base_url.rstrip("/")
        self._width_for_rule = width_for_rule
        self._urls: LRUCache[tuple[str, str | None], str | ImageUnavailable] = LRUCache(cache_entries)
        self._runner = asyncio.Runner()

    def __enter__(self) -> SignedImageURLs:
        return self

    def __exit__(self, *exc: object) -> None:
        # The store's connections (S3, HTTP) belong to this runner's loop: close them there.
        self._runner.run(close_store(self._store))
        self._runner.close()

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
            record: MasterRecord = self._runner.run(self._index.lookup(master))
        except Problem as problem:
            return ImageUnavailable(f"{problem.detail} ({problem.status})")
        wanted = self._width_for_rule(rule) if rule and self._width_for_rule else None
        width = sitemap_width(record.header, self._limits, wanted)
        return self._base + self._signer.sign_url(master, RenditionOptions(w=width, v=record.short_version))


class ProgressLine:
    """A one-line progress display on a terminal: `\\r`-updated, a few times a second at most."""

    def __init__(self, stream: TextIO, interval: float = 0.25, clock: Callable[[], float] = time.monotonic):
        self.stream, self.interval, self.clock = stream, interval, clock
        self.start = clock()
        self._last = -math.inf

    def __call__(self, report: BuildReport) -> None:
        now = self.clock()
        if now - self._last >= self.interval:
            self._last = now
            self._show(report, now)

    def _show(self, report: BuildReport, now: float) -> None:
        elapsed = max(now - self.start, 1e-9)
        self.stream.write(
            f"\rsitemap: {report.pages:,} pages, {report.images:,} images, {len(report.files)} files, "
            f"{report.pages / elapsed:,.0f} pages/s, {elapsed:.0f} s "
        )
        self.stream.flush()

    def close(self, report: BuildReport) -> None:
        self._show(report, self.clock())
        self.stream.write("\n")
        self.stream.flush()


def cmd_build(args: argparse.Namespace, width_for_rule: WidthForRule | None = None) -> int:
    from edge.cli import _config  # here, not at the top: edge.cli imports this module as a plug-in
    from edge.stores import master_store

    config = _config(args)
    show_progress = args.progress or sys.stderr.isatty()
    progress = ProgressLine(sys.stderr) if show_progress else None
    if config.uses_dev_key:
        print("edge: warning: signing with the built-in development key; set EDGE_KEYS", file=sys.stderr)
    try:
        image_base = absolute_url(args.image_base_url or args.base_url, "image base URL")
    except ValueError as e:
        print(f"edge: {e}", file=sys.stderr)
        return 1
    store = master_store(config)
    try:
        with SignedImageURLs(store, config.signing_keys(), config.limits, image_base, width_for_rule) as urls:
            report = build_sitemaps(
                read_pages(args.pages),
                base_url=args.base_url,
                out_dir=args.out,
                image_url=urls,
                gzip=args.gzip,
                progress=progress,
            )
    except (PagesError, BuildError) as e:
        if progress is not None:
            sys.stderr.write("\n")
        print(f"edge: {e}", file=sys.stderr)
        return 1
    if progress is not None:
        progress.close(report)
    for warning in report.warnings:
        print(f"edge: warning: {warning}", file=sys.stderr)
    if report.warnings_not_shown:
        print(f"edge: warning: ... and {report.warnings_not_shown} more", file=sys.stderr)
    print(report.summary())
    return 0


def register(subparsers: argparse._SubParsersAction, common: Callable[[argparse.ArgumentParser], object]) -> None:
    sitemap = subparsers.add_parser(
        "sitemap", help="build Google image sitemaps", description="Build Google image sitemaps from a pages manifest."
    )
    actions = sitemap.add_subparsers(dest="sitemap_command", required=True)
    build = actions.add_parser(
        "build",
        help="write image sitemaps and their index from a pages manifest",
        description=(
            "Write sitemap-00001.xml... (at most 50,000 pages and 50 MB each) and sitemap-index.xml into --out, "
            "with signed, versioned image URLs. Files whose content did not change are left untouched."
        ),
    )
    common(build)
    build.add_argument(
        "--pages", required=True, help="manifest: .csv with header page,master[,rule], .jsonl, .json or .yaml"
    )
    build.add_argument("--base-url", required=True, help="where this server is reached, e.g. https://img.example.com")
    build.add_argument("--image-base-url", help="prefix of the image URLs if not --base-url (e.g. your CDN's host)")
    build.add_argument("--out", required=True, help="directory for the sitemap files (served at /sitemaps/)")
    build.add_argument("--gzip", action="store_true", help="write .xml.gz files (the index stays plain XML)")
    build.add_argument("--progress", action="store_true", help="show progress even when stderr is not a terminal")
    build.set_defaults(func=cmd_build)
