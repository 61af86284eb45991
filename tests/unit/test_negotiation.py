"""Accept negotiation and HTTP validators."""

from __future__ import annotations

import pytest

from edge.headers import if_none_match
from edge.negotiation import accept_bucket, negotiate_format, parse_accept

CHROME = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
SAFARI_OLD = "image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5"


@pytest.mark.parametrize(
    "accept, alpha, animated, expected",
    [
        (CHROME, False, False, "avif"),
        (SAFARI_OLD, False, False, "webp"),
        ("*/*", False, False, "jpeg"),
        ("image/*", False, False, "jpeg"),
        (None, False, False, "jpeg"),
        ("image/avif;q=0,image/webp", False, False, "webp"),
        ("image/avif;q=0.0, image/webp;q=0", False, False, "jpeg"),
        ("image/AVIF; Q=0.5", False, False, "avif"),
        ("image/avif;q=abc", False, False, "jpeg"),
        (CHROME, True, False, "avif"),
        ("image/webp", True, False, "webp"),
        ("*/*", True, False, "png"),
        (CHROME, False, True, "webp"),
        (CHROME, True, True, "webp"),
        ("*/*", True, True, "gif"),
        ("garbage;;,,/", False, False, "jpeg"),
    ],
)
def test_negotiation(accept, alpha, animated, expected):
    assert negotiate_format(accept, has_alpha=alpha, animated=animated) == expected


def test_preference_order_comes_from_config():
    assert negotiate_format(CHROME, ("webp", "avif", "jpeg")) == "webp"
    assert negotiate_format(CHROME, ("jpeg",)) == "jpeg"


def test_q_values_are_parsed_and_clamped():
    ranges = parse_accept("image/webp;q=2, text/html;level=1;q=0.5, bad")
    assert [(r.subtype, r.q) for r in ranges] == [("webp", 1.0), ("html", 0.5)]


@pytest.mark.parametrize("accept, bucket", [(CHROME, "avif"), (SAFARI_OLD, "webp"), ("*/*", "other")])
def test_accept_bucket(accept, bucket):
    assert accept_bucket(accept) == bucket


@pytest.mark.parametrize(
    "header, matches",
    [
        ('"abc"', True),
        ('W/"abc"', True),
        ('"x", "abc"', True),
        ('"x" ,W/"abc" ', True),
        ("*", True),
        ('"abd"', False),
        ("", False),
        (None, False),
    ],
)
def test_if_none_match_uses_weak_comparison(header, matches):
    assert if_none_match(header, '"abc"') is matches
