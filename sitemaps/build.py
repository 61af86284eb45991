"""Google image sitemaps from a stream of pages: split, indexed, deterministic, rewritten only when changed.

    build_sitemaps(read_pages("pages.csv"), base_url="https://img.example", out_dir="var/sitemaps",
                   image_url=urls)   # urls(master, rule) -> absolute image URL

writes `sitemap-00001.xml`, `sitemap-00002.xml`, ... (`.xml.gz` with gzip) of at most 50,000 `<url>`
and 50 MB each, and `sitemap-index.xml`, which lists them as `{base_url}/sitemaps/{name}`. Each
`<url>` holds the page's `<loc>` and one `<image:image><image:loc>` per image (at most 1,000); the
tags Google deprecated in 2022 (caption, title, license, geo_location) are not written.

Same pages in, same bytes out: no timestamps (no `lastmod`: nothing in a manifest says when a page
changed), gzip with mtime 0 and no file name. Each file is streamed to a temporary name in the
output directory while it is hashed, then either renamed over the old file or, when the old file has
the same bytes, thrown away; so a rebuild touches only files whose content changed, and a server
never sees half a file. Sitemap files of an earlier, larger build are removed (run one build at a
time per directory). Memory holds one page and the counters, whatever the number of pages.

The build knows nothing of signing: `image_url` makes every image URL, and raises ImageUnavailable
to leave an image out (a missing master, say), which is counted and warned about, not fatal. A page
whose images are all left out keeps its `<url>` (it is still a page of the site).
"""

from __future__ import annotations

import gzip as gzip_module
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import blake3

from sitemaps.pages import Page, absolute_url, uri_escape

SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
IMAGE_NS = "http://www.google.com/schemas/sitemap-image/1.1"
MAX_URLS = 50_000  # <url> per sitemap file (the protocol's limit)
MAX_BYTES = 50 * 1024 * 1024  # per file, uncompressed: the protocol's 52,428,800 bytes
MAX_IMAGES_PER_PAGE = 1_000  # Google's limit of <image:image> per <url>
MAX_FILES = 50_000  # sitemaps one index may list
INDEX_NAME = "sitemap-index.xml"
SITEMAP_NAME = re.compile(r"sitemap-[0-9]{5}\.xml(\.gz)?")  # what a build writes, and may remove
URL_PATH = "/sitemaps/"  # where the server serves the files (sitemaps.http)
MAX_WARNINGS = 100  # distinct warnings kept in a report; the rest are only counted
PROGRESS_EVERY = 1_000  # pages between progress callbacks
WRITE_BUFFER = 1 << 20
GZIP_LEVEL = 6  # zlib's default; on sitemaps 9 takes twice as long for 0.4 % fewer bytes

XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
URLSET_OPEN = f'{XML_DECLARATION}<urlset xmlns="{SITEMAP_NS}" xmlns:image="{IMAGE_NS}">\n'.encode()
URLSET_CLOSE = b"</urlset>\n"

ImageURL = Callable[[str, "str | None"], str]  # (master path, rule) -> absolute image URL


class ImageUnavailable(Exception):
    """Raised by an image_url callable to leave an image out; the message says why (it becomes a warning)."""


class BuildError(ValueError):
    """The build cannot go on (bad base URL, too many files, a page too big for the byte limit)."""


def is_sitemap_file(name: str) -> bool:
    """A name this module writes (and so may serve or remove): `sitemap-00001.xml[.gz]` or the index."""
    return name == INDEX_NAME or SITEMAP_NAME.fullmatch(name) is not None


def sitemap_name(number: int, gzip: bool) -> str:
    return f"sitemap-{number:05d}.xml" + (".gz" if gzip else "")


def xml_escape(text: str) -> str:
    """The five XML entities, as the sitemap protocol asks for in every URL."""
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&apos;")
    )


