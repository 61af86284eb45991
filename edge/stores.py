"""Choose the master store from the configuration: a directory, or s3://bucket/prefix."""

from __future__ import annotations

from edge.config import Config
from origin.masters import LocalMasterStore, MasterStore
from origin.s3 import S3MasterStore


def master_store(config: Config) -> MasterStore:
    if config.masters_in_s3:
        return S3MasterStore(config.server.masters, config.s3, config.limits.max_master_bytes)
    return LocalMasterStore(config.masters_dir)
