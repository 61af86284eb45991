"""What the origin knows about a master without decoding it: where it is, its version, its header."""

from __future__ import annotations

from dataclasses import dataclass

from origin.core.formats import FORMATS

VERSION_DIGITS = 16  # hex digits of the version put in URLs (`v=`)


@dataclass(frozen=True)
class MasterHeader:
    """Read from the master's header by origin.imaging.probe, never from its pixels."""

    format: str  # the loader's name: jpeg, png, webp, gif, heif, tiff, svg
    width: int  # as displayed, i.e. after EXIF orientation
    height: int  # of one frame
    bands: int
    has_alpha: bool
    frames: int
    orientation: int = 1
    has_profile: bool = False  # an embedded ICC profile: pixels must be converted to sRGB

    @property
    def animated(self) -> bool:
        """Several frames in a format that animates (a multi-page TIFF or HEIF is not an animation)."""
        row = FORMATS.get(self.format)
        return self.frames > 1 and row is not None and row.animation


@dataclass(frozen=True)
class MasterInfo:
    """What a store's `stat` says, without reading the bytes."""

    path: str  # the master path as it appears in URLs
    size: int
    # Changes whenever the bytes may have changed: the key for cached version hashes.
    identity: str
    # When the bytes last changed (unix seconds), as the store says; None when it does not say.
    # Renditions carry it as Last-Modified.
    modified: float | None = None


@dataclass(frozen=True)
class MasterRecord:
    """A master as the index knows it: where, which version (blake3 of its bytes), and its header."""

    info: MasterInfo
    version: str  # full blake3 hex digest
    header: MasterHeader

    @property
    def path(self) -> str:
        return self.info.path

    @property
    def short_version(self) -> str:
        """The version as URLs carry it (`v=`)."""
        return self.version[:VERSION_DIGITS]
