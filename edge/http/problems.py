"""Problems as HTTP responses: `application/problem+json` (RFC 9457) with `no-store`.

Any layer raises origin.core.errors.Problem; these handlers answer it. Anything else that escapes
is a bug: it is logged and the client gets a bare 500 without a traceback.
"""

from __future__ import annotations

import json
import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from edge.headers import NO_STORE
from origin.core.errors import Problem

log = logging.getLogger("edge")

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def problem_body(problem: Problem, instance: str | None = None) -> dict[str, object]:
    doc: dict[str, object] = {
        "type": "about:blank",
        "title": TITLES.get(problem.status, "Error"),
        "status": problem.status,
        "detail": problem.detail,
    }
    if instance:
        doc["instance"] = instance
    doc.update(problem.extra)
    return doc


def problem_headers(problem: Problem) -> dict[str, str]:
    return {"Cache-Control": NO_STORE, "Timing-Allow-Origin": "*", **problem.headers}


def problem_json(problem: Problem, instance: str | None = None) -> bytes:
    """The body as Starlette's JSONResponse spells it (the image endpoint answers without it)."""
    doc = problem_body(problem, instance)
    return json.dumps(doc, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def problem_response(problem: Problem, request: Request) -> Response:
    headers = problem_headers(problem)
    return JSONResponse(
        problem_body(problem, instance=request.url.path),
        status_code=problem.status,
        headers=headers,
        media_type="application/problem+json",
    )


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


EXCEPTION_HANDLERS = {Problem: on_problem, HTTPException: on_http_error, Exception: on_unexpected}
