"""Who made a rendition: the name and version written into its provenance metadata."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("edge-image-cdn")
except PackageNotFoundError:  # run from a checkout that was never installed
    VERSION = "0+unknown"
SOFTWARE = f"edge-image-cdn/{VERSION}"
