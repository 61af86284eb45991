"""`edge serve`: run the HTTP server."""

from __future__ import annotations

import argparse
import logging
import sys

import uvicorn

from edge.cli.common import add_common
from edge.config import Config
from edge.http.app import create_app
from edge.services import build_services, lookup_master
from origin.core.request import RenditionOptions
from origin.masters.local import LocalMasterStore


def register(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser("serve", help="run the HTTP server", description="Run the HTTP server.")
    add_common(serve)
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8080)")
    serve.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace, config: Config) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("pyvips").setLevel(logging.WARNING)  # ~17 INFO lines per render otherwise
    access = logging.getLogger("edge.access")  # JSON lines, one per request, nothing around them
    access.propagate = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access.addHandler(handler)
    services = build_services(config)
    app = create_app(config, services)
    base = f"http://{config.server.host}:{config.server.port}"
    examples = [] if config.masters_in_s3 else LocalMasterStore(config.masters_dir).list()[:1]
    print(f"edge-image-cdn: masters in {config.masters_dir}", file=sys.stderr)
    for path in examples:
        record = lookup_master(config, path)
        opts = RenditionOptions(w=640, dpr=2, v=record.short_version)
        print(f"Try: {base}{services.signer.sign_url(path, opts)}", file=sys.stderr)
    # No per-request access log line from uvicorn: it costs a large share of a cache hit's CPU.
    uvicorn.run(app, host=config.server.host, port=config.server.port, log_level="info", access_log=False)
    return 0
