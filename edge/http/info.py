"""`GET|HEAD /info/{master-path}`: what a CMS or a component needs to lay an image out without a rule.

    {"path", "version", "format", "width", "height", "has_alpha", "animated", "frames",
     "placeholder": {"color", "thumbhash", "data_uri"}, "rights": {"exif:Copyright": ..., ...}}

Width and height are as displayed (after EXIF orientation); `rights` are the fields renditions
keep (origin.imaging.metadata). The URL is signed like a rendition's but for the `/info/` route
(`edge sign PATH --info`), and takes only `v`, `exp` and `kid`; under closed world a master that
some rule covers may also be asked unsigned, since its rules' markup already tells its size.
"""

from __future__ import annotations

import asyncio
import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from edge.headers import cache_control, until_expiry, version_state
from edge.http.markup import validated
from edge.services import Services
from edge.signing import check_expiry
from edge.urls import parse_query
from origin.core.errors import Problem
from origin.core.master import MasterRecord
from origin.core.memo import Memo
from origin.core.request import RenditionOptions, canonical_items
from origin.imaging.metadata import rights_in

# Rights by master version: reading them means reading the master, once.
_RIGHTS: Memo[str, dict[str, str]] = Memo(4096)


def routes() -> list[Route]:
    return [Route("/info/{path:path}", info_endpoint, methods=["GET", "HEAD"])]


async def info_endpoint(request: Request) -> Response:
    services: Services = request.app.state.services
    path = request.path_params["path"]
    opts = _options(services, path, request.url.query)
    record = await services.masters.lookup(path)
    placeholder = await services.placeholders.for_master(record)
    doc = {
        "path": path,
        "version": record.short_version,
        "format": record.header.format,
        "width": record.header.width,
        "height": record.header.height,
        "has_alpha": record.header.has_alpha,
        "animated": record.header.animated,
        "frames": record.header.frames,
        "placeholder": placeholder.to_json(),
        "rights": await _rights(services, record),
    }
    headers = {
        "Cache-Control": until_expiry(cache_control(version_state(opts.v, record.version)), opts.exp, time.time())
    }
    return validated(request, JSONResponse(doc, headers=headers))


def _options(services: Services, path: str, query: str) -> RenditionOptions:
    """The URL's v/exp/kid once its signature holds (or, under closed world, none for a master a
    rule covers); 403 otherwise, and 400 for a signed URL that names a rendering option."""
    keyless = services.config.rules.closed_world and not query and services.rules.rules_for(path)
    if keyless or not services.config.signing.required:
        opts, _ = parse_query(query)
    else:
        try:
            opts, signature = parse_query(query)
        except Problem:
            raise Problem(403, "signature does not match this URL") from None
        services.signer.check_signature(path, opts, signature, route="info")
        check_expiry(opts)
    extra = [name for name, _ in canonical_items(opts, rendering_only=True)]
    if extra:
        raise Problem(400, f"/info takes only v, exp and kid, not {extra[0]}", {"option": extra[0]})
    return opts


async def _rights(services: Services, record: MasterRecord) -> dict[str, str]:
    rights = _RIGHTS.get(record.version)
    if rights is None:
        data = await services.store.read(record.info)
        rights = _RIGHTS[record.version] = await asyncio.to_thread(rights_in, data)
    return rights
