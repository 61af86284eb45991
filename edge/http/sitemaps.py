"""Serving built sitemaps: `GET|HEAD /sitemaps/{name}` from the build's output directory.

Only names a build writes are served (`sitemap-index.xml`, `sitemap-00001.xml[.gz]`): anything
else, `..` included, is a 404 before the file system is touched. Content types: `application/xml`
for XML; `application/gzip` (RFC 6713) for `.xml.gz`, sent as the gzip file it is, without
`Content-Encoding`, which is what Google fetches and how static servers send `.gz` files (with
`Content-Encoding: gzip`, clients would unpack it and save XML under a `.gz` name).

The ETag is the blake3 of the file's bytes, computed once per file identity (inode, size, mtime);
a build replaces files by rename, so a new file is a new identity. The response streams from the
same open file the ETag was computed from, so a rebuild in between cannot mismatch them.
"""

from __future__ import annotations

import html
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import blake3
from cachetools import LRUCache
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from edge.conditional import conditions_of, precondition
from edge.headers import strong_etag
from origin.core.dates import http_date
from origin.core.errors import Problem
from sitemaps.build import INDEX_NAME, URL_PATH, is_sitemap_file

CACHE_CONTROL = "public, max-age=3600"  # sitemaps change when someone rebuilds them: an hour is plenty
XML = "application/xml"
GZIP = "application/gzip"
CHUNK = 1 << 16
ETAG_CACHE_ENTRIES = 4096


def content_type(name: str) -> str:
    return GZIP if name.endswith(".gz") else XML


def _digest(fd: int) -> str:
    hasher = blake3.blake3()
    offset = 0
    while chunk := os.pread(fd, CHUNK * 16, offset):
        hasher.update(chunk)
        offset += len(chunk)
    return hasher.hexdigest()[:32]


def _chunks(f: BinaryIO) -> Iterator[bytes]:
    with f:
        while chunk := f.read(CHUNK):
            yield chunk


class SitemapFiles:
    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self._etags: LRUCache[tuple[str, int, int, int], str] = LRUCache(ETAG_CACHE_ENTRIES)

    def _open(self, name: str) -> tuple[BinaryIO, os.stat_result]:
        """The named sitemap file, opened, and its stat; a 404 Problem for anything else."""
        if not is_sitemap_file(name):
            raise Problem(404, f"no sitemap named {name!r}")
        try:
            f = open(os.open(self.directory / name, os.O_RDONLY | os.O_NOFOLLOW), "rb")
        except OSError:
            raise Problem(404, f"no sitemap named {name!r}: has `edge sitemap build` been run?") from None
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            f.close()
            raise Problem(404, f"no sitemap named {name!r}")
        return f, st

    async def endpoint(self, request: Request) -> Response:
        name = request.path_params["name"]
        f, st = self._open(name)
        try:
            identity = (name, st.st_ino, st.st_size, st.st_mtime_ns)
            etag = self._etags.get(identity)
            if etag is None:
                etag = self._etags[identity] = strong_etag(await run_in_threadpool(_digest, f.fileno()))
            headers = {
                "ETag": etag,
                "Last-Modified": http_date(st.st_mtime),
                "Cache-Control": CACHE_CONTROL,
                "X-Content-Type-Options": "nosniff",
            }
            verdict = precondition(conditions_of(request.headers.raw), etag, st.st_mtime)
            if verdict is not None:
                f.close()
                if verdict == 412:
                    raise Problem(
                        412, "precondition failed: the sitemap is not the one If-Match or If-Unmodified-Since names"
                    )
                return Response(status_code=304, headers=headers)
            headers["Content-Length"] = str(st.st_size)
            if request.method == "HEAD":
                f.close()
                return Response(b"", headers=headers, media_type=content_type(name))
            # Streamed from the file the ETag was computed from, whatever a rebuild has renamed since.
            return StreamingResponse(iterate_in_threadpool(_chunks(f)), headers=headers, media_type=content_type(name))
        except BaseException:
            f.close()
            raise


# What crawlers should leave alone: operators' endpoints, not images or markup.
ROBOTS = "User-agent: *\nDisallow: /admin/\nDisallow: /metrics\nDisallow: /preview\n"
_FIRST_LOC = re.compile(rb"<loc>([^<]+)</loc>")


def index_url(directory: Path, fallback_base: str) -> str | None:
    """The public URL of the built sitemap index, or None when none is built. The build wrote
    absolute sitemap URLs into it (from `--base-url`), so its first `<loc>` says where it is
    reached; an index of no sitemaps falls back to the base this request came in on."""
    try:
        with open(directory / INDEX_NAME, "rb") as f:
            head = f.read(1 << 16)
    except OSError:
        return None
    m = _FIRST_LOC.search(head)
    if m is None:
        return fallback_base.rstrip("/") + URL_PATH + INDEX_NAME
    loc = html.unescape(m.group(1).decode("utf-8", "replace"))
    return loc[: loc.rindex("/") + 1] + INDEX_NAME


def routes(directory: Path) -> list[Route]:
    """The sitemap routes, to mount in the app: `/sitemaps/{name}` for GET and HEAD, and
    `/robots.txt` (naming the sitemap index once one is built)."""
    files = SitemapFiles(directory)

    async def robots(request: Request) -> Response:
        index = await run_in_threadpool(index_url, Path(directory), str(request.base_url))
        body = ROBOTS + (f"Sitemap: {index}\n" if index else "")
        headers = {"Cache-Control": CACHE_CONTROL, "X-Content-Type-Options": "nosniff"}
        return Response(body, media_type="text/plain; charset=utf-8", headers=headers)

    return [
        Route(URL_PATH + "{name:path}", files.endpoint, methods=["GET", "HEAD"]),
        Route("/robots.txt", robots, methods=["GET", "HEAD"]),
    ]
