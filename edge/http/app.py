"""The HTTP app, assembled in one place from parts passed in (see create_app)."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from starlette.applications import Starlette
from starlette.types import ASGIApp

from edge.access_log import AccessLog
from edge.config import Config, load_config
from edge.http import info, markup, ops, sitemaps
from edge.http.compression import compressed
from edge.http.images import ImagesFirst
from edge.http.problems import EXCEPTION_HANDLERS
from edge.http.protocol import DeadlineHttpToolsProtocol
from edge.logs import configure_logging
from edge.services import Services, build_services
from origin.imaging.runtime import share_cores, tune_process

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
    tune_process(config.server.malloc_arenas)
    # Each process's connections (this one's, or a worker's: it loads the configuration itself).
    DeadlineHttpToolsProtocol.request_timeout_s = config.server.request_timeout_s
    built = services or build_services(config)
    share_cores(built.renders_at_once)
    warn_about_insecure_settings(config)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        chores = [asyncio.create_task(_every_second(built.metrics.refresh))]
        if built.purges is not None:
            chores.append(asyncio.create_task(built.purges.follow()))
        yield
        for chore in chores:
            chore.cancel()
        built.metrics.flush()  # the last second's requests, before this worker's files are left behind
        await built.close()

    app = Starlette(
        lifespan=lifespan,
        routes=[
            *ops.routes(),
            *markup.routes(),
            *info.routes(),
            *sitemaps.routes(Path(config.sitemaps.dir)),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
    )
    app.router.redirect_slashes = False  # an image origin has no use for slash redirects
    app.state.services = built
    return AccessLog(ImagesFirst(compressed(app), built), built.metrics, enabled=config.server.access_log)


async def _every_second(fn: Callable[[], None]) -> None:
    while True:
        fn()
        await asyncio.sleep(1)


WORKER_PROCESSES = "_EDGE_WORKER_PROCESSES"  # set by `edge serve --workers N` for its workers


def worker_app() -> ASGIApp:
    """The app of one of `edge serve`'s worker processes (uvicorn calls this in each of them).

    The configuration comes from the environment `edge serve` prepared (EDGE_CONFIG and the flags as
    EDGE_* variables), so every worker builds the same server; it shares the disk tier, renders
    once per key across workers, and dies with the supervisor rather than outliving it.
    """
    _die_with_parent()
    config = load_config()
    configure_logging(config.server.log_level, config.server.log_format)
    return create_app(config, build_services(config, processes=int(os.environ[WORKER_PROCESSES])))


def _die_with_parent() -> None:
    """Linux: SIGKILL this process when its parent (uvicorn's supervisor) dies, however it dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:  # the parent died before the call
            os._exit(1)
    except (OSError, AttributeError):
        log.debug("no PR_SET_PDEATHSIG here: workers may outlive a killed supervisor")
