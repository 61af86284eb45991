"""The HTTP app, assembled in one place from parts passed in (see create_app)."""

from __future__ import annotations

import contextlib
import hmac
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from edge.access_log import AccessLog
from edge.caches import DiskTier, MemoryTier, Tier, TieredCache
from edge.config import Config
from edge.headers import (
    CONTENT_TYPES,
    NO_STORE,
    cache_control,
    if_none_match,
    strong_etag,
    version_state,
)
from edge.metrics import Metrics
from edge.negotiation import negotiate_format
from edge.options import parse_query
from edge.problems import Problem
from edge.render_pool import RenderPool, default_workers
from edge.renditions import RenditionService, master_id
from edge.s3_cache import S3Tier
from edge.signing import Signer, check_expiry
from edge.stores import master_store
from origin.masters import MasterStore
from origin.runtime import tune_process
from origin.versions import MasterIndex

log = logging.getLogger("edge")


@dataclass
class Services:
    config: Config
    signer: Signer
    masters: MasterIndex
    renditions: RenditionService
    pool: RenderPool
    store: MasterStore
    tiers: list[Tier]
    metrics: Metrics


def build_services(config: Config, store: MasterStore | None = None) -> Services:
    store = store or master_store(config)
    tiers: list[Tier] = []
    if config.cache.memory_mb:
        tiers.append(MemoryTier(config.cache.memory_mb * 1024 * 1024))
    if config.cache.disk_mb:
        tiers.append(DiskTier(config.cache.disk_dir, config.cache.disk_mb * 1024 * 1024))
    if config.cache.s3_url:
        tiers.append(S3Tier(config.cache.s3_url, config.s3))
    s = config.server
    pool = RenderPool(s.render_workers or default_workers(), s.queue_limit, s.render_timeout_s, s.retry_after_s)
    metrics = Metrics()
    metrics.track_queue(lambda: pool.pending)
    renditions = RenditionService(
        store, TieredCache(tiers), pool, config.limits, config.encode, config.formats.qualities(), metrics
    )
    index = MasterIndex(store, config.limits)
    return Services(config, Signer(config.signing_keys()), index, renditions, pool, store, tiers, metrics)


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


async def healthz(_request: Request) -> Response:
    """Alive: the event loop answers."""
    return JSONResponse({"status": "ok"}, headers={"Cache-Control": NO_STORE})


async def readyz(request: Request) -> Response:
    """Ready: the master store and every cache tier that can fail say they can serve."""
    services: Services = request.app.state.services
    checks = [services.store, *services.tiers]
    problems = [p for p in [await c.ready() for c in checks if hasattr(c, "ready")] if p]
    body = {"status": "ok" if not problems else "unavailable", "problems": problems}
    return JSONResponse(body, status_code=503 if problems else 200, headers={"Cache-Control": NO_STORE})


async def purge_endpoint(request: Request) -> Response:
    """POST /admin/purge/{master}: drop every rendition of a master from every tier of this server."""
    services: Services = request.app.state.services
    token = services.config.admin.token
    if not token:
        raise Problem(404, "admin endpoints are disabled (set admin.token)")
    given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise Problem(
            401, "admin endpoints need Authorization: Bearer <admin.token>", headers={"WWW-Authenticate": "Bearer"}
        )
    master_path = request.path_params["path"]
    removed = await services.renditions.cache.purge(master_id(master_path))
    log.warning("purged %s: %s", master_path, removed)
    return JSONResponse({"master": master_path, "removed": removed}, headers={"Cache-Control": NO_STORE})


async def metrics_endpoint(request: Request) -> Response:
    metrics: Metrics = request.app.state.services.metrics
    return Response(metrics.exposition(), media_type=metrics.content_type, headers={"Cache-Control": NO_STORE})


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
            Route("/healthz", healthz, methods=["GET", "HEAD"]),
            Route("/readyz", readyz, methods=["GET", "HEAD"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
            Route("/admin/purge/{path:path}", purge_endpoint, methods=["POST"]),
        ],
        exception_handlers={Problem: on_problem, HTTPException: on_http_error, Exception: on_unexpected},
    )
    app.state.services = services
    return AccessLog(app, services.metrics, enabled=config.server.access_log)
