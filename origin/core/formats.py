"""Every output format, once: one frozen row each (after imgproxy's `imagetype/defs.go`).

Negotiation, response headers, the planner, the encoder, srcset, the rules loader, warm and the
nginx config all read these rows; nothing else spells a format's MIME type, capabilities, default
quality or encoder options. Adding a format is a row in FORMATS (plus, when it has settings of its
own, a field in EncodeSettings and a quality in FormatSettings, both below).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace


@dataclass(frozen=True)
class EncodeSettings:
    """Encoder settings ([encode] in the configuration). Any change moves every rendition key.

    Chosen by bytes and CPU-ms at equal SSIMULACRA2 on the corpus photos (benchmarks/encoders.py;
    the tables are in benchmarks/RESULTS.md).
    """

    # AVIF: effort dominates render time (libheif's aom; its default tune, "iq", beats ssim and psnr).
    # What a request waits for is provisional (the upgrade below replaces it), so it is the
    # cheapest: effort 0 at 10 bits costs 36 % of effort 1's CPU for 20 % more bytes at equal
    # SSIMULACRA2 75; it cut a srcset burst's CPU per rendition from 113 to 63 ms. 10 bits: effort
    # 1's bytes 1.01x effort 2's at 8 bits for 74 % of its CPU, and the upgrade's fewest bytes.
    avif_effort: int = 0
    avif_bitdepth: int = 10
    # WebP effort 2: 4.7 % more bytes than effort 4 at equal SSIMULACRA2 for 43 % of its CPU.
    webp_effort: int = 2
    # JPEG: baseline with optimised Huffman tables and quantisation table 3 (ImageMagick's, by N.
    # Robidoux): 3.5 % fewer bytes than progressive + trellis + deringing at SSIMULACRA2 75 (7 % at
    # 82) for a fifth of its CPU; progressive coding adds 70 % to the encode for no bytes.
    jpeg_trellis: bool = False
    jpeg_progressive: bool = False
    jpeg_quant_table: int = 3
    # Chroma for JPEG and AVIF: "auto" halves it below quality 90 (libvips' rule), "on" always
    # halves it (4:2:0), "off" never (4:4:4: 13-20 % more JPEG bytes at equal SSIMULACRA2, the
    # same AVIF bytes). q=auto picks per image; this is what fixed qualities get.
    subsample: str = "auto"
    # WebP's sharper RGB->YUV conversion: the same bytes at equal SSIMULACRA2 for 1.5x the CPU.
    webp_smart_subsample: bool = False
    png_compression: int = 6
    # Upgrades: the effort of a second, better encode, made while the server is idle and swapped
    # into the cache (edge.upgrades); until then the fast encode above is served as provisional.
    # No higher than the effort above: none. At equal SSIMULACRA2 75, against the fast encode:
    # AVIF effort 3 14 % fewer bytes than effort 1 for 3.3x its CPU (29 % fewer than effort 0;
    # effort 4: 21 % fewer than effort 1 for 13x); WebP effort 6
    # 7.4 % for 4x (effort 5 6.6 % for 2.4x, effort 4 4 % for 2x). Paid once per rendition, while
    # idle; the bytes are saved on every delivery.
    avif_upgrade_effort: int = 3
    webp_upgrade_effort: int = 6
    upgrades: bool = True  # false: every rendition is made once, final (no provisional ones)

    def __post_init__(self) -> None:
        checks = (
            ("avif_effort", 0, 9),
            ("webp_effort", 0, 6),
            ("avif_upgrade_effort", 0, 9),
            ("webp_upgrade_effort", 0, 6),
            ("jpeg_quant_table", 0, 8),
            ("png_compression", 0, 9),
        )
        for name, lo, hi in checks:
            if not lo <= getattr(self, name) <= hi:
                raise ValueError(f"{name} must be {lo}..{hi}, got {getattr(self, name)}")
        if self.subsample not in ("auto", "on", "off"):
            raise ValueError(f"subsample must be auto, on or off, got {self.subsample!r}")
        if self.avif_bitdepth not in (8, 10):
            raise ValueError(f"avif_bitdepth must be 8 or 10, got {self.avif_bitdepth}")

    def upgraded(self, fmt: str) -> EncodeSettings | None:
        """The settings of `fmt`'s better encode, or None when it has none."""
        effort = UPGRADES.get(fmt)
        if not self.upgrades or effort is None or getattr(self, effort[1]) <= getattr(self, effort[0]):
            return None
        return replace(self, **{effort[0]: getattr(self, effort[1])})

    def fingerprint(self) -> str:
        """Changes whenever the bytes an encoder writes may change: part of every rendition key."""
        return ",".join(f"{f.name}={getattr(self, f.name)}" for f in fields(self))


