"""Operations endpoints: liveness, readiness, metrics, and the authenticated purge."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from edge.caches.tiered import Tier
from edge.headers import NO_STORE, bearer_matches
from edge.metrics import Metrics
from edge.services import Services
from origin.core.errors import Problem
from origin.core.paths import is_safe_relative
from origin.masters.store import MasterStore

log = logging.getLogger("edge")


async def healthz(_request: Request) -> Response:
    """Alive: the event loop answers."""
    return JSONResponse({"status": "ok"}, headers={"Cache-Control": NO_STORE})


async def readyz(request: Request) -> Response:
    """Ready means this process can serve: only its own faults (a masters directory it cannot read)
    make it 503. A dependency every replica shares (S3 masters, the S3 rendition tier) or a tier
    that works in part (a disk that cannot store) is listed under `degraded` and in
    `edge_dependency_up{name}`: an S3 outage must not take every pod out of service while their
    caches still hold renditions."""
    services: Services = request.app.state.services
    parts: list[tuple[str, MasterStore | Tier]] = [("masters", services.store)]
    parts += [(t.name, t) for t in services.cache.tiers]
    problems, degraded = [], []
    for name, part in parts:
        problem, health = await part.ready(), await part.health()
        problems += [problem] if problem else []
        degraded += [health] if health else []
        services.metrics.dependency_up.labels(name).set(0 if problem or health else 1)
    body = {"status": "ok" if not problems else "unavailable", "problems": problems, "degraded": degraded}
    return JSONResponse(body, status_code=503 if problems else 200, headers={"Cache-Control": NO_STORE})


async def purge_endpoint(request: Request) -> Response:
    """POST /admin/purge/{master}: drop every rendition of a master from every tier of this server."""
    services: Services = request.app.state.services
    token = services.config.admin.token
    if not token:
        raise Problem(404, "admin endpoints are disabled (set admin.token)")
    if not bearer_matches(request.headers.get("authorization", ""), token):
        raise Problem(
            401, "admin endpoints need Authorization: Bearer <admin.token>", headers={"WWW-Authenticate": "Bearer"}
        )
    master_path = request.path_params["path"]
    if not (is_safe_relative(master_path) or master_path.startswith(("http://", "https://"))):
        # What could never be a master (`../edge.toml`, hidden files, absolute paths): nothing to purge.
        raise Problem(400, f"not a master path: {master_path!r}", {"option": "path"})
    removed = await services.purge(master_path)
    log.warning("purged %s: %s", master_path, removed)
    return JSONResponse({"master": master_path, "removed": removed}, headers={"Cache-Control": NO_STORE})


async def metrics_endpoint(request: Request) -> Response:
    metrics: Metrics = request.app.state.services.metrics
    return Response(metrics.exposition(), media_type=metrics.content_type, headers={"Cache-Control": NO_STORE})


def routes() -> list[Route]:
    return [
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        Route("/readyz", readyz, methods=["GET", "HEAD"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/admin/purge/{path:path}", purge_endpoint, methods=["POST"]),
    ]
