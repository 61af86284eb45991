"""Text responses compressed when the client asks (`Accept-Encoding: br` or `gzip`), images never.

Everything behind the Starlette app goes through here: /srcset, /preload, /info, /preview,
/metrics, /robots.txt and problem+json. Brotli (Google's `Brotli` binding) when the client names
`br`, else gzip when it names `gzip` (q=0 means no): br makes markup and JSON about a fifth
smaller than gzip at similar CPU (quality 5). Bodies under 500 bytes and content types that are
compressed already (every image format, `.xml.gz` sitemaps) are sent as they are;
`Vary: Accept-Encoding` is added to the rest. XML sitemaps are sent as built, with their strong
per-file ETag: a build with `--gzip` writes the `.xml.gz` files crawlers fetch compressed. /img/
never reaches this (edge.http.images answers first). The text endpoints' ETags are weak
(`W/"..."`, made from the uncompressed body): the three encodings are one representation's, and
If-None-Match compares weakly, so a 304 is right for any.

The responders are Starlette's (its GZipMiddleware's `IdentityResponder`, which owns the rules
above, with `apply_compression` as its hook); only the choice of coding and the Brotli stream are
ours.
"""

from __future__ import annotations

import brotli
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES, GZipResponder, IdentityResponder
from starlette.types import ASGIApp, Receive, Scope, Send

from edge.negotiation import weighted

MINIMUM_SIZE = 500
GZIP_LEVEL = 6  # zlib's default: most of level 9's saving on markup for a fraction of its CPU
BROTLI_QUALITY = 5  # 0..11; 5 beats gzip -6 on bytes at about its CPU; 9+ costs many times more
EXCLUDED = (*DEFAULT_EXCLUDED_CONTENT_TYPES, "application/xml")


class BrotliResponder(IdentityResponder):
    content_encoding = "br"

    def __init__(self, app: ASGIApp, minimum_size: int) -> None:
        super().__init__(app, minimum_size, exclude_content_types=EXCLUDED)
        self._compressor: brotli.Compressor | None = None

    async def apply_compression(self, body: bytes, *, more_body: bool) -> bytes:
        if self._compressor is None:
            self._compressor = brotli.Compressor(mode=brotli.MODE_TEXT, quality=BROTLI_QUALITY)
        out = self._compressor.process(body)
        return out + (self._compressor.flush() if more_body else self._compressor.finish())


def coding_for(header: str) -> str:
    """'br', 'gzip' or 'identity': the best coding we have that the client takes (RFC 9110 12.5.3)."""
    codings = dict(weighted(header))
    wildcard = codings.get("*", 0.0)
    for coding in ("br", "gzip"):
        if codings.get(coding, wildcard) > 0:
            return coding
    return "identity"


class Compressed:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"accept-encoding"), "")
        coding = coding_for(header)
        responder: IdentityResponder
        if coding == "br":
            responder = BrotliResponder(self.app, MINIMUM_SIZE)
        elif coding == "gzip":
            responder = GZipResponder(self.app, MINIMUM_SIZE, GZIP_LEVEL, exclude_content_types=EXCLUDED)
        else:
            responder = IdentityResponder(self.app, MINIMUM_SIZE, exclude_content_types=EXCLUDED)
        await responder(scope, receive, send)


def compressed(app: ASGIApp) -> ASGIApp:
    return Compressed(app)
