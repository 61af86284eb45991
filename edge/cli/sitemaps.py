"""`edge sitemap build`: image sitemaps from a pages manifest, with signed, versioned image URLs
(which URL each image gets: sitemaps.urls)."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import math
import sys
import time
from collections.abc import Callable
from typing import TextIO
from urllib.parse import urlsplit

from edge.cli.commands import summary
from edge.cli.common import add_common, warn_dev_key
from edge.config import DEV_KEYS, Config
from edge.services import master_store
from edge.signing import Signer, parse_keys
from origin.masters.index import MasterIndex
from sitemaps.build import MAX_WARNINGS, BuildError, BuildReport, build_sitemaps
from sitemaps.pages import PagesError, RowError, absolute_url, read_pages
from sitemaps.urls import URL_CACHE_ENTRIES, SignedImageURLs, WidthForRule

LINE_INTERVAL_S = 10.0  # progress lines when stderr is not a terminal


class ProgressLine:
    """Build progress on stderr: on a terminal one `\\r`-updated line, a few times a second at
    most; elsewhere (`lines`: a log, CI) a plain line every `interval` seconds, so a build of
    less than that prints nothing and a long one shows it is alive."""

    def __init__(
        self,
        stream: TextIO,
        interval: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
        lines: bool = False,
    ):
        self.stream, self.interval, self.clock, self.lines = stream, interval, clock, lines
        self.start = clock()
        self._last = self.start if lines else -math.inf
        self.shown = False

    def __call__(self, report: BuildReport) -> None:
        now = self.clock()
        if now - self._last >= self.interval:
            self._last = now
            self._show(report, now)

    def _show(self, report: BuildReport, now: float) -> None:
        elapsed = max(now - self.start, 1e-9)
        text = (
            f"sitemap: {report.pages:,} pages, {report.images:,} images, {len(report.files)} files, "
            f"{report.pages / elapsed:,.0f} pages/s, {elapsed:.0f} s"
        )
        self.stream.write(f"{text}\n" if self.lines else f"\r{text} ")
        self.stream.flush()
        self.shown = True

    def close(self, report: BuildReport) -> None:
        if self.lines:
            if self.shown:  # the last figures, after the periodic ones
                self._show(report, self.clock())
            return
        self._show(report, self.clock())
        self.stream.write("\n")
        self.stream.flush()


def dev_key_refusal(config: Config, image_base: str) -> str | None:
    """Why the development key must not sign these sitemaps, or None. Its URLs answer 403 on any
    server with real keys, and a crawler would only find out weeks later: so it may sign only
    URLs for this machine (a demo), and never while real keys are configured beside it."""
    keys = config.signing_keys()
    if keys[0].secret != parse_keys(DEV_KEYS)[0].secret:
        return None
    if len(keys) > 1:
        return "the development key signs (it is first in signing.keys) while real keys are configured"
    host = urlsplit(image_base).hostname or ""
    if host == "localhost" or host.endswith(".localhost") or _is_loopback(host):
        return None
    return f"the development key would sign URLs for {image_base}, which no server with real keys accepts"


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def cmd_build(args: argparse.Namespace, config: Config, width_for_rule: WidthForRule | None = None) -> int:
    terminal = args.progress or sys.stderr.isatty()
    progress = ProgressLine(sys.stderr) if terminal else ProgressLine(sys.stderr, LINE_INTERVAL_S, lines=True)
    try:
        image_base = absolute_url(args.image_base_url or args.base_url, "image base URL")
    except ValueError as e:
        print(f"edge: {e}", file=sys.stderr)
        return 1
    refusal = dev_key_refusal(config, image_base)
    if refusal and not args.allow_dev_key:
        print(f"edge: {refusal}; set EDGE_KEYS (or --allow-dev-key for a demo)", file=sys.stderr)
        return 1
    warn_dev_key(config)
    bad_rows: list[RowError] = []
    sign = Signer(config.signing_keys()).url_signer(image_base)
    store = master_store(config)
    # One event loop for every lookup: the store's connections (S3, HTTP) belong to it.
    with asyncio.Runner() as runner:
        index = MasterIndex(store, config.limits, max_entries=URL_CACHE_ENTRIES)
        urls = SignedImageURLs(lambda path: runner.run(index.lookup(path)), sign, config.limits, width_for_rule)
        try:
            report = build_sitemaps(
                read_pages(args.pages, None if args.strict else bad_rows.append),
                base_url=args.base_url,
                out_dir=args.out,
                image_url=urls,
                gzip=args.gzip,
                progress=progress,
            )
        except (PagesError, BuildError) as e:
            if progress.shown and not progress.lines:
                sys.stderr.write("\n")  # end the \r line before the error
            print(f"edge: {e}", file=sys.stderr)
            return 1
        finally:
            runner.run(store.close())
    progress.close(report)
    report.rows_skipped = len(bad_rows)
    for row in bad_rows[:MAX_WARNINGS]:
        print(f"edge: skipped {row}", file=sys.stderr)
    if len(bad_rows) > MAX_WARNINGS:
        print(f"edge: ... and {len(bad_rows) - MAX_WARNINGS} more rows skipped", file=sys.stderr)
    for warning in report.warnings:
        print(f"edge: warning: {warning}", file=sys.stderr)
    if report.warnings_not_shown:
        print(f"edge: warning: ... and {report.warnings_not_shown} more", file=sys.stderr)
    print(report.summary())
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    sitemap = subparsers.add_parser(
        "sitemap", help=summary("sitemap"), description="Build Google image sitemaps from a pages manifest."
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
    add_common(build)
    build.add_argument(
        "--pages", required=True, help="manifest: .csv with header page,master[,rule], .jsonl, .json or .yaml"
    )
    build.add_argument("--base-url", required=True, help="where this server is reached, e.g. https://img.example.com")
    build.add_argument("--image-base-url", help="prefix of the image URLs if not --base-url (e.g. your CDN's host)")
    build.add_argument("--out", required=True, help="directory for the sitemap files (served at /sitemaps/)")
    build.add_argument("--gzip", action="store_true", help="write .xml.gz files (the index stays plain XML)")
    build.add_argument("--progress", action="store_true", help="show progress even when stderr is not a terminal")
    build.add_argument(
        "--strict", action="store_true", help="stop at the first manifest row in error (default: report it, skip it)"
    )
    build.add_argument(
        "--allow-dev-key",
        action="store_true",
        help="let the development key sign URLs for a host other than this machine (demos only)",
    )
    build.set_defaults(func=cmd_build)
