"""Choose the master store from the configuration: a directory or s3://bucket/prefix, plus
allowlisted http(s) URLs when `http.allow` names any."""

from __future__ import annotations

import asyncio

from edge.config import Config
from origin.http_masters import HttpMasterStore, RoutedStore
from origin.masters import LocalMasterStore, MasterStore
from origin.s3 import S3MasterStore
from origin.versions import MasterIndex, MasterRecord


def master_store(config: Config) -> MasterStore:
    primary: MasterStore
    if config.masters_in_s3:
        primary = S3MasterStore(config.server.masters, config.s3, config.limits.max_master_bytes)
    else:
        primary = LocalMasterStore(config.masters_dir)
    if config.http.allow:  # absolute URLs as master paths, from the allowlist only
        return RoutedStore(primary, HttpMasterStore(config.http, config.limits.max_master_bytes))
    return primary


async def close_store(store: MasterStore) -> None:
    close = getattr(store, "close", None)
    if close is not None:
        await close()


def lookup_master(config: Config, path: str) -> MasterRecord:
    """One master's record through the configured store (for CLI commands; raises Problem)."""

    async def lookup() -> MasterRecord:
        store = master_store(config)
        try:
            return await MasterIndex(store, config.limits).lookup(path)
        finally:
            await close_store(store)

    return asyncio.run(lookup())
