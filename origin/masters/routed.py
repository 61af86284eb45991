"""Absolute http(s) URLs to the HTTP store, every other master path to the primary store."""

from __future__ import annotations

from origin.masters.http import HttpMasterStore
from origin.masters.store import MasterInfo, MasterStore


class RoutedStore:
    """Absolute http(s) URLs to the HTTP store, every other path to the primary store."""

    def __init__(self, primary: MasterStore, remote: HttpMasterStore):
        self.primary = primary
        self.remote = remote

    def _for(self, path: str) -> MasterStore:
        return self.remote if self.remote.handles(path) else self.primary

    async def stat(self, path: str) -> MasterInfo | None:
        return await self._for(path).stat(path)

    async def read(self, info: MasterInfo) -> bytes:
        return await self._for(info.path).read(info)

    async def ready(self) -> str | None:
        return await self.primary.ready()

    async def health(self) -> str | None:
        return await self.primary.health()

    async def close(self) -> None:
        await self.primary.close()
        await self.remote.close()
