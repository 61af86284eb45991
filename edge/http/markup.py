"""HTTP endpoints for markup and preload hints, for page servers and CDNs.

    GET /srcset/{rule}/{master}   JSON (default), ?format=html (<img>) or ?format=picture
    GET /rules.json               the rules' public description (rules.public): what a JavaScript
                                  client needs to build keyless URLs and srcsets, nothing secret
    GET /preload/{rule}/{master}  JSON with the <link> HTML and the Link header value, ?for=img|picture;
                                  the response carries that Link header itself, so a CDN or page
                                  server can pass it on (also as 103 Early Hints)

Both take ?base_url=https://img.example.com (prefix of every URL) and /srcset takes ?alt=TEXT.
/srcset JSON carries "placeholder": {"color", "thumbhash", "data_uri"}; ?placeholder=style paints
it behind the HTML's <img> (a `style` attribute).
They read `request.app.state.services`: `.rules`, `.signer`, `.masters` and `.capacity`.
Errors are Problems: 404 for an unknown rule, for a master the rule does not apply to (whether
or not it exists: checked before the master is looked up) and for an unknown master; 400 for a
wrong parameter; 401 without the token when `[rules] markup_access` asks for one.
"""

from __future__ import annotations

import re

import blake3
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from edge.headers import bearer_matches, if_none_match
from edge.services import Services
from origin.core.errors import Problem, bad_option
from origin.imaging.placeholders import Placeholder
from rules.markup import ALT_PLACEHOLDER, Markup, build_markup
from rules.preview import preview_html
from rules.public import describe

# Markup follows the master's current version: short-lived, so a new master shows up soon.
CACHE_CONTROL = "public, max-age=60"
PRIVATE = "private, max-age=60"  # behind the markup token: no shared cache may hand it to others
BASE_URL = re.compile(r"(https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?)?(/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)?")


def routes() -> list[Route]:
    return [
        Route("/srcset/{rule}/{master:path}", srcset_endpoint, methods=["GET"]),
        Route("/preload/{rule}/{master:path}", preload_endpoint, methods=["GET"]),
        Route("/preview", preview_endpoint, methods=["GET"]),
        Route("/rules.json", rules_endpoint, methods=["GET"]),
    ]


def validated(request: Request, response: Response) -> Response:
    """The response with a weak ETag of its body (the markup changes with the master's version
    and the server's configuration), or a 304 with the same headers when the client has it."""
    # Weak: the gzip and identity encodings of this body are one representation (edge.http.compression).
    etag = 'W/"' + blake3.blake3(response.body).hexdigest(length=16) + '"'
    response.headers["ETag"] = etag
    if if_none_match(request.headers.get("if-none-match"), etag):
        kept = {k: v for k, v in response.headers.items() if k.lower() not in ("content-length", "content-type")}
        return Response(status_code=304, headers=kept)
    return response


def _choice(request: Request, name: str, choices: tuple[str, ...]) -> str:
    value = request.query_params.get(name, choices[0])
    if value not in choices:
        raise bad_option(name, "one of " + ", ".join(choices), value)
    return value


def public(services: Services) -> bool:
    """Whether /srcset and /preload answer without the markup token ([rules] markup_access)."""
    rules = services.config.rules
    if rules.markup_access == "auto":
        return rules.closed_world or services.config.uses_dev_key
    return rules.markup_access == "public"


def authorise(request: Request, services: Services) -> None:
    """A Problem unless the caller may have signed URLs minted for it."""
    if public(services):
        return
    token = services.config.rules.markup_token
    if not bearer_matches(request.headers.get("authorization", ""), token):
        how = "Authorization: Bearer <rules.markup_token>" if token else "[rules] markup_token to be set"
        raise Problem(
            401,
            f"/srcset and /preload mint signed URLs: they need {how} "
            '(or [rules] markup_access = "public", or closed world)',
            headers={"WWW-Authenticate": "Bearer"},
        )