@dataclass
class BuildReport:
    files: list[str] = field(default_factory=list)  # this build's sitemap files, in order (not the index)
    written: list[str] = field(default_factory=list)  # files whose content changed (index included)
    unchanged: list[str] = field(default_factory=list)  # files left as they were (index included)
    removed: list[str] = field(default_factory=list)  # sitemap files of an earlier build, now gone
    pages: int = 0
    images: int = 0  # <image:image> written
    images_dropped: int = 0  # past the per-page limit
    images_unavailable: int = 0  # image_url raised ImageUnavailable (missing master, ...)
    rows_skipped: int = 0  # manifest rows in error, reported and left out (set by the caller that read them)
    index_url: str = ""
    warnings: list[str] = field(default_factory=list)  # distinct, at most MAX_WARNINGS
    warnings_not_shown: int = 0
    _warning_keys: set[str] = field(default_factory=set, repr=False)

    def warn(self, message: str, key: str | None = None) -> None:
        """Keep one warning per key (the message by default), up to MAX_WARNINGS."""
        key = message if key is None else key
        if key in self._warning_keys:
            return
        if len(self.warnings) >= MAX_WARNINGS:
            self.warnings_not_shown += 1
            return
        self._warning_keys.add(key)
        self.warnings.append(message)

    def summary(self) -> str:
        lines = [
            f"{self.pages} pages, {self.images} images in {len(self.files)} sitemap files and the index",
            f"files: {len(self.written)} written, {len(self.unchanged)} unchanged, {len(self.removed)} removed",
            f"index: {self.index_url}",
        ]
        if self.images_dropped:
            lines.append(f"dropped: {self.images_dropped} images past {MAX_IMAGES_PER_PAGE} on a page")
        if self.images_unavailable:
            lines.append(f"skipped: {self.images_unavailable} images whose master is missing or refused")
        if self.rows_skipped:
            lines.append(f"skipped: {self.rows_skipped} manifest rows in error (listed above)")
        return "\n".join(lines)


class _HashingSink:
    """Writes through to a file and hashes what it writes: the bytes exactly as stored."""

    def __init__(self, raw: BinaryIO):
        self.raw = raw
        self.hash = blake3.blake3()

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        return self.raw.write(data)

    def flush(self) -> None:
        self.raw.flush()


class OutputFile:
    """One output file, streamed to a temporary name beside it and kept only if its bytes changed."""

    def __init__(self, path: Path, gzip: bool = False):
        self.path = path
        self.tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        self._raw = open(self.tmp, "wb")
        self._sink = _HashingSink(self._raw)
        self._out: BinaryIO | _HashingSink | gzip_module.GzipFile = self._sink
        if gzip:
            # Deterministic: no file name and mtime 0 in the header.
            self._out = gzip_module.GzipFile(
                filename="",
                mode="wb",
                fileobj=self._sink,
                compresslevel=GZIP_LEVEL,
                mtime=0,
            )
        self.size = 0  # uncompressed bytes
        self._pending: list[bytes] = []
        self._pending_bytes = 0

    def write(self, data: bytes) -> None:
        self._pending.append(data)
        self._pending_bytes += len(data)
        self.size += len(data)
        if self._pending_bytes >= WRITE_BUFFER:
            self._flush()

    def _flush(self) -> None:
        self._out.write(b"".join(self._pending))
        self._pending.clear()
        self._pending_bytes = 0

    def commit(self) -> bool:
        """Put the file in place; False when the old file already had these bytes (it is left untouched)."""
        self._flush()
        if isinstance(self._out, gzip_module.GzipFile):
            self._out.close()  # writes the gzip trailer through the sink; the raw file stays open
        self._raw.close()
        if _same_content(self.path, self.tmp.stat().st_size, self._sink.hash.hexdigest()):
            self.tmp.unlink()
            return False
        os.replace(self.tmp, self.path)
        return True

    def discard(self) -> None:
        self._raw.close()
        self.tmp.unlink(missing_ok=True)


def _same_content(path: Path, size: int, digest: str) -> bool:
    try:
        if not path.is_file() or path.stat().st_size != size:
            return False
        hasher = blake3.blake3()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(WRITE_BUFFER), b""):
                hasher.update(chunk)
        return hasher.hexdigest() == digest
    except OSError:
        return False


