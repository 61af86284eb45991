"""Per-request bookkeeping as ASGI middleware: request ids, JSON-lines access logs, request metrics.

It sits outside the app, so it sees every response (errors included). What a rendition request
did (cache result, render time) it reads from the structured outcome the endpoint leaves in the
request's state (`request.state.outcome`, an edge.renditions.Outcome), not from header strings.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import secrets
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edge.metrics import Metrics
from edge.renditions import Outcome

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# New request ids: random per process, then a counter (a uuid4 per request cost a hit 7 us).
# Worker processes are spawned, not forked, so each draws its own prefix.
_ID_PREFIX = secrets.token_hex(12)  # with 8 counter digits: 32 characters, like a uuid4
_ID_COUNTER = itertools.count()


def cache_outcome(status: int, outcome: Outcome | None) -> str:
    """hit / miss / collapsed for renditions, revalidated for 304, none for everything else."""
    if status == 304:
        return "revalidated"
    return outcome.cache if outcome is not None else "none"


def access_record(
    scope: Scope, status: int, content_type: str, body_bytes: int, seconds: float, request_id: str
) -> dict[str, Any]:
    query = scope.get("query_string", b"").decode("latin-1")
    outcome = scope.get("state", {}).get("outcome")
    render = outcome.timings.get("render") if outcome is not None else None
    client = scope.get("client") or ("", 0)
    return {
        "time": round(time.time(), 3),
        "request_id": request_id,
        "remote": client[0],
        "method": scope.get("method", ""),
        "path": scope.get("path", "") + (f"?{query}" if query else ""),
        "status": status,
        "bytes": body_bytes,
        "format": image_format(content_type),
        "cache": cache_outcome(status, outcome),
        "render_ms": round(render * 1000, 1) if render is not None else None,
        "duration_ms": round(seconds * 1000, 2),
    }


def image_format(content_type: str) -> str | None:
    return content_type.removeprefix("image/") if content_type.startswith("image/") else None


def request_id_of(scope: Scope) -> str:
    """The client's X-Request-Id when it is a sane token, else a new one."""
    for name, value in scope.get("headers") or ():
        if name == b"x-request-id":
            incoming = value.decode("latin-1")
            if _REQUEST_ID.fullmatch(incoming):
                return incoming
            break
    return f"{_ID_PREFIX}{next(_ID_COUNTER):08x}"


class AccessLog:
    """Runs on every request, hits included: it does only what is needed (the JSON record only when
    logging is on) and counts through the metrics' cached label children."""

    def __init__(self, app: ASGIApp, metrics: Metrics, logger: logging.Logger | None = None, enabled: bool = True):
        self.app = app
        self.metrics = metrics
        self.logger = logger or logging.getLogger("edge.access")
        self.enabled = enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_of(scope)
        header = (b"x-request-id", request_id.encode())
        status, content_type, sent = 500, "", 0
        state = scope.setdefault("state", {})  # request.state: where the endpoint leaves its outcome

        async def send_wrapper(message: Message) -> None:
            nonlocal status, content_type, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.get("headers") or []
                for name, value in headers:
                    if name == b"content-type":
                        content_type = value.decode("latin-1")
                        break
                message["headers"] = [*headers, header]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            seconds = time.perf_counter() - started
            outcome = state.get("outcome")
            self.metrics.count_request(
                status, image_format(content_type), sent, cache_outcome(status, outcome), seconds
            )
            if self.enabled:
                record = access_record(scope, status, content_type, sent, seconds, request_id)
                self.logger.info(json.dumps(record, separators=(",", ":")))
