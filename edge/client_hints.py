"""Client hints, opt-in: `Sec-CH-DPR`, `Sec-CH-Width` and `Save-Data` refine URLs that ask for it.

Off by default (`[client_hints] enabled = false`): then nothing here runs, no response names a
hint in `Vary`, and no CDN cache splits. On, every response carries `Accept-CH`, and a URL that
lists hints in `ch` (`ch=dpr,width,save-data`, signed like every option) is refined by them:

- `dpr`: `Sec-CH-DPR` replaces the URL's `dpr` (rounded to `dpr_step`, 1..`max_dpr`).
- `width`: `Sec-CH-Width`, the layout width in device pixels (browsers send it for an `<img>`
  with `sizes`), sets the device width, rounded up to a multiple of `width_step` and at most
  `max_width` (then `w` is that over the dpr, rounded up: never a pixel short); `h` follows to keep
  the URL's aspect ratio. URLs with `h` and
  no `w` keep their size (the height decides it).
- `save-data`: `Save-Data: on` takes the `save_data_*_quality` of the format (when the URL names
  no `q`), and device pixels at dpr 1.

Why a URL must opt in, rather than every negotiated URL being refined: a `w`-descriptor srcset
candidate was already chosen by the browser for its DPR and layout, so multiplying it again by
`Sec-CH-DPR` would send four times the pixels. Hints are for a plain `<img src>` (one URL for
every screen). Rounding keeps the set of renditions small: a hinted request is served from the
cache entry of the explicit URL it becomes (the `ch` option is not in rendition keys). Under
closed world hints are not applied (the refined sizes are renditions no rule declares).
Pure: the caller passes the request's headers and gets options and the `Vary` names back.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from origin.core.formats import FORMATS
from origin.core.request import RenditionOptions

# The request header of each hint a URL may name in `ch`, as `Vary` spells it.
HEADERS = {"dpr": "Sec-CH-DPR", "width": "Sec-CH-Width", "save-data": "Save-Data"}
# What `Accept-CH` asks browsers for (Save-Data is sent without being asked).
ACCEPT_CH = "Sec-CH-DPR, Sec-CH-Width"
_DECIMAL = re.compile(r"[0-9]{1,3}(\.[0-9]{1,6})?")


@dataclass(frozen=True)
class ClientHintsSettings:
    """[client_hints]: whether hints refine URLs that list them in `ch`, and how far."""

    enabled: bool = False
    max_dpr: float = 3.0
    dpr_step: float = 0.5  # Sec-CH-DPR is rounded to a multiple of this
    width_step: int = 100  # Sec-CH-Width is rounded up to a multiple of this (device pixels)
    max_width: int = 4096  # device pixels a width hint may ask for
    save_data_avif_quality: int = 30
    save_data_webp_quality: int = 50
    save_data_jpeg_quality: int = 50

    def __post_init__(self) -> None:
        checks = [
            (1 <= self.max_dpr <= 4, f"max_dpr must be 1..4, got {self.max_dpr}"),
            (0 < self.dpr_step <= 1, f"dpr_step must be more than 0 and at most 1, got {self.dpr_step}"),
            (1 <= self.width_step <= 1000, f"width_step must be 1..1000, got {self.width_step}"),
            (16 <= self.max_width <= 8192, f"max_width must be 16..8192, got {self.max_width}"),
        ]
        for fmt in ("avif", "webp", "jpeg"):
            q = getattr(self, f"save_data_{fmt}_quality")
            checks.append((1 <= q <= 100, f"save_data_{fmt}_quality must be 1..100, got {q}"))
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    def save_data_quality(self, fmt: str) -> int | None:
        """The Save-Data quality of a lossy format; None for a lossless one."""
        return getattr(self, f"save_data_{fmt}_quality", None) if FORMATS[fmt].lossy else None


@dataclass(frozen=True)
class Hints:
    """The hints a request sent, parsed; None for each one absent or malformed."""

    dpr: float | None = None
    width: int | None = None
    save_data: bool = False


def parse_hints(headers: Iterable[tuple[bytes, bytes]]) -> Hints:
    """Hints from ASGI headers (lower-case names); malformed values count as absent."""
    dpr = width = None
    save_data = False
    for name, value in headers:
        if name == b"sec-ch-dpr" and dpr is None:
            text = value.decode("latin-1").strip()
            if _DECIMAL.fullmatch(text) and float(text) > 0:
                dpr = float(text)
        elif name == b"sec-ch-width" and width is None:
            text = value.decode("latin-1").strip()
            if text.isdigit() and 0 < int(text) <= 100_000:
                width = int(text)
        elif name == b"save-data":
            save_data = save_data or value.decode("latin-1").strip().lower() == "on"
    return Hints(dpr, width, save_data)


def vary_names(opts: RenditionOptions) -> tuple[str, ...]:
    """The request headers a response to these options varies on besides Accept (hints on)."""
    return tuple(HEADERS[name] for name in (opts.ch or "").split(",") if name)


def refine(opts: RenditionOptions, hints: Hints, fmt: str, settings: ClientHintsSettings) -> RenditionOptions:
    """The explicit options a hinted request stands for (hints on); `ch` is dropped."""
    asked = set((opts.ch or "").split(","))
    save_data = "save-data" in asked and hints.save_data
    dpr = opts.dpr
    if "dpr" in asked and hints.dpr is not None:
        dpr = 1.0 if save_data else _snap_dpr(hints.dpr, settings)
    elif save_data:
        dpr = 1.0
    w, h = opts.w, opts.h
    if "width" in asked and hints.width is not None and not (h is not None and w is None):
        device = hints.width if not save_data or not hints.dpr else hints.width / max(hints.dpr, 1.0)
        device = min(settings.max_width, settings.width_step * math.ceil(device / settings.width_step))
        new_w = max(1, math.ceil(device / dpr))
        h = None if h is None or w is None else max(1, round(h * new_w / w))
        w = new_w
    q = opts.q
    if save_data and q is None:
        q = settings.save_data_quality(fmt)
    return replace(opts, w=w, h=h, dpr=dpr, q=q, ch=None)


def _snap_dpr(dpr: float, settings: ClientHintsSettings) -> float:
    snapped = round(dpr / settings.dpr_step) * settings.dpr_step
    return round(min(max(snapped, 1.0), settings.max_dpr), 2)
