"""`edge serve`: run the HTTP server, in one process or in `server.workers` worker processes."""

from __future__ import annotations

import argparse
import contextlib
import itertools
import logging
import os
import tempfile

import uvicorn
from uvicorn.supervisors import Multiprocess

from edge.cli import listen
from edge.cli.commands import summary
from edge.cli.common import add_common
from edge.config import Config, unknown_environment
from edge.http.app import WORKER_PROCESSES, create_app
from edge.http.protocol import DeadlineHttpToolsProtocol
from edge.logs import FORMATS as LOG_FORMATS
from edge.logs import LEVELS as LOG_LEVELS
from edge.logs import configure_logging
from edge.services import build_services, load_rule_set, survey_masters
from edge.signing import Signer
from origin.core.concurrency import cpu_count
from origin.core.master import MasterRecord
from origin.core.request import RenditionOptions
from origin.imaging.runtime import tune_process
from origin.masters.local import LocalMasterStore

log = logging.getLogger("edge")
SAMPLE_TRIES = 20  # files looked at for the "Try:" URL at start-up


def register(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser("serve", help=summary("serve"), description="Run the HTTP server.")
    add_common(serve)
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8080)")
    serve.add_argument(
        "--workers",
        type=int,
        help="worker processes (default server.workers; 0: one per CPU this process may use, cgroup quota included)",
    )
    serve.add_argument("--log-level", choices=LOG_LEVELS, help="debug, info (default), warning or error")
    serve.add_argument(
        "--log-format", choices=LOG_FORMATS, help="json, text, or auto (default: json unless stderr is a terminal)"
    )
    serve.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace, config: Config) -> int:
    configure_logging(config.server.log_level, config.server.log_format)
    workers = args.workers if args.workers is not None else config.server.workers
    workers = workers or cpu_count()
    if workers < 1:
        raise SystemExit("edge: --workers must be 0 (one per CPU) or more")
    tune_process(config.server.malloc_arenas)  # before the threads that would each get a malloc arena
    for warning in unknown_environment():
        log.warning("%s", warning)
    load_rule_set(config)  # invalid rules stop here, with every error listed, before any worker starts
    signer = Signer(config.signing_keys())
    base = f"http://{config.server.host}:{config.server.port}"
    log.info("edge-image-cdn: masters in %s, %d worker process(es)", config.masters_dir, workers)
    if not config.masters_in_s3:
        log.info("%s", _sample_url(config, signer, base))
    # No per-request access log line from uvicorn: it costs a large share of a cache hit's CPU.
    run = {
        "host": config.server.host,
        "port": config.server.port,
        "log_level": config.server.log_level,
        "access_log": False,
        "log_config": None,  # uvicorn's lines go through edge.logs' handlers, in the same format
        "http": DeadlineHttpToolsProtocol,
    }
    if workers == 1:
        uvicorn.run(create_app(config, build_services(config)), **run)  # type: ignore[arg-type]
        return 0
    _hand_over(args)
    os.environ[WORKER_PROCESSES] = str(workers)
    # Each worker's metrics go to files here; /metrics (any worker) sums them.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="edge-metrics-")
    server = uvicorn.Config("edge.http.app:worker_app", factory=True, workers=workers, **run)  # type: ignore[arg-type]
    sockets: list[object]  # uvicorn's supervisor passes each to every worker process
    if listen.available():
        host, port = config.server.host, config.server.port
        try:
            listen.check_free(host, port)
        except OSError as e:
            raise SystemExit(f"edge: cannot listen on {host}:{port}: {e.strerror or e}") from None
        log.info("listening on %s, a socket per worker (SO_REUSEPORT)", base)
        sockets = [listen.PerWorker(host, port)]  # becomes a socket in each worker
    else:  # one socket for all workers, as uvicorn.run binds it
        sockets = [server.bind_socket()]
    with contextlib.suppress(KeyboardInterrupt):
        Multiprocess(server, sockets=sockets).run()  # type: ignore[arg-type]
    return 0


def _sample_url(config: Config, signer: Signer, base: str) -> str:
    """A signed URL for the first servable master among the first few, or why there is none (the
    folder may hold anything: start-up never depends on what it holds)."""
    paths = list(itertools.islice(LocalMasterStore(config.masters_dir).paths(), SAMPLE_TRIES))
    surveyed = survey_masters(config, paths, stop_at_first=True)
    for path, record in zip(paths, surveyed, strict=False):
        if isinstance(record, MasterRecord):
            opts = RenditionOptions(w=640, dpr=2, v=record.short_version)
            return f"Try: {base}{signer.sign_url(path, opts)}"
    if not paths:
        return "No masters yet: add images to the masters directory."
    return f"No servable master among the first {len(paths)} files; `edge masters check` says why for each."


def _hand_over(args: argparse.Namespace) -> None:
    """Put the command line's choices where each worker's load_config() finds them."""
    if args.config:
        os.environ["EDGE_CONFIG"] = args.config
    flags = (("masters", "EDGE_MASTERS"), ("host", "EDGE_HOST"), ("port", "EDGE_PORT"))
    levels = (("log_level", "EDGE_SERVER_LOG_LEVEL"), ("log_format", "EDGE_SERVER_LOG_FORMAT"))
    for flag, variable in (*flags, *levels):
        value = getattr(args, flag, None)
        if value is not None:
            os.environ[variable] = str(value)
