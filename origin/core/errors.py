"""The two exceptions every layer may raise.

    Problem(status, detail, extra, headers)  a failure a client can be told about (RFC 9457 problem
                                             details); edge renders it as application/problem+json
                                             with no-store. `extra` adds members (`option`, `rule`);
                                             `headers` adds response headers (`Retry-After`).
    OverBudget(Problem)                      the 504 of a render past its time budget (remembered
                                             by edge.renditions, unlike a slow store's 504).
    Cancelled                                a render stopped from outside: its time budget ran out.

Anything else that escapes to the edge is a bug: it is logged, and the client gets a bare 500.
The statuses a Problem takes (README "Errors"), and who raises them:

    400  malformed option or parameter (origin.core.request, edge.urls, edge.http), crop outside
         the master (origin.core.limits)
    403  missing, bad or expired signature (edge.signing), closed world (edge.http.images),
         master URL not on the allowlist or not public (origin.masters.http)
    401  markup endpoints without their token, admin without its token (edge.http)
    404  no such master (origin.masters.index), rule or a rule that does not cover the master
         (rules.model), route or sitemap (edge.http)
    413  master over limits.max_master_bytes (origin.masters.index, .s3, .http)
    415  master not decodable, damaged, or SVG while disabled (origin.imaging.probe, origin.pipeline)
    412  If-Match / If-Unmodified-Since failed (edge.http.images, edge.http.sitemaps)
    416  Range wholly past the end (edge.http.images)
    422  master over the pixel or frame limits (origin.imaging.probe), dearer to open than the
         limits allow (origin.imaging.preflight), output over the pixel limit
         (origin.core.limits), a rendition that cannot be encoded (origin.pipeline)
    502  the master store failed (origin.masters.*)
    503  render queue or memory budget full (origin.pool), master replaced during the request
         (origin.render, origin.masters.*), a probe over its time (origin.masters.index): always
         with Retry-After
    504  master store timed out (origin.masters.*), render over its budget (origin.pool)
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Problem(Exception):
    status: int
    detail: str
    # Extra members of the problem object (e.g. the offending option's name).
    extra: dict[str, object] = field(default_factory=dict)
    # Response headers that belong to this problem, e.g. Retry-After on 503.
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} {self.detail}"


def bad_option(name: str, expected: str, got: str) -> Problem:
    """400 naming the option and what it accepts: `w must be an integer 1..8192, got 'abc'`."""
    return Problem(400, f"{name} must be {expected}, got {got!r}", {"option": name})


def retry_soon(detail: str, seconds: int = 1) -> Problem:
    """503 with Retry-After: the request may succeed if it is made again shortly."""
    return Problem(503, detail, headers={"Retry-After": str(seconds)})


class OverBudget(Problem):
    """504: a render ran past its time budget (not a slow store: that is a plain 504)."""


class Cancelled(Exception):
    """The render (or the model run inside it) was stopped from outside: its time budget ran out."""
