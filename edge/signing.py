"""URL signatures: HMAC-SHA256 over the canonical URL, truncated to 16 bytes, unpadded base64url.

Several keys can be configured as `id:secret` pairs for rotation; the first one signs, and a URL
names its key with `kid` (no `kid` means the first key). URLs made by `Signer.sign_url` always carry
`kid`, so they stay valid when a new key is put first during a rotation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from edge.urls import canonical_path, canonical_url, parse_query, raw_canonical_url, signature_of
from origin.core.errors import Problem
from origin.core.memo import Memo
from origin.core.request import RenditionOptions, canonical_query

MAC_BYTES = 16


@dataclass(frozen=True)
class SigningKey:
    kid: str
    secret: bytes


def parse_keys(spec: str) -> list[SigningKey]:
    """`id1:secret1,id2:secret2` → keys, first one signs. Raises ValueError with a readable message."""
    keys: list[SigningKey] = []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        kid, sep, secret = item.partition(":")
        if not sep or not kid or not secret:
            raise ValueError(f"signing key {item[:8]!r}... must look like id:secret")
        if any(k.kid == kid for k in keys):
            raise ValueError(f"signing key id {kid!r} appears twice")
        if len(secret) < 16:
            raise ValueError(f"signing key {kid!r} is too short: use at least 16 characters")
        keys.append(SigningKey(kid, secret.encode()))
    if not keys:
        raise ValueError("no signing keys given")
    return keys


def mac(secret: bytes, message: str) -> str:
    digest = hmac.new(secret, message.encode(), hashlib.sha256).digest()[:MAC_BYTES]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class Signer:
    def __init__(self, keys: list[SigningKey]):
        if not keys:
            raise ValueError("a signer needs at least one key")
        self._keys = {k.kid: k for k in keys}
        self._first = keys[0]

    def sign_url(self, master_path: str, opts: RenditionOptions, route: str = "img") -> str:
        """The full signed URL path and query: `/img/...?...&s=...` (with `kid` set); `route`
        "info" for `/info/...`."""
        opts = replace(opts, kid=opts.kid or self._first.kid)
        key = self._key(opts.kid)
        signature = mac(key.secret, canonical_url(master_path, opts, route))
        query = canonical_query(opts)
        return f"/{route}/{canonical_path(master_path)}?{query}{'&' if query else ''}s={signature}"

    def verify(self, master_path: str, opts: RenditionOptions, signature: str | None, now: float | None = None) -> None:
        """Raise a 403 Problem unless `signature` is valid for these options and not expired."""
        self.check_signature(master_path, opts, signature)
        check_expiry(opts, now)

    def check_signature(
        self, master_path: str, opts: RenditionOptions, signature: str | None, route: str = "img"
    ) -> None:
        """Raise a 403 Problem unless `signature` is valid for these options (expiry aside)."""
        self._check(canonical_url(master_path, opts, route), opts.kid, signature)

    def url_signer(self, base_url: str = "") -> Callable[[str, RenditionOptions], str]:
        """A `sign(path, options)` that returns `{base_url}/img/...?...&s=...` (for markup, warm, sitemaps)."""
        base = base_url.rstrip("/")
        return lambda path, opts: base + self.sign_url(path, opts)

    def verify_unparsed(self, master_path: str, query: str) -> bool:
        """Whether a query whose options failed to parse still carries a valid signature."""
        kid = next((p[4:] for p in query.split("&") if p.startswith("kid=")), None)
        try:
            self._check(raw_canonical_url(master_path, query), kid, signature_of(query))
        except Problem:
            return False
        return True

    def _check(self, signed: str, kid: str | None, signature: str | None) -> None:
        if not signature:
            raise Problem(403, "missing signature: this URL needs an s= parameter from a signer")
        key = self._keys.get(kid) if kid else self._first
        if key is None:
            raise Problem(403, f"unknown signing key id {kid!r}")
        expected = mac(key.secret, signed)
        # Constant-time comparison, so response timing says nothing about how much matched.
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            raise Problem(403, "signature does not match this URL")

    def _key(self, kid: str | None) -> SigningKey:
        if kid is None:
            return self._first
        try:
            return self._keys[kid]
        except KeyError:
            raise ValueError(f"no signing key with id {kid!r}") from None


def check_expiry(opts: RenditionOptions, now: float | None = None) -> None:
    if opts.exp is not None and opts.exp < (time.time() if now is None else now):
        raise Problem(403, f"URL expired at unix time {opts.exp}")


class VerifiedUrls:
    """The options of request URLs already parsed and verified, by (master path, raw query).

    A cache hit is then one dict lookup instead of a parse and an HMAC. Only URLs that parsed and
    whose signature held are kept (so nothing an attacker sends can fill it with refusals), and
    expiry is checked on every use. Bounded: least recently used URLs go first.
    """

    def __init__(self, signer: Signer, required: bool, max_entries: int = 50_000):
        self.signer = signer
        self.required = required
        self._known: Memo[tuple[str, str], RenditionOptions] = Memo(max_entries)

    def options(self, master_path: str, query: str) -> RenditionOptions:
        """The URL's options, or a Problem: 403 for a bad or expired signature (or any unsigned URL
        whose options do not parse), 400 naming the option for a signed URL with a bad one."""
        key = (master_path, query)
        opts = self._known.get(key)
        if opts is None:
            opts = self._verify(master_path, query)
            self._known[key] = opts
        check_expiry(opts)
        return opts

    def _verify(self, master_path: str, query: str) -> RenditionOptions:
        try:
            opts, signature = parse_query(query)
        except Problem:
            # Only a request with a valid signature learns what is wrong with its options.
            if self.required and not self.signer.verify_unparsed(master_path, query):
                raise Problem(403, "signature does not match this URL") from None
            raise
        if self.required:
            self.signer.check_signature(master_path, opts, signature)
        return opts