# Per format: the effort field its encoder reads, and the field naming its upgrade's effort.
UPGRADES = {"avif": ("avif_effort", "avif_upgrade_effort"), "webp": ("webp_effort", "webp_upgrade_effort")}

SaverOptions = Callable[[int, EncodeSettings], dict[str, object]]


@dataclass(frozen=True)
class Format:
    name: str  # as written in `fm=` and in rules
    mime: str
    alpha: bool  # keeps transparency
    animation: bool  # keeps every frame of an animation
    lossy: bool  # takes a quality; only lossy formats may be negotiated for photos
    # A client gets it only when its Accept names it with q > 0: `*/*` proves nothing about a
    # modern codec. The other formats are what every client shows: the fallbacks.
    named: bool
    default_quality: int  # when neither the URL, the rule nor the configuration gives one
    saver: str  # the libvips saver, called as `image.{saver}_buffer(**options(quality, settings))`
    options: SaverOptions


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format(
            "avif", "image/avif", alpha=True, animation=False, lossy=True, named=True, default_quality=50,
            saver="heifsave",
            options=lambda q, s: {
                "Q": q,
                "compression": "av1",
                "effort": s.avif_effort,
                "bitdepth": s.avif_bitdepth,
                "subsample_mode": s.subsample,
            },
        ),
        Format(
            "webp", "image/webp", alpha=True, animation=True, lossy=True, named=True, default_quality=80,
            saver="webpsave",
            options=lambda q, s: {"Q": q, "effort": s.webp_effort, "smart_subsample": s.webp_smart_subsample},
        ),
        Format(
            "jpeg", "image/jpeg", alpha=False, animation=False, lossy=True, named=False, default_quality=80,
            saver="jpegsave",
            options=lambda q, s: {
                "Q": q,
                "optimize_coding": True,
                "interlace": s.jpeg_progressive,
                "trellis_quant": s.jpeg_trellis,
                "overshoot_deringing": s.jpeg_trellis,
                "quant_table": s.jpeg_quant_table,
                "subsample_mode": s.subsample,
            },
        ),
        Format(
            "png", "image/png", alpha=True, animation=False, lossy=False, named=False, default_quality=100,
            saver="pngsave", options=lambda q, s: {"compression": s.png_compression},
        ),
        Format(
            "gif", "image/gif", alpha=True, animation=True, lossy=False, named=False, default_quality=100,
            saver="gifsave", options=lambda q, s: {},
        ),
    )
}  # fmt: skip
NAMES = tuple(FORMATS)
NAMED = tuple(f.name for f in FORMATS.values() if f.named)  # most capable first
FALLBACKS = tuple(f.name for f in FORMATS.values() if not f.named)


def fallback(*, alpha: bool = False, animated: bool = False) -> str:
    """The format every client shows that keeps what the master has: JPEG, PNG for alpha, GIF to move."""
    return next(
        f.name for f in FORMATS.values() if not f.named and (f.alpha or not alpha) and (f.animation or not animated)
    )


