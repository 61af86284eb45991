"""The URL grammar: `/img/{master-path}?{options}&s={signature}`.

Options are parsed once, by a table of small parsers, into one frozen `RenditionOptions`. Its
canonical form (names sorted, defaults dropped, values in one spelling) is what the signature
covers and what rendition cache keys are built from, so two spellings of one request are one entry.
Every error is a 400 that names the option and what it accepts.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from urllib.parse import quote, unquote_plus

from edge.problems import Problem, bad_option

MAX_SIZE = 8192
FITS = ("cover", "contain", "fill", "inside", "outside")
GRAVITIES = ("center", "n", "s", "e", "w", "ne", "nw", "se", "sw", "smart", "focal")
FORMATS = ("auto", "avif", "webp", "jpeg", "png", "gif")
SIGNATURE_PARAM = "s"


@dataclass(frozen=True)
class Crop:
    """A region of the master in master pixels, after EXIF rotation."""

    x: int
    y: int
    w: int
    h: int

    def __str__(self) -> str:
        return f"{self.x},{self.y},{self.w},{self.h}"


@dataclass(frozen=True)
class RenditionOptions:
    w: int | None = None
    h: int | None = None
    dpr: float = 1.0
    fit: str = "cover"
    g: str = "center"
    fx: float | None = None
    fy: float | None = None
    crop: Crop | None = None
    q: int | None = None
    fm: str = "auto"
    # Not rendering options: they select the master version, expiry and signing key.
    v: str | None = None
    exp: int | None = None
    kid: str | None = None


DEFAULTS = RenditionOptions()
# Options that change only which URL is valid, not the pixels: left out of rendition keys.
NON_RENDERING = frozenset({"v", "exp", "kid"})

_INT = re.compile(r"[0-9]{1,12}")
_DECIMAL = re.compile(r"[0-9]{1,3}(\.[0-9]{1,4})?")


def _int_in(lo: int, hi: int) -> Callable[[str, str], int]:
    def parse(name: str, raw: str) -> int:
        if not _INT.fullmatch(raw) or not lo <= int(raw) <= hi:
            raise bad_option(name, f"an integer {lo}..{hi}", raw)
        return int(raw)

    return parse


def _decimal_in(lo: float, hi: float, places: int) -> Callable[[str, str], float]:
    def parse(name: str, raw: str) -> float:
        m = _DECIMAL.fullmatch(raw)
        if not m or len((m.group(1) or ".")[1:]) > places or not lo <= float(raw) <= hi:
            raise bad_option(name, f"a number {lo:g}..{hi:g} with at most {places} decimals", raw)
        return round(float(raw), places)

    return parse


def _one_of(choices: tuple[str, ...]) -> Callable[[str, str], str]:
    def parse(name: str, raw: str) -> str:
        if raw not in choices:
            raise bad_option(name, "one of " + ", ".join(choices), raw)
        return raw

    return parse


def _crop(name: str, raw: str) -> Crop:
    parts = raw.split(",")
    if len(parts) != 4 or not all(_INT.fullmatch(p) for p in parts):
        raise bad_option(name, "four integers x,y,w,h", raw)
    x, y, w, h = (int(p) for p in parts)
    if w < 1 or h < 1:
        raise bad_option(name, "a region with w and h at least 1", raw)
    return Crop(x, y, w, h)


def _hex_version(name: str, raw: str) -> str:
    if not re.fullmatch(r"[0-9a-f]{8,64}", raw):
        raise bad_option(name, "a lowercase hex version hash of 8..64 digits", raw)
    return raw


def _key_id(name: str, raw: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,32}", raw):
        raise bad_option(name, "a key id of 1..32 letters, digits, '_', '.' or '-'", raw)
    return raw


PARSERS: dict[str, Callable[[str, str], object]] = {
    "w": _int_in(1, MAX_SIZE),
    "h": _int_in(1, MAX_SIZE),
    "dpr": _decimal_in(1, 4, 2),
    "fit": _one_of(FITS),
    "g": _one_of(GRAVITIES),
    "fx": _decimal_in(0, 1, 4),
    "fy": _decimal_in(0, 1, 4),
    "crop": _crop,
    "q": _int_in(1, 100),
    "fm": _one_of(FORMATS),
    "v": _hex_version,
    "exp": _int_in(0, 10**12 - 1),
    "kid": _key_id,
}


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
        if name in values or (name == SIGNATURE_PARAM and signature is not None):
            raise Problem(400, f"option {name!r} is given more than once", {"option": name})
        if name == SIGNATURE_PARAM:
            signature = raw
            continue
        parser = PARSERS.get(name)
        if parser is None:
            known = ", ".join(sorted(PARSERS) + [SIGNATURE_PARAM])
            raise Problem(400, f"unknown option {name!r} (known: {known})", {"option": name})
        if not sep:
            raise bad_option(name, "given a value", "")
        values[name] = parser(name, raw)
    return validate(RenditionOptions(**values)), signature  # type: ignore[arg-type]


def validate(opts: RenditionOptions) -> RenditionOptions:
    """Checks that involve more than one option; returns the options with focal defaults filled."""
    if (opts.fx is not None or opts.fy is not None) and opts.g != "focal":
        name = "fx" if opts.fx is not None else "fy"
        raise Problem(400, f"{name} needs g=focal", {"option": name})
    if opts.g == "focal":
        # A focal point defaults to the middle of each axis not given.
        opts = replace(opts, fx=0.5 if opts.fx is None else opts.fx, fy=0.5 if opts.fy is None else opts.fy)
    return opts


def _format_value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".")
    return str(value)


def canonical_items(opts: RenditionOptions, *, rendering_only: bool = False) -> list[tuple[str, str]]:
    """(name, value) pairs sorted by name, with defaults dropped and values in one spelling."""
    items = []
    for f in fields(opts):
        value = getattr(opts, f.name)
        if value is None or value == getattr(DEFAULTS, f.name):
            continue
        if rendering_only and f.name in NON_RENDERING:
            continue
        if opts.g == "focal" and f.name in ("fx", "fy") and value == 0.5:
            continue  # the focal default
        items.append((f.name, _format_value(value)))
    return sorted(items)


def canonical_query(opts: RenditionOptions, *, rendering_only: bool = False) -> str:
    # Values are digits, letters, '.', ',' and '-': nothing needs escaping.
    return "&".join(f"{k}={v}" for k, v in canonical_items(opts, rendering_only=rendering_only))


def canonical_path(master_path: str) -> str:
    """The one percent-encoded spelling of a master path, used in URLs and signatures."""
    return quote(master_path, safe="/")


def canonical_url(master_path: str, opts: RenditionOptions) -> str:
    """`/img/{path}?{canonical query}`: the string the signature covers (without `s`)."""
    return f"/img/{canonical_path(master_path)}?{canonical_query(opts)}"
