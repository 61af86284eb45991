"""[cdn] in the configuration: the CDN `edge purge` purges too. Light (no AWS SDK, no HTTP
client), so reading a configuration does not load them; the purges are edge.cdn.
"""

from __future__ import annotations

from dataclasses import dataclass

PROVIDERS = ("", "fastly", "cloudflare", "cloudfront")


@dataclass(frozen=True)
class CdnSettings:
    """[cdn]: the CDN `edge purge` purges too (none by default: it prints the tag instead)."""

    provider: str = ""  # fastly | cloudflare | cloudfront
    service: str = ""  # Fastly service id, Cloudflare zone id, CloudFront distribution id
    token: str = ""  # Fastly API token or Cloudflare API token (CloudFront: AWS credentials)
    api_url: str = ""  # instead of the provider's API (a proxy; the tests' stub)
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if self.provider not in PROVIDERS:
            raise ValueError(f"provider must be one of {', '.join(p for p in PROVIDERS if p)}, got {self.provider!r}")
        if self.provider and not self.service:
            raise ValueError(f"service must name the {self.provider} service, zone or distribution to purge")
        if self.provider in ("fastly", "cloudflare") and not self.token:
            raise ValueError(f"token must be set for {self.provider}")
