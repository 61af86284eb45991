"""What a rendition request asks for: `RenditionOptions`, parsed once from a table of options.

Each option has a parser (raw text -> value, or a 400 Problem that names the option and what it
accepts) and a help line (the CLI's). The canonical form (names sorted, defaults dropped, values
in one spelling) is what URL signatures cover and what rendition keys are built from, so two
spellings of one request are one entry. How options appear in a URL (query-string decoding, the
signature parameter, the path) is edge's business: `edge.urls`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, fields, replace

from origin.core.errors import Problem, bad_option
from origin.core.formats import NAMES as FORMAT_NAMES

MAX_SIZE = 8192  # the largest `w` or `h` a URL may name (CSS pixels)
AUTO = "auto"  # q=auto: the quality that reaches the configured SSIMULACRA2 target
MIN_BYTES, MAX_BYTES = 100, 50_000_000  # the range of max_bytes
FITS = ("cover", "contain", "fill", "inside", "outside")
COMPASS_GRAVITIES = ("center", "n", "s", "e", "w", "ne", "nw", "se", "sw")
GRAVITIES = (*COMPASS_GRAVITIES, "smart", "focal")
FORMATS = ("auto", *FORMAT_NAMES)
# The client hints a URL lets refine it (`ch=dpr,width`); edge.client_hints applies them.
HINTS = ("dpr", "save-data", "width")


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
    q: int | str | None = None  # 1..100, or AUTO
    fm: str = "auto"
    # Not rendering options: they select the master version, expiry and signing key.
    v: str | None = None
    exp: int | None = None
    kid: str | None = None
    # A rendering option again (after the others, so positional construction of those stays valid).
    max_bytes: int | None = None  # the body may be at most this long: the best quality that fits
    # Client hints this URL may be refined by ("dpr,width": sorted, comma-separated). Not a
    # rendering option itself: the edge turns the hints into w, h, dpr and q before rendering.
    ch: str | None = None


DEFAULTS = RenditionOptions()
# Options that change only which URL is valid, not the pixels: left out of rendition keys.
NON_RENDERING = frozenset({"v", "exp", "kid", "ch"})

_INT = re.compile(r"[0-9]{1,12}")
_DECIMAL = re.compile(r"[0-9]{1,3}(\.[0-9]{1,4})?")
Parser = Callable[[str, str], object]


def _int_in(lo: int, hi: int) -> Parser:
    def parse(name: str, raw: str) -> int:
        if not _INT.fullmatch(raw) or not lo <= int(raw) <= hi:
            raise bad_option(name, f"an integer {lo}..{hi}", raw)
        return int(raw)

    return parse


def _decimal_in(lo: float, hi: float, places: int) -> Parser:
    def parse(name: str, raw: str) -> float:
        m = _DECIMAL.fullmatch(raw)
        if not m or len((m.group(1) or ".")[1:]) > places or not lo <= float(raw) <= hi:
            raise bad_option(name, f"a number {lo:g}..{hi:g} with at most {places} decimals", raw)
        return round(float(raw), places)

    return parse


def _one_of(choices: tuple[str, ...]) -> Parser:
    def parse(name: str, raw: str) -> str:
        if raw not in choices:
            raise bad_option(name, "one of " + ", ".join(choices), raw)
        return raw

    return parse


def _quality(name: str, raw: str) -> int | str:
    if raw == AUTO:
        return AUTO
    if not _INT.fullmatch(raw) or not 1 <= int(raw) <= 100:
        raise bad_option(name, "an integer 1..100 or auto", raw)
    return int(raw)


def _crop(name: str, raw: str) -> Crop:
    parts = raw.split(",")
    if len(parts) != 4 or not all(_INT.fullmatch(p) for p in parts):
        raise bad_option(name, "four integers x,y,w,h", raw)
    x, y, w, h = (int(p) for p in parts)
    if w < 1 or h < 1:
        raise bad_option(name, "a region with w and h at least 1", raw)
    return Crop(x, y, w, h)


def _hints(name: str, raw: str) -> str:
    names = raw.split(",")
    if not raw or any(n not in HINTS for n in names):
        raise bad_option(name, "a comma-separated list of " + ", ".join(HINTS), raw)
    return ",".join(sorted(set(names)))


def _hex_version(name: str, raw: str) -> str:
    if not re.fullmatch(r"[0-9a-f]{8,64}", raw):
        raise bad_option(name, "a lowercase hex version hash of 8..64 digits", raw)
    return raw


def _key_id(name: str, raw: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,32}", raw):
        raise bad_option(name, "a key id of 1..32 letters, digits, '_', '.' or '-'", raw)
    return raw


@dataclass(frozen=True)
class Option:
    parse: Parser
    help: str


OPTIONS: dict[str, Option] = {
    "w": Option(_int_in(1, MAX_SIZE), f"width in CSS pixels, 1..{MAX_SIZE}"),
    "h": Option(_int_in(1, MAX_SIZE), f"height in CSS pixels, 1..{MAX_SIZE}"),
    "dpr": Option(_decimal_in(1, 4, 2), "device pixel ratio 1..4"),
    "fit": Option(_one_of(FITS), ", ".join(FITS[:-1]) + " or " + FITS[-1]),
    "g": Option(_one_of(GRAVITIES), "gravity: " + ", ".join(GRAVITIES[:-1]) + " or " + GRAVITIES[-1]),
    "fx": Option(_decimal_in(0, 1, 4), "focal point x, 0..1 (with --g focal)"),
    "fy": Option(_decimal_in(0, 1, 4), "focal point y, 0..1 (with --g focal)"),
    "crop": Option(_crop, "region x,y,w,h of the master taken before resizing"),
    "q": Option(_quality, "quality 1..100, or auto: the quality that reaches the SSIMULACRA2 target"),
    "max_bytes": Option(
        _int_in(MIN_BYTES, MAX_BYTES), f"largest body in bytes, {MIN_BYTES}..{MAX_BYTES}: the best quality that fits"
    ),
    "fm": Option(_one_of(FORMATS), ", ".join(FORMATS[:-1]) + " or " + FORMATS[-1]),
    "ch": Option(_hints, "client hints that may refine it: dpr, width, save-data (comma-separated)"),
    "v": Option(_hex_version, "the master's version hash"),
    "exp": Option(_int_in(0, 10**12 - 1), "unix time after which the URL is refused"),
    "kid": Option(_key_id, "id of the signing key (default: the first key)"),
}


def parse_options(values: dict[str, str]) -> RenditionOptions:
    """Options from raw (name, text) pairs, each through its parser, then `validate`d."""
    parsed = {name: OPTIONS[name].parse(name, raw) for name, raw in values.items()}
    return validate(RenditionOptions(**parsed))  # type: ignore[arg-type]


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


def shape_key(opts: RenditionOptions) -> str:
    """The canonical rendering part of options: equal keys mean the same pixels (before `fm=auto`
    is negotiated). Closed world compares requests to declared renditions by it."""
    return canonical_query(validate(opts), rendering_only=True)
