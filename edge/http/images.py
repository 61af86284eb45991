"""The rendition endpoint: `GET|HEAD /img/{master-path}?{options}&s={signature}`.

Parse and verify the URL, look the master up, check closed world, negotiate the format, name the
rendition (its key is the ETag), answer 304 when the client has it, else get it (caches, then
one render) and spell the outcome as headers. The outcome is also left on `request.state` for the
access log, so nothing is parsed back out of header strings.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from edge.headers import cache_control, cache_status, if_none_match, server_timing, strong_etag, version_state
from edge.negotiation import negotiate_format
from edge.services import Services
from origin.core.errors import Problem
from origin.core.formats import FORMATS


async def rendition_endpoint(request: Request) -> Response:
    services: Services = request.app.state.services
    master_path = request.path_params["path"]
    if request.scope["path"] != "/img/" + master_path:
        # The route's `$` also matches before a final newline: /img/x%0A would be a second spelling.
        raise Problem(404, "no such route")
    opts = services.verified.options(master_path, request.url.query)  # 403 / 400, expiry included
    record = await services.masters.lookup(master_path)
    if services.config.rules.closed_world and not services.closed_world.allows(master_path, opts, record.header):
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
    job = services.renditions.job(record, opts, fmt)
    headers = {
        "ETag": strong_etag(job.key),
        "Cache-Control": cache_control(version_state(opts.v, record.version)),
        "Timing-Allow-Origin": "*",
        "X-Content-Type-Options": "nosniff",
    }
    if negotiated:
        headers["Vary"] = "Accept"
    if if_none_match(request.headers.get("if-none-match"), headers["ETag"]):
        return Response(status_code=304, headers=headers)

    outcome = await services.renditions.get(job)
    request.state.outcome = outcome
    rendition = outcome.rendition
    if outcome.interim:
        # A Lanczos stand-in while a model makes the real one: no shared cache may keep it, and a
        # browser asks again (its ETag will not match) and gets the upgrade once it exists.
        headers["Cache-Control"] = "private, no-cache"
        headers["ETag"] = strong_etag(job.key + "-interim")
    headers.update(
        {
            "Cache-Status": cache_status(outcome.lookups, stored=outcome.stored, collapsed=outcome.collapsed),
            "Server-Timing": server_timing(outcome.timings),
            "X-Upscale": rendition.upscale,
        }
    )
    media_type = FORMATS[rendition.format].mime
    if request.method == "HEAD":
        headers["Content-Length"] = str(len(rendition.body))
        return Response(b"", headers=headers, media_type=media_type)
    return Response(rendition.body, headers=headers, media_type=media_type)
