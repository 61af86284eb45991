"""Per-request bookkeeping as ASGI middleware: request ids, JSON-lines access logs, request metrics.

It sits outside the app, so it sees every response (errors included). What a rendition request
did (cache result, render time) it reads from the structured outcome the endpoint leaves in the
request's state (`request.state.outcome`, an edge.renditions.Outcome), not from header strings.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edge.metrics import Metrics
from edge.renditions import Outcome

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def cache_outcome(status: int, outcome: Outcome | None) -> str:
    """hit / miss / collapsed for renditions, revalidated for 304, none for everything else."""
    if status == 304:
        return "revalidated"
    return outcome.cache if outcome is not None else "none"


def access_record(
    scope: Scope, status: int, headers: dict[str, str], body_bytes: int, seconds: float, request_id: str
) -> dict[str, Any]:
    query = scope.get("query_string", b"").decode("latin-1")
    outcome = scope.get("state", {}).get("outcome")
    render = outcome.timings.get("render") if outcome is not None else None
    content_type = headers.get("content-type", "")
    client = scope.get("client") or ("", 0)
    return {
        "time": round(time.time(), 3),
        "request_id": request_id,
        "remote": client[0],
        "method": scope.get("method", ""),
        "path": scope.get("path", "") + (f"?{query}" if query else ""),
        "status": status,
        "bytes": body_bytes,
        "format": content_type.removeprefix("image/") if content_type.startswith("image/") else None,
        "cache": cache_outcome(status, outcome),
        "render_ms": round(render * 1000, 1) if render is not None else None,
        "duration_ms": round(seconds * 1000, 2),
    }


class AccessLog:
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
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        state: dict[str, Any] = {"status": 500, "headers": {}, "bytes": 0}
        scope.setdefault("state", {})  # request.state: where the endpoint leaves its outcome

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                state["headers"] = {k.decode("latin-1"): v.decode("latin-1") for k, v in message.get("headers", [])}
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            elif message["type"] == "http.response.body":
                state["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            seconds = time.perf_counter() - started
            record = access_record(scope, state["status"], state["headers"], state["bytes"], seconds, request_id)
            self._count(record, seconds)
            if self.enabled:
                self.logger.info(json.dumps(record, separators=(",", ":")))

    def _count(self, record: dict[str, Any], seconds: float) -> None:
        fmt = record["format"] or "none"
        self.metrics.requests.labels(str(record["status"]), fmt).inc()
        if record["format"]:
            self.metrics.response_bytes.labels(fmt).inc(record["bytes"])
        self.metrics.request_seconds.labels(record["cache"]).observe(seconds)
