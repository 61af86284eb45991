"""CDN purges: what `edge purge` asks the CDN in front to forget, by the master's tag or path.

Renditions are immutable for a year at the CDN too, so a takedown that stops at the origin's own
tiers leaves every copy out there. Every rendition carries its master's id as a purge tag
(`Surrogate-Key` for Fastly, `Cache-Tag` for Cloudflare; edge.http.images), so one call takes
all of a master's renditions down, whatever their options:

    fastly      POST {api}/service/{service}/purge/{tag}            Fastly-Key: {token}
    cloudflare  POST {api}/client/v4/zones/{service}/purge_cache    {"tags": [tag]}, Bearer {token}
    cloudfront  CreateInvalidation of /img/{path}* on distribution {service} (AWS credentials as
                for S3; CloudFront has no tags, and a path with a wildcard covers every query)

`api_url` replaces the provider's API base (a proxy, or the stub the tests record calls with).
The request is built by a pure function (`purge_request`) and sent by `send_purge`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from urllib.parse import quote

import botocore.session
import httpx
from botocore.exceptions import BotoCoreError, ClientError

from edge.cdn_settings import CdnSettings

API = {"fastly": "https://api.fastly.com", "cloudflare": "https://api.cloudflare.com"}


@dataclass(frozen=True)
class PurgeRequest:
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def purge_request(settings: CdnSettings, tag: str) -> PurgeRequest:
    """The HTTP call that purges every rendition tagged `tag` (Fastly, Cloudflare)."""
    api = (settings.api_url or API[settings.provider]).rstrip("/")
    if settings.provider == "fastly":
        url = f"{api}/service/{quote(settings.service, safe='')}/purge/{quote(tag, safe='')}"
        return PurgeRequest("POST", url, {"Fastly-Key": settings.token, "Accept": "application/json"})
    if settings.provider == "cloudflare":
        url = f"{api}/client/v4/zones/{quote(settings.service, safe='')}/purge_cache"
        headers = {"Authorization": f"Bearer {settings.token}", "Content-Type": "application/json"}
        return PurgeRequest("POST", url, headers, json.dumps({"tags": [tag]}).encode())
    raise ValueError(f"{settings.provider!r} does not purge by tag")


def invalidation_path(master_path: str) -> str:
    """CloudFront's path for every rendition of a master: the URL path, any query (`*`)."""
    return "/img/" + quote(master_path, safe="/") + "*"


def send_purge(settings: CdnSettings, tag: str, master_path: str, aws_region: str = "us-east-1") -> str:
    """Purge at the CDN; a one-line summary, or RuntimeError saying what failed."""
    if settings.provider == "cloudfront":
        return _invalidate(settings, master_path, aws_region)
    request = purge_request(settings, tag)
    try:
        response = httpx.request(
            request.method, request.url, headers=request.headers, content=request.body, timeout=settings.timeout_s
        )
    except httpx.HTTPError as e:
        raise RuntimeError(f"{settings.provider}: not reachable ({type(e).__name__})") from None
    if response.status_code // 100 != 2:
        raise RuntimeError(f"{settings.provider}: {response.status_code} {response.text.strip()[:200]}")
    return f"{settings.provider}: purged tag {tag}"


def _invalidate(settings: CdnSettings, master_path: str, region: str) -> str:
    client = botocore.session.get_session().create_client(
        "cloudfront", region_name=region, endpoint_url=settings.api_url or None
    )
    path = invalidation_path(master_path)
    batch = {"Paths": {"Quantity": 1, "Items": [path]}, "CallerReference": f"edge-purge-{time.time_ns()}"}
    try:
        answer = client.create_invalidation(DistributionId=settings.service, InvalidationBatch=batch)
    except (BotoCoreError, ClientError) as e:
        raise RuntimeError(f"cloudfront: {e}") from None
    return f"cloudfront: invalidation {answer['Invalidation']['Id']} of {path}"
