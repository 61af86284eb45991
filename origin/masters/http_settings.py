"""[http] in the configuration: the allowlist of HTTP(S) masters. Light (no HTTP client), so
reading a configuration does not load one; the store is origin.masters.http.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class HttpSettings:
    allow: tuple[str, ...] = ()  # "https://host[:port]/path/prefix/" entries
    allow_networks: tuple[str, ...] = ()  # e.g. "127.0.0.0/8" for tests; empty: public addresses only
    connect_timeout_s: float = 3.0
    read_timeout_s: float = 10.0
    max_redirects: int = 3

    def __post_init__(self) -> None:
        for entry in self.allow:
            try:
                AllowEntry.parse(entry)
            except ValueError as e:
                raise ValueError(f"allow: {e}") from None
        for network in self.allow_networks:
            try:
                ipaddress.ip_network(network)
            except ValueError:
                raise ValueError(f"allow_networks: {network!r} is not a network like 10.0.0.0/8") from None


@dataclass(frozen=True)
class AllowEntry:
    scheme: str
    host: str
    port: int
    prefix: str

    @classmethod
    def parse(cls, entry: str) -> AllowEntry:
        parts = urlsplit(entry)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"allowlist entry {entry!r} must look like https://host[:port]/prefix/")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return cls(parts.scheme, parts.hostname.lower(), port, parts.path or "/")
