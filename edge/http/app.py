"""The HTTP app, assembled in one place from parts passed in (see create_app)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import ASGIApp

from edge.access_log import AccessLog
from edge.config import Config
from edge.http import markup, ops, sitemaps
from edge.http.images import rendition_endpoint
from edge.http.problems import EXCEPTION_HANDLERS
from edge.services import Services, build_services
from origin.imaging.runtime import tune_process

log = logging.getLogger("edge")


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
    built = services or build_services(config)
    warn_about_insecure_settings(config)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        await built.close()

    app = Starlette(
        lifespan=lifespan,
        routes=[
            Route("/img/{path:path}", rendition_endpoint, methods=["GET", "HEAD"]),
            *ops.routes(),
            *markup.routes(),
            *sitemaps.routes(Path(config.sitemaps.dir)),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
    )
    app.router.redirect_slashes = False  # an image origin has no use for slash redirects
    app.state.services = built
    return AccessLog(app, built.metrics, enabled=config.server.access_log)
