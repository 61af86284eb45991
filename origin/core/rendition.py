"""A rendition: the bytes the pipeline made and the caches keep."""

from __future__ import annotations

from dataclasses import dataclass

NOT_A_MODEL = ("none", "lanczos")  # the `upscale` values no model made


def made_by_model(upscale: str) -> bool:
    """Whether an `upscale` value names a model (its label), not `none` or `lanczos`."""
    return upscale not in NOT_A_MODEL


@dataclass(frozen=True)
class Rendition:
    body: bytes
    format: str  # a key of origin.core.formats.FORMATS
    width: int
    height: int
    upscale: str = "none"  # what made missing pixels: none, lanczos, or a model's label (X-Upscale)
    # A fast encode, served (briefly cacheable) until a better one replaces it (edge.upgrades).
    provisional: bool = False
