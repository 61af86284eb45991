"""[sitemaps] in the configuration."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SitemapsSettings:
    dir: str = "var/sitemaps"  # built sitemaps, served at /sitemaps/
