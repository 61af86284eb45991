"""A rendition: the bytes the pipeline made and the caches keep."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rendition:
    body: bytes
    format: str  # a key of origin.core.formats.FORMATS
    width: int
    height: int
    upscale: str = "none"  # what made missing pixels: none, lanczos, or a model's label (X-Upscale)
