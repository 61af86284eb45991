"""Conditional and range requests (RFC 9110 13-14) as pure functions: table tests."""

from __future__ import annotations

import pytest

from edge.conditional import NONE, UNSATISFIABLE, ByteRange, Conditions, byte_range, conditions_of, precondition
from origin.core.dates import http_date, parse_http_date

ETAG = '"k1"'
T = 1_700_000_000  # the representation's Last-Modified
BEFORE, AT, AFTER = http_date(T - 60), http_date(T), http_date(T + 60)


def test_http_dates_round_trip_and_garbage_is_no_date():
    assert http_date(T) == "Tue, 14 Nov 2023 22:13:20 GMT"
    assert parse_http_date(http_date(T + 0.9)) == T
    assert parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT") == 784111777  # the obsolete RFC 850 form
    for garbage in ("", None, "yesterday", "Tue, 99 Nov 2023 99:99:99 GMT"):
        assert parse_http_date(garbage) is None


@pytest.mark.parametrize(
    ("conditions", "verdict"),
    [
        (Conditions(), None),
        (Conditions(if_match=ETAG), None),
        (Conditions(if_match='"other", "k1"'), None),
        (Conditions(if_match="*"), None),
        (Conditions(if_match='"other"'), 412),
        (Conditions(if_match=f"W/{ETAG}"), 412),  # If-Match compares strongly
        (Conditions(if_unmodified_since=AT), None),
        (Conditions(if_unmodified_since=BEFORE), 412),
        (Conditions(if_match=ETAG, if_unmodified_since=BEFORE), None),  # If-Match wins
        (Conditions(if_unmodified_since="not a date"), None),
        (Conditions(if_none_match=ETAG), 304),
        (Conditions(if_none_match=f"W/{ETAG}"), 304),  # If-None-Match compares weakly
        (Conditions(if_none_match='"other"', if_modified_since=AFTER), None),  # INM wins over IMS
        (Conditions(if_modified_since=AT), 304),
        (Conditions(if_modified_since=AFTER), 304),
        (Conditions(if_modified_since=BEFORE), None),
        (Conditions(if_match='"other"', if_none_match=ETAG), 412),  # 412 before 304
    ],
)
def test_preconditions_in_rfc_9110_order(conditions: Conditions, verdict: int | None):
    assert precondition(conditions, ETAG, T) == verdict


def test_dates_are_ignored_when_the_modification_time_is_unknown():
    assert precondition(Conditions(if_modified_since=AFTER, if_unmodified_since=BEFORE), ETAG, None) is None


@pytest.mark.parametrize(
    ("conditions", "answer"),
    [
        (Conditions(), None),
        (Conditions(range="bytes=0-99"), ByteRange(0, 99)),
        (Conditions(range="bytes=990-2000"), ByteRange(990, 999)),
        (Conditions(range="bytes=500-"), ByteRange(500, 999)),
        (Conditions(range="bytes=-100"), ByteRange(900, 999)),
        (Conditions(range="bytes=-5000"), ByteRange(0, 999)),
        (Conditions(range="bytes=1000-"), UNSATISFIABLE),
        (Conditions(range="bytes=-0"), UNSATISFIABLE),
        (Conditions(range="bytes=0-9,20-29"), None),  # several ranges: the whole body
        (Conditions(range="bytes=9-0"), None),  # invalid: ignored
        (Conditions(range="items=0-9"), None),
        (Conditions(range="bytes=0-9", if_range=ETAG), ByteRange(0, 9)),
        (Conditions(range="bytes=0-9", if_range='"old"'), None),
        (Conditions(range="bytes=0-9", if_range=f"W/{ETAG}"), None),
        (Conditions(range="bytes=0-9", if_range=AT), ByteRange(0, 9)),
        (Conditions(range="bytes=0-9", if_range=BEFORE), None),
    ],
)
def test_one_byte_range_or_the_whole_body(conditions: Conditions, answer):
    assert byte_range(conditions, ETAG, T, 1000) == answer


def test_conditions_are_read_from_asgi_headers_and_most_requests_have_none():
    assert conditions_of([(b"accept", b"image/avif")]) is NONE
    got = conditions_of([(b"range", b"bytes=0-1"), (b"if-match", ETAG.encode()), (b"range", b"bytes=5-6")])
    assert got == Conditions(if_match=ETAG, range="bytes=0-1")
    assert ByteRange(0, 1).content_range(10) == "bytes 0-1/10"