async def _markup(
    request: Request,
    alt: str = ALT_PLACEHOLDER,
    rule_and_master: tuple[str, str] | None = None,
    placeholder: bool = False,
    paint: bool = False,
) -> tuple[Markup, Placeholder | None]:
    """The markup (and, when asked, the placeholders; `paint`: also as the <img>'s style)."""
    services: Services = request.app.state.services
    if rule_and_master is None:  # /srcset and /preload (the preview page has its own switch)
        authorise(request, services)
    ruleset = services.rules
    name, master = rule_and_master or (request.path_params["rule"], request.path_params["master"])
    # The rule must cover the master before the master is looked at: an unsigned request may not
    # learn which masters exist, nor make the server read (or fetch) any path it names.
    rule = ruleset.rule_for(name, master)  # 404 unknown rule, 400 a master the rule does not cover
    record = await services.masters.lookup(master)  # 404 for an unknown master
    base_url = request.query_params.get("base_url", "")
    if not BASE_URL.fullmatch(base_url):
        raise bad_option("base_url", "an http(s) origin with an optional path, like https://img.example.com", base_url)
    sign = services.signer.url_signer(base_url)
    painted = await services.placeholders.get(rule, record) if placeholder or paint else None
    style = painted.css() if painted is not None and paint else None
    markup = build_markup(
        rule, master, record.header, record.short_version, sign, services.capacity, alt=alt, style=style
    )
    return markup, painted


async def srcset_endpoint(request: Request) -> Response:
    fmt = _choice(request, "format", ("json", "html", "picture"))
    paint = _choice(request, "placeholder", ("none", "style")) == "style"
    # JSON always carries the placeholders; HTML paints them only when asked (?placeholder=style).
    alt = request.query_params.get("alt", ALT_PLACEHOLDER)
    markup, painted = await _markup(request, alt, placeholder=fmt == "json", paint=paint)
    headers = {"Cache-Control": CACHE_CONTROL if public(request.app.state.services) else PRIVATE}
    if fmt == "html":
        return validated(request, HTMLResponse(markup.img_html() + "\n", headers=headers))
    if fmt == "picture":
        return validated(request, HTMLResponse(markup.picture_html() + "\n", headers=headers))
    doc = markup.to_json()
    if painted is not None:
        doc["placeholder"] = painted.to_json()
    return validated(request, JSONResponse(doc, headers=headers))


async def preload_endpoint(request: Request) -> Response:
    asked = _choice(request, "for", ("default", "img", "picture"))
    fmt = _choice(request, "format", ("json", "html", "link"))
    markup, _ = await _markup(request)
    target = markup.default_target if asked == "default" else asked
    headers = {"Cache-Control": CACHE_CONTROL if public(request.app.state.services) else PRIVATE}
    link = markup.link_header(target)  # type: ignore[arg-type]
    if link:
        headers["Link"] = link
    if fmt == "html":
        return validated(request, HTMLResponse(markup.preload_html(target) + "\n", headers=headers))  # type: ignore[arg-type]
    if fmt == "link":
        return validated(request, PlainTextResponse(link + "\n", headers=headers))
    return validated(request, JSONResponse(markup.preload_json(target), headers=headers))  # type: ignore[arg-type]


async def preview_endpoint(request: Request) -> Response:
    """GET /preview?rule=R&master=M: every rendition of a rule for a master (off unless enabled)."""
    services: Services = request.app.state.services
    if not services.config.rules.preview:
        raise Problem(404, "the preview page is disabled (set [rules] preview = true)")
    name, master = request.query_params.get("rule", ""), request.query_params.get("master", "")
    if not name or not master:
        raise Problem(400, "preview needs ?rule=NAME&master=PATH", {"option": "rule" if not name else "master"})
    markup, _ = await _markup(request, rule_and_master=(name, master))
    return HTMLResponse(preview_html(markup), headers={"Cache-Control": "no-store"})


async def rules_endpoint(request: Request) -> Response:
    """GET /rules.json: public, like the markup every page shows (no URL in it is signed)."""
    state = request.app.state
    doc = getattr(state, "rules_description", None)
    if doc is None:  # the rules and the server's capacity are fixed for the app's life: once
        services: Services = state.services
        doc = state.rules_description = describe(
            services.rules, services.capacity, keyless=services.config.rules.closed_world
        )
    return validated(request, JSONResponse(doc, headers={"Cache-Control": CACHE_CONTROL}))
