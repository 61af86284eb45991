"""Masters fetched over HTTP(S), only from an allowlist, never from private networks.

A master path that is an absolute URL (`https://images.example.com/a.jpg`, percent-encoded in
request URLs) is fetched from there when it matches an allowlist entry exactly: scheme, host,
port, and a path prefix. Defences against server-side request forgery:
- the host is resolved here and every address must be public: loopback, private, link-local,
  CGNAT, multicast and reserved ranges are refused (unless a network is explicitly allowed,
  for tests and private deployments);
- the connection goes to the address that was checked (Host header and TLS SNI keep the name),
  so a second DNS answer cannot swap in an internal address (DNS rebinding);
- redirects are followed by hand, each hop checked again, at most `max_redirects`;
- time-outs on connect and read, and the byte limit is enforced while the body streams.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import httpx

from origin.core.dates import parse_http_date
from origin.core.errors import Problem
from origin.masters.http_settings import AllowEntry, HttpSettings
from origin.masters.store import MasterInfo

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]
CGNAT = ipaddress.ip_network("100.64.0.0/10")
# Without an ETag or Last-Modified, a remote master is looked at again after this long.
UNVALIDATED_TTL_S = 300


@dataclass(frozen=True)
class Target:
    """A URL that passed the allowlist: what to connect to and as whom."""

    url: str
    scheme: str
    host: str
    port: int
    path: str


def check_url(url: str, allow: list[AllowEntry]) -> Target:
    """The URL as a Target, or a 403 Problem when no allowlist entry admits it."""
    refused = Problem(403, f"master URL is not on the allowlist: {url[:200]!r}")
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed IPv6 literal: not a URL at all
        raise refused from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        raise refused
    if parts.query or parts.fragment or "\\" in url or "%" in parts.path:
        raise refused  # one spelling per master: no queries, no escapes that could hide '..'
    if any(seg in (".", "..") for seg in parts.path.split("/")):
        raise refused
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise refused from None
    host = parts.hostname.lower()
    for entry in allow:
        if (entry.scheme, entry.host, entry.port) == (parts.scheme, host, port) and parts.path.startswith(entry.prefix):
            return Target(url, parts.scheme, host, port, parts.path)
    raise refused


def is_public(address: IPAddress, allowed: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    if any(address in net for net in allowed):
        return True
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or (isinstance(address, ipaddress.IPv4Address) and address in CGNAT)
    )


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


@dataclass
class HttpMasterStore:
    settings: HttpSettings
    max_bytes: int
    resolver: Resolver = system_resolver
    _allow: list[AllowEntry] = field(init=False)
    _networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = field(init=False)
    _client: httpx.AsyncClient = field(init=False)

    def __post_init__(self) -> None:
        self._allow = [AllowEntry.parse(e) for e in self.settings.allow]
        self._networks = [ipaddress.ip_network(n) for n in self.settings.allow_networks]
        timeout = httpx.Timeout(self.settings.read_timeout_s, connect=self.settings.connect_timeout_s)
        self._client = httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False)

    def handles(self, path: str) -> bool:
        return path.startswith(("https://", "http://"))

    async def _pinned(self, target: Target) -> tuple[str, dict[str, str], dict[str, object]]:
        """URL with the checked address in place of the name, plus Host header and SNI."""
        try:
            addresses = await self.resolver(target.host, target.port)
        except OSError:
            raise Problem(502, f"master host {target.host!r} does not resolve") from None
        parsed = [ipaddress.ip_address(a.split("%")[0]) for a in addresses]
        if not parsed or not all(is_public(a, self._networks) for a in parsed):
            raise Problem(403, f"master host {target.host!r} resolves to a non-public address")
        ip = parsed[0]
        literal = f"[{ip}]" if ip.version == 6 else str(ip)
        default = 443 if target.scheme == "https" else 80
        host_header = target.host if target.port == default else f"{target.host}:{target.port}"
        url = f"{target.scheme}://{literal}:{target.port}{target.path}"
        return url, {"Host": host_header}, {"sni_hostname": target.host}

    async def _request(self, method: str, url: str) -> httpx.Response:
        """Send with redirects followed by hand, each hop checked; the caller closes the response."""
        for _hop in range(self.settings.max_redirects + 1):
            target = check_url(url, self._allow)
            pinned, headers, extensions = await self._pinned(target)
            request = self._client.build_request(method, pinned, headers=headers, extensions=extensions)
            try:
                response = await self._client.send(request, stream=True)
            except httpx.TimeoutException:
                raise Problem(504, "master host timed out") from None
            except httpx.HTTPError:
                raise Problem(502, "master host could not be reached") from None
            if response.status_code in (301, 302, 303, 307, 308) and "location" in response.headers:
                await response.aclose()
                try:
                    url = urljoin(url, response.headers["location"])
                except ValueError:
                    raise Problem(502, "master host redirected to a malformed URL") from None
                continue
            return response
        raise Problem(502, f"master URL redirected more than {self.settings.max_redirects} times")

    async def stat(self, path: str) -> MasterInfo | None:
        response = await self._request("HEAD", path)
        await response.aclose()
        if response.status_code in (404, 410):
            return None
        if response.status_code != 200:
            raise Problem(502, f"master host answered {response.status_code}")
        validator = response.headers.get("etag") or response.headers.get("last-modified")
        identity = validator or f"unvalidated-{int(time.time() // UNVALIDATED_TTL_S)}"
        size = int(response.headers.get("content-length", 0))
        return MasterInfo(path, size, identity, parse_http_date(response.headers.get("last-modified")))

    async def read(self, info: MasterInfo) -> bytes:
        response = await self._request("GET", info.path)
        try:
            if response.status_code != 200:
                raise Problem(502, f"master host answered {response.status_code}")
            if int(response.headers.get("content-length", 0)) > self.max_bytes:
                raise Problem(413, f"master is over the limit of {self.max_bytes} bytes")
            chunks, total = [], 0
            async for chunk in response.aiter_bytes():
                total += len(chunk)
                if total > self.max_bytes:
                    raise Problem(413, f"master is over the limit of {self.max_bytes} bytes")
                chunks.append(chunk)
        except httpx.TimeoutException:
            raise Problem(504, "master host timed out while sending the master") from None
        except httpx.HTTPError:
            raise Problem(502, "master host dropped the connection") from None
        finally:
            await response.aclose()
        data = b"".join(chunks)
        # Without Content-Length or chunked framing the body ends when the connection does, so a
        # dropped connection looks like a whole, shorter master: hold it to the size HEAD announced.
        chunked = "chunked" in response.headers.get("transfer-encoding", "").lower()
        if not chunked and "content-length" not in response.headers and info.size and len(data) != info.size:
            raise Problem(502, f"master host sent {len(data)} bytes, not the {info.size} it announced")
        return data

    async def ready(self) -> str | None:
        return None  # remote hosts come and go per master; they are not this replica's readiness

    async def health(self) -> str | None:
        return None  # per master, not one dependency

    async def close(self) -> None:
        await self._client.aclose()