def url_entry(page: Page, image_url: ImageURL, max_images: int, report: BuildReport) -> bytes:
    """One `<url>` element (a line of the file) with the page's images, at most `max_images` of them."""
    locs: dict[str, None] = {}  # image URLs in order, without duplicates
    for position, ref in enumerate(page.images):
        if len(locs) == max_images:
            dropped = len(page.images) - position
            report.images_dropped += dropped
            report.warn(f"{page.loc} shows {len(page.images)} images; {dropped} past the first {max_images} left out")
            break
        try:
            locs[image_url(ref.master, ref.rule)] = None
        except ImageUnavailable as e:
            report.images_unavailable += 1
            report.warn(f"image left out: {e} (first on {page.loc})", key=str(e))
    report.images += len(locs)
    parts = ["<url><loc>", xml_escape(page.loc), "</loc>"]
    if page.lastmod:
        parts += ("<lastmod>", page.lastmod, "</lastmod>")
    for loc in locs:
        parts += ("<image:image><image:loc>", xml_escape(uri_escape(loc)), "</image:loc></image:image>")
    parts.append("</url>\n")
    return "".join(parts).encode()


def build_sitemaps(
    pages: Iterable[Page],
    *,
    base_url: str,
    out_dir: str | Path,
    image_url: ImageURL,
    gzip: bool = False,
    progress: Callable[[BuildReport], None] | None = None,
    max_urls: int = MAX_URLS,
    max_bytes: int = MAX_BYTES,
    max_images: int = MAX_IMAGES_PER_PAGE,
) -> BuildReport:
    """Write the sitemap files and the index for `pages` into `out_dir`; see the module docstring."""
    try:
        base = absolute_url(base_url, "base URL").rstrip("/")
    except ValueError as e:
        raise BuildError(str(e)) from None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = BuildReport(index_url=f"{base}{URL_PATH}{INDEX_NAME}")
    current: OutputFile | None = None
    urls = 0  # in the current file
    try:
        for page in pages:
            entry = url_entry(page, image_url, max_images, report)
            if current is not None and (urls == max_urls or current.size + len(entry) + len(URLSET_CLOSE) > max_bytes):
                current.write(URLSET_CLOSE)
                _commit(current, report)
                current = None
            if current is None:
                if len(report.files) == MAX_FILES:
                    raise BuildError(f"more than {MAX_FILES * max_urls} pages: one sitemap index cannot list them all")
                name = sitemap_name(len(report.files) + 1, gzip)
                report.files.append(name)
                current, urls = OutputFile(out / name, gzip), 0
                current.write(URLSET_OPEN)
                if current.size + len(entry) + len(URLSET_CLOSE) > max_bytes:
                    raise BuildError(f"{page.loc} alone makes a sitemap bigger than {max_bytes} bytes")
            current.write(entry)
            urls += 1
            report.pages += 1
            if progress is not None and report.pages % PROGRESS_EVERY == 0:
                progress(report)
        if current is not None:
            current.write(URLSET_CLOSE)
            _commit(current, report)
            current = None
        _write_index(out, base, report)
        _remove_stale(out, report)
    finally:
        if current is not None:
            current.discard()
    if progress is not None:
        progress(report)
    return report


def _commit(output: OutputFile, report: BuildReport) -> None:
    (report.written if output.commit() else report.unchanged).append(output.path.name)


def _write_index(out: Path, base: str, report: BuildReport) -> None:
    index = OutputFile(out / INDEX_NAME)
    try:
        index.write(f'{XML_DECLARATION}<sitemapindex xmlns="{SITEMAP_NS}">\n'.encode())
        for name in report.files:
            index.write(f"<sitemap><loc>{xml_escape(base + URL_PATH + name)}</loc></sitemap>\n".encode())
        index.write(b"</sitemapindex>\n")
    except BaseException:
        index.discard()
        raise
    _commit(index, report)


def _remove_stale(out: Path, report: BuildReport) -> None:
    """Sitemap files this build did not write (an earlier build had more, or the other compression)."""
    keep = set(report.files)
    for entry in sorted(os.scandir(out), key=lambda e: e.name):
        if SITEMAP_NAME.fullmatch(entry.name) and entry.name not in keep and not entry.is_dir(follow_symlinks=False):
            os.unlink(entry.path)
            report.removed.append(entry.name)
