"""[s3] in the configuration, and s3:// URLs: light (no AWS SDK), so reading a configuration
or printing `edge --help` does not load one. The store and the tier are origin.masters.s3.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class S3Settings:
    endpoint_url: str = ""  # empty: AWS; set for MinIO, moto, R2, ...
    region: str = "us-east-1"
    addressing_style: str = "auto"  # "path" for most S3-compatible servers
    connect_timeout_s: float = 3.0
    read_timeout_s: float = 10.0
    max_attempts: int = 3

    def __post_init__(self) -> None:
        if self.connect_timeout_s <= 0 or self.read_timeout_s <= 0 or self.max_attempts < 1:
            raise ValueError("connect_timeout_s and read_timeout_s must be more than 0, max_attempts 1 or more")


def split_s3_url(url: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` -> ("bucket", "some/prefix/")."""
    if not url.startswith("s3://"):
        raise ValueError(f"not an s3:// URL: {url!r}")
    bucket, _, prefix = url[5:].partition("/")
    if not bucket:
        raise ValueError(f"no bucket in {url!r}")
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/" if prefix else ""
