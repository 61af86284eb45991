"""Limits that protect the renderer, checked from the master's header before any pixel is decoded."""

from __future__ import annotations

from dataclasses import dataclass

FAIL_ON = ("none", "truncated", "error", "warning")


@dataclass(frozen=True)
class Limits:
    max_master_pixels: int = 50_000_000  # per frame; 413/422 above
    max_master_bytes: int = 64 * 1024 * 1024
    max_frames: int = 200
    max_output_side: int = 8192  # device pixels; larger CSS size x dpr is scaled down to fit
    max_output_pixels: int = 40_000_000
    # libvips' fail_on for decoding masters. "warning" refuses truncated files and corrupt entropy
    # data instead of silently filling the damage with grey (libvips' default is "none").
    fail_on: str = "warning"
    allow_svg: bool = False