def keeps(fmt: str, *, alpha: bool = False, animated: bool = False) -> bool:
    """Whether `fmt` keeps a master's alpha and animation."""
    row = FORMATS[fmt]
    return (row.alpha or not alpha) and (row.animation or not animated)


# The Accept headers a cache in front should send for each class of client: the origin's answer
# depends only on which named formats a client takes, in this order ("other": none of them).
ACCEPT_BUCKETS: dict[str, str] = {
    **{name: ",".join([*(f"image/{n}" for n in NAMED[i:]), "*/*"]) for i, name in enumerate(NAMED)},
    "other": "*/*",
}


# At dpr >= 2 a device pixel is half a CSS pixel or less: artefacts shrink with it, and the same
# look takes a lower quality (defaults below; `[formats] *_quality_2x`, `auto_target_2x`).
HIGH_DPR = 2.0


@dataclass(frozen=True)
class QualityChoice:
    """The quality an encode uses: fixed, or searched for a SSIMULACRA2 target (q=auto)."""

    quality: int  # the fixed quality; with a target, the highest the search may choose
    target: float | None = None


@dataclass(frozen=True)
class FormatSettings:
    """Negotiation order and default qualities ([formats] in the configuration)."""

    preference: tuple[str, ...] = ("avif", "webp", "jpeg")
    avif_quality: int = FORMATS["avif"].default_quality
    webp_quality: int = FORMATS["webp"].default_quality
    jpeg_quality: int = FORMATS["jpeg"].default_quality
    # The same at dpr >= 2 (URLs with dpr=2 or more and no q).
    avif_quality_2x: int = 40
    webp_quality_2x: int = 65
    jpeg_quality_2x: int = 65
    # auto_quality: URLs without q get q=auto, the quality that reaches auto_target (SSIMULACRA2:
    # 90 visually lossless, 70 high quality, 50 medium), auto_target_2x at dpr >= 2.
    auto_quality: bool = False
    auto_target: float = 72.0
    auto_target_2x: float = 65.0

    def __post_init__(self) -> None:
        lossy = [f.name for f in FORMATS.values() if f.lossy]
        if not self.preference or any(f not in lossy for f in self.preference):
            raise ValueError(f"preference must list {', '.join(lossy)} (some or all), got {list(self.preference)}")
        for fmt in lossy:
            for suffix in ("", "_2x"):
                q = getattr(self, f"{fmt}_quality{suffix}")
                if not 1 <= q <= 100:
                    raise ValueError(f"{fmt}_quality{suffix} must be 1..100, got {q}")
        for name in ("auto_target", "auto_target_2x"):
            if not 10 <= getattr(self, name) <= 95:
                raise ValueError(f"{name} must be 10..95 (SSIMULACRA2), got {getattr(self, name)}")

    def quality(self, fmt: str, dpr: float = 1.0) -> int:
        if not FORMATS[fmt].lossy:
            return FORMATS[fmt].default_quality
        return int(getattr(self, f"{fmt}_quality{'_2x' if dpr >= HIGH_DPR else ''}"))

    def choose(self, fmt: str, asked: int | str | None, dpr: float = 1.0) -> QualityChoice:
        """What an encode of `fmt` uses for a URL's `q` (a number, "auto", or none) at `dpr`.
        Lossless formats ignore it."""
        if isinstance(asked, int) and FORMATS[fmt].lossy:
            return QualityChoice(asked)
        if FORMATS[fmt].lossy and (asked == "auto" or (asked is None and self.auto_quality)):
            return QualityChoice(100, self.auto_target_2x if dpr >= HIGH_DPR else self.auto_target)
        return QualityChoice(self.quality(fmt, dpr))

    def fingerprint(self) -> str:
        """Every setting here that changes the bytes of some rendition (rendition keys name it)."""
        return repr(sorted((f.name, getattr(self, f.name)) for f in fields(self) if f.name != "preference"))
