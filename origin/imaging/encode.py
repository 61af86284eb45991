"""Encode a finished image with its format's libvips saver and options (origin.core.formats)."""

from __future__ import annotations

import pyvips

from origin.core.formats import FORMATS, EncodeSettings


def encode(image: pyvips.Image, fmt: str, quality: int, settings: EncodeSettings, keep: str = "none") -> bytes:
    """`image` as `fmt` bytes; `keep` names the metadata blocks to write (see origin.imaging.metadata)."""
    row = FORMATS[fmt]
    save = getattr(image, f"{row.saver}_buffer")
    data: bytes = save(**row.options(quality, settings), keep=keep)
    return data
