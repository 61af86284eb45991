"""One exception type for every failure a client can be told about (RFC 9457 problem details).

Any layer raises `Problem`; the app turns it into `application/problem+json` with `no-store`.
Anything else that escapes is a bug: the app logs it and answers a bare 500 without a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


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

    def body(self, instance: str | None = None) -> dict[str, object]:
        doc: dict[str, object] = {
            "type": "about:blank",
            "title": TITLES.get(self.status, "Error"),
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            doc["instance"] = instance
        doc.update(self.extra)
        return doc


def bad_option(name: str, expected: str, got: str) -> Problem:
    """400 naming the option and what it accepts: `w must be an integer 1..8192, got 'abc'`."""
    return Problem(400, f"{name} must be {expected}, got {got!r}", {"option": name})
