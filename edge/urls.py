"""How rendition requests are spelled in URLs: `/img/{master-path}?{options}&s={signature}`.

The options themselves (their parsers, canonical form and defaults) are origin.core.request; this
module decodes a query string into them, finds the signature, and spells paths and URLs the one
canonical way the signature covers.
"""

from __future__ import annotations

from urllib.parse import quote, unquote_plus

from origin.core.errors import Problem, bad_option
from origin.core.request import OPTIONS, RenditionOptions, canonical_query, validate

SIGNATURE_PARAM = "s"


def raw_canonical_url(master_path: str, query: str) -> str:
    """The signed string for options that did not parse: the pairs as sent, sorted, without `s`.

    A URL whose options are malformed but whose signature holds came from our own signer (or one
    that follows the spec), so its author deserves the precise 400; anyone else gets a 403.
    """
    pairs = sorted(p for p in query.split("&") if p and p.partition("=")[0] != SIGNATURE_PARAM)
    return f"/img/{canonical_path(master_path)}?{'&'.join(pairs)}"


def signature_of(query: str) -> str | None:
    for pair in query.split("&"):
        name, _, raw = pair.partition("=")
        if name == SIGNATURE_PARAM:
            return unquote_plus(raw)
    return None


def parse_query(query: str) -> tuple[RenditionOptions, str | None]:
    """Parse a raw query string into options and the signature (`s`), or raise a 400 Problem."""
    values: dict[str, object] = {}
    signature: str | None = None
    for pair in query.split("&") if query else ():
        if not pair:
            continue
        name, sep, raw = pair.partition("=")
        name, raw = unquote_plus(name), unquote_plus(raw)
        if name == SIGNATURE_PARAM and signature is not None:
            raise Problem(403, "a URL carries one signature; this one has two")  # not ours: 403 like any forgery
        if name in values:
            raise Problem(400, f"option {name!r} is given more than once", {"option": name})
        if name == SIGNATURE_PARAM:
            signature = raw
            continue
        option = OPTIONS.get(name)
        if option is None:
            known = ", ".join(sorted(OPTIONS) + [SIGNATURE_PARAM])
            raise Problem(400, f"unknown option {name!r} (known: {known})", {"option": name})
        if not sep:
            raise bad_option(name, "given a value", "")
        values[name] = option.parse(name, raw)
    return validate(RenditionOptions(**values)), signature  # type: ignore[arg-type]


def canonical_path(master_path: str) -> str:
    """The one percent-encoded spelling of a master path, used in URLs and signatures."""
    return quote(master_path, safe="/")


def canonical_url(master_path: str, opts: RenditionOptions, route: str = "img") -> str:
    """`/img/{path}?{canonical query}`: the string the signature covers (without `s`); `route`
    "info" for `/info/{path}` URLs, so a signature for one is never good for the other."""
    return f"/{route}/{canonical_path(master_path)}?{canonical_query(opts)}"
