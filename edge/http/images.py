"""The rendition endpoint: `GET|HEAD /img/{master-path}?{options}&s={signature}`.

Parse and verify the URL, look the master up, check closed world, negotiate the format, name the
rendition (its key is the ETag), answer 304 when the client has it, else get it (caches, then
one render) and spell the outcome as headers. The outcome is also left in the request's state for
the access log, so nothing is parsed back out of header strings.

It is plain ASGI in front of the Starlette app (`ImagesFirst`), not a Starlette route: a cache
hit is most of this server's traffic, and Starlette's request and response objects and its
middleware cost a hit about as much CPU as all of this module's own work.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edge.client_hints import ACCEPT_CH, parse_hints, refine, vary_names
from edge.conditional import NONE, UNSATISFIABLE, ByteRange, byte_range, conditions_of, precondition
from edge.headers import (
    VersionState,
    cache_control,
    cache_status,
    provisional,
    server_timing,
    strong_etag,
    until_expiry,
    version_state,
)
from edge.http.problems import problem_headers, problem_json
from edge.negotiation import negotiate_format
from edge.renditions import Outcome
from edge.services import Services
from origin.core.dates import http_date
from origin.core.errors import Problem
from origin.core.formats import FORMATS
from origin.core.keys import tag_of
from origin.core.memo import Memo
from rules.keyless import declared_options, keyless_rule, parse_keyless

log = logging.getLogger("edge")

PREFIX = "/img/"
Header = tuple[bytes, bytes]


class ImagesFirst:
    """Answers everything under /img/ itself (GET and HEAD; other methods 405); the rest goes to `app`."""

    def __init__(self, app: ASGIApp, services: Services):
        self.app = app
        self.services = services
        # The headers that depend only on the rendition's key and the URL's version state, made
        # once per entry rather than once per hit.
        self._fixed: Memo[tuple[str, VersionState, bytes, float | None], list[Header]] = Memo(4096)
        # Under closed world hints are not applied: they would make renditions no rule declares.
        self.hints = services.config.client_hints.enabled and not services.config.rules.closed_world
        self.surrogate_headers = [name.lower().encode() for name in services.config.cache.surrogate_key_headers]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.hints:
            send = asking_for_hints(send)
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        try:
            if scope["method"] not in ("GET", "HEAD"):
                raise Problem(405, "Method Not Allowed", headers={"Allow": "GET, HEAD"})
            status, headers, body = await self.answer(scope)
        except Problem as problem:
            status, headers, body = problem_parts(problem, scope["path"])
        except Exception:
            # A bug, not the client's doing: log it here, tell the client nothing about our internals.
            log.exception("unexpected error on %s", scope["path"])
            status, headers, body = problem_parts(Problem(500, "internal error; it has been logged"), scope["path"])
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})

    async def answer(self, scope: Scope) -> tuple[int, list[Header], bytes]:
        services = self.services
        master_path = scope["path"][len(PREFIX) :]
        query = scope["query_string"].decode("latin-1")
        closed_world = services.config.rules.closed_world
        keyless = parse_keyless(query) if closed_world else None
        if keyless is not None:  # rule=&w=[&fm=]: unsigned, for a rendition the rule declares
            rule = keyless_rule(keyless, services.rules, master_path)
            record = await services.masters.lookup(master_path)
            opts = declared_options(keyless, rule, record.header, services.capacity)
        else:
            opts = services.verified.options(master_path, query)  # 403 / 400, expiry included
            record = await services.masters.lookup(master_path)
            if closed_world and not services.closed_world.allows(master_path, opts, record.header):
                raise Problem(403, "closed world: no rule declares this rendition of this master")

        accept, conditions = first_accept(scope["headers"]), conditions_of(scope["headers"])
        negotiated = opts.fm == "auto"
        fmt = (
            negotiate_format(
                accept,
                services.config.formats.preference,
                has_alpha=record.header.has_alpha,
                animated=record.header.animated,
            )
            if negotiated
            else opts.fm
        )
        vary = [b"Accept"] if negotiated else []
        if opts.ch and self.hints:
            vary += [name.encode() for name in vary_names(opts)]
            opts = refine(opts, parse_hints(scope["headers"]), fmt, services.config.client_hints)
        job = services.renditions.job(record, opts, fmt)
        state = version_state(opts.v, record.version)
        etag = strong_etag(job.key)
        modified = record.info.modified
        fixed = self.fixed(job.key, state, b", ".join(vary), modified)
        if opts.exp is not None:  # an expiring URL: no cache may keep it fresh past its expiry
            expiring = until_expiry(cache_control(state), opts.exp, time.time()).encode()
            fixed = [(b"cache-control", expiring) if name == b"cache-control" else (name, v) for name, v in fixed]
        if conditions is not NONE:
            verdict = precondition(conditions, etag, modified)
            if verdict == 412:
                raise Problem(
                    412, "precondition failed: the rendition is not the one If-Match or If-Unmodified-Since names"
                )
            if verdict == 304:
                return 304, fixed, b""

        outcome = await services.renditions.get(job)
        scope.setdefault("state", {})["outcome"] = outcome
        rendition = outcome.rendition
        served_etag = etag
        if outcome.interim:
            # A Lanczos stand-in while a model makes the real one: no shared cache may keep it, and a
            # browser asks again (its ETag will not match) and gets the upgrade once it exists.
            served_etag = strong_etag(job.key + "-interim")
            headers = revalidated(fixed, served_etag, "private, no-cache")
        elif rendition.provisional:
            # A fast encode until its better one replaces it (edge.upgrades): cacheable for a
            # minute under an ETag of its own, so a revalidation then gets the better bytes.
            served_etag = strong_etag(job.key + "-provisional")
            headers = revalidated(fixed, served_etag, provisional(dict(fixed)[b"cache-control"].decode()))
            if conditions is not NONE and precondition(conditions, served_etag, modified) == 304:
                return 304, headers, b""
        else:
            headers = list(fixed)
        headers += [
            (b"content-type", FORMATS[rendition.format].mime.encode()),
            (b"cache-status", status_of(outcome).encode()),
            (b"server-timing", server_timing(outcome.timings).encode("latin-1", "replace")),
            (b"x-upscale", rendition.upscale.encode()),
        ]
        body = rendition.body
        if conditions.range is not None and scope["method"] == "GET":
            wanted = byte_range(conditions, served_etag, modified, len(body))
            if wanted == UNSATISFIABLE:
                headers = [h for h in headers if h[0] != b"content-type"]
                return (
                    416,
                    [*headers, (b"content-range", f"bytes */{len(body)}".encode()), (b"content-length", b"0")],
                    b"",
                )
            if isinstance(wanted, ByteRange):
                part = body[wanted.start : wanted.end + 1]
                headers += [(b"content-range", wanted.content_range(len(body)).encode())]
                return 206, [*headers, (b"content-length", str(len(part)).encode())], part
        return 200, [*headers, (b"content-length", str(len(body)).encode())], body

    def fixed(self, key: str, state: VersionState, vary: bytes, modified: float | None) -> list[Header]:
        """ETag, Cache-Control, Vary and the constant headers of one rendition (also a 304's)."""
        made = self._fixed.get((key, state, vary, modified))
        if made is None:
            made = [
                (b"etag", strong_etag(key).encode()),
                (b"cache-control", cache_control(state).encode()),
                *([(b"last-modified", http_date(modified).encode())] if modified is not None else []),
                (b"accept-ranges", b"bytes"),
                (b"timing-allow-origin", b"*"),
                (b"x-content-type-options", b"nosniff"),
                # Every rendition of a master shares this tag (its id, the keys' prefix): one CDN
                # purge by tag takes them all down (edge purge prints it).
                *[(name, tag_of(key).encode()) for name in self.surrogate_headers],
                *([(b"vary", vary)] if vary else []),
            ]
            self._fixed[(key, state, vary, modified)] = made
        return made


def revalidated(fixed: list[Header], etag: str, cache_control: str) -> list[Header]:
    """`fixed` with another ETag and Cache-Control: a rendition that is not the final one."""
    return [
        (b"etag", etag.encode()),
        (b"cache-control", cache_control.encode()),
        *(h for h in fixed if h[0] not in (b"etag", b"cache-control")),
    ]


def asking_for_hints(send: Send) -> Send:
    """`send` with `Accept-CH` added to the response's headers (client hints on)."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), (b"accept-ch", ACCEPT_CH.encode())]}
        await send(message)

    return sending


def status_of(outcome: Outcome) -> str:
    return cache_status(outcome.lookups, stored=outcome.stored, collapsed=outcome.collapsed, unstored=outcome.unstored)


def first_accept(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The first Accept of a request (ASGI header names are lower case)."""
    return next((value.decode("latin-1") for name, value in headers if name == b"accept"), None)


def problem_parts(problem: Problem, path: str) -> tuple[int, list[Header], bytes]:
    body = problem_json(problem, instance=path)
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in problem_headers(problem).items()]
    headers += [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())]
    return problem.status, headers, body
