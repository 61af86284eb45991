"""The HTTP app, assembled in one place from parts passed in (see create_app)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

import rules.http
import sitemaps.http
from edge.access_log import AccessLog
from edge.config import Config
from edge.headers import (
    CONTENT_TYPES,
    NO_STORE,
    cache_control,
    if_none_match,
    strong_etag,
    version_state,
)
from edge.negotiation import negotiate_format
from edge.ops import ops_routes
from edge.options import parse_query
from edge.problems import Problem
from edge.services import Services, build_services
from edge.signing import check_expiry
from origin.runtime import tune_process

log = logging.getLogger("edge")


def problem_response(problem: Problem, request: Request) -> Response:
    headers = {"Cache-Control": NO_STORE, "Timing-Allow-Origin": "*", **problem.headers}
    return JSONResponse(
        problem.body(instance=request.url.path),
        status_code=problem.status,
        headers=headers,
        media_type="application/problem+json",
    )


def _server_timing(timings: dict[str, float]) -> str:
    return ", ".join(f"{name};dur={seconds * 1000:.1f}" for name, seconds in timings.items())


async def rendition_endpoint(request: Request) -> Response:
    services: Services = request.app.state.services
    master_path = request.path_params["path"]
    if request.scope["path"] != "/img/" + master_path:
        # The route's `$` also matches before a final newline: /img/x%0A would be a second spelling.
        raise Problem(404, "no such route")
    query = request.url.query
    try:
        opts, signature = parse_query(query)
    except Problem:
        # Only a request with a valid signature learns what is wrong with its options.
        if services.config.signing.required and not services.signer.verify_unparsed(master_path, query):
            raise Problem(403, "signature does not match this URL") from None
        raise
    if services.config.signing.required:
        services.signer.verify(master_path, opts, signature)
    else:
        check_expiry(opts)
    record = await services.masters.lookup(master_path)
    if services.config.rules.closed_world and not services.rules.allows(master_path, opts, record.header):
        raise Problem(403, "closed world: no rule declares this rendition of this master")

    negotiated = opts.fm == "auto"
    fmt = (
        negotiate_format(
            request.headers.get("accept"),
            services.config.formats.preference,
            has_alpha=record.header.has_alpha,
            animated=record.header.animated,
        )
        if negotiated
        else opts.fm
    )
    key = services.renditions.key(record, opts, fmt)
    headers = {
        "ETag": strong_etag(key),
        "Cache-Control": cache_control(version_state(opts.v, record.version)),
        "Timing-Allow-Origin": "*",
        "X-Content-Type-Options": "nosniff",
    }
    if negotiated:
        headers["Vary"] = "Accept"
    if if_none_match(request.headers.get("if-none-match"), headers["ETag"]):
        return Response(status_code=304, headers=headers)

    outcome = await services.renditions.get(record, opts, fmt, key)
    rendition = outcome.rendition
    if outcome.interim:
        # A Lanczos stand-in while a model makes the real one: no shared cache may keep it, and a
        # browser asks again (its ETag will not match) and gets the upgrade once it exists.
        headers["Cache-Control"] = "private, no-cache"
        headers["ETag"] = strong_etag(key + "-interim")
    headers.update(
        {
            "Cache-Status": ", ".join(outcome.cache_status),
            "Server-Timing": _server_timing(outcome.timings),
            "X-Upscale": rendition.upscale,
        }
    )
    media_type = CONTENT_TYPES[rendition.format]
    if request.method == "HEAD":
        headers["Content-Length"] = str(len(rendition.body))
        return Response(b"", headers=headers, media_type=media_type)
    return Response(rendition.body, headers=headers, media_type=media_type)


async def on_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return problem_response(exc, request)


async def on_http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own errors (unknown route, wrong method) in the same problem+json shape."""
    assert isinstance(exc, HTTPException)
    problem = Problem(exc.status_code, exc.detail or "error", headers=dict(exc.headers or {}))
    return problem_response(problem, request)


async def on_unexpected(request: Request, exc: Exception) -> Response:
    # A bug, not the client's doing: log it here, tell the client nothing about our internals.
    log.exception("unexpected error on %s", request.url.path)
    return problem_response(Problem(500, "internal error; it has been logged"), request)


def warn_about_insecure_settings(config: Config) -> list[str]:
    warnings = []
    if config.uses_dev_key:
        warnings.append(
            "SIGNING WITH THE BUILT-IN DEVELOPMENT KEY: anyone can sign URLs for this server. "
            "Set EDGE_KEYS=id:secret (or [signing] keys) before exposing it."
        )
    if not config.signing.required:
        warnings.append(
            "URL SIGNATURES ARE DISABLED (signing.required=false): anyone can ask this server for "
            "any size. Development only."
        )
    for message in warnings:
        log.warning("!!! %s", message)
    return warnings


def create_app(config: Config, services: Services | None = None) -> ASGIApp:
    tune_process()
    services = services or build_services(config)
    warn_about_insecure_settings(config)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        for part in (services.store, *services.tiers):
            close = getattr(part, "close", None)
            if close is not None:
                await close()
        services.pool.shutdown()

    app = Starlette(
        lifespan=lifespan,
        routes=[
            Route("/img/{path:path}", rendition_endpoint, methods=["GET", "HEAD"]),
            *ops_routes(),
            *rules.http.routes(),
            *sitemaps.http.routes(Path(config.sitemaps.dir)),
        ],
        exception_handlers={Problem: on_problem, HTTPException: on_http_error, Exception: on_unexpected},
    )
    app.router.redirect_slashes = False  # an image origin has no use for slash redirects
    app.state.services = services
    return AccessLog(app, services.metrics, enabled=config.server.access_log)
