"""The master store interface: every store (local disk, S3, HTTP) has these methods.

A store answers `stat(path)` (size and identity without reading the bytes, or None when there is
no such master) and `read(info)` (the bytes). No request can reach outside the store's root.
"""

from __future__ import annotations

from typing import Protocol

from origin.core.master import MasterInfo

__all__ = ["MasterInfo", "MasterStore"]


class MasterStore(Protocol):
    async def stat(self, path: str) -> MasterInfo | None: ...

    async def read(self, info: MasterInfo) -> bytes: ...

    async def ready(self) -> str | None:
        """None when this process can use the store; else why not (/readyz answers 503). Only
        for what is this process's own (a masters directory it cannot read)."""
        ...

    async def health(self) -> str | None:
        """None when a store every replica shares (an S3 bucket) answers; else why not. Reported
        in /readyz's body and `edge_dependency_up`, never as unreadiness: an outage there is the
        whole fleet's, and unready pods would stop serving the renditions their caches hold."""
        ...

    async def close(self) -> None:
        """Release connections (called once, when the server or CLI command ends)."""
        ...
