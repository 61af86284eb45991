"""Text responses compressed when the client asks (`Accept-Encoding: gzip`), images never.

Starlette's GZipMiddleware does the work for everything behind the Starlette app: /srcset,
/preload, /info, /preview, /metrics and problem+json. It skips bodies under 500 bytes and the
content types that are compressed already (every image format, `.xml.gz` sitemaps), and adds
`Vary: Accept-Encoding`. XML sitemaps are sent as built, with their strong per-file ETag: a build
with `--gzip` writes the `.xml.gz` files crawlers fetch compressed. /img/ never reaches it
(edge.http.images answers first). The text
endpoints' ETags are weak (`W/"..."`, made from the uncompressed body): the gzip and identity
bodies are one representation's two encodings, and If-None-Match compares weakly, so a 304 is
right for either.
"""

from __future__ import annotations

from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES, GZipMiddleware
from starlette.types import ASGIApp

MINIMUM_SIZE = 500
LEVEL = 6  # zlib's default: most of level 9's saving on markup for a fraction of its CPU


def compressed(app: ASGIApp) -> ASGIApp:
    return GZipMiddleware(
        app,
        minimum_size=MINIMUM_SIZE,
        compresslevel=LEVEL,
        exclude_content_types=(*DEFAULT_EXCLUDED_CONTENT_TYPES, "application/xml"),
    )
