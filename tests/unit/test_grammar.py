"""The URL grammar and signatures: table tests for what users type, properties for the rest."""

from __future__ import annotations

import string
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.signing import Signer, parse_keys
from edge.urls import canonical_url, parse_query
from origin.core.errors import Problem
from origin.core.request import FITS, FORMATS, GRAVITIES, Crop, RenditionOptions, canonical_query

KEYS = parse_keys("new:0123456789abcdef-new,old:0123456789abcdef-old")


def test_spellings_of_one_request_are_one_canonical_form():
    a, _ = parse_query("w=800&q=80")
    b, _ = parse_query("q=80&w=0800&fit=cover&dpr=1.00&g=center&fm=auto")
    assert a == b
    assert canonical_query(a) == "q=80&w=800"


def test_every_option_round_trips():
    opts, sig = parse_query(
        "w=10&h=20&dpr=2.5&fit=fill&g=focal&fx=0.25&fy=1&crop=1,2,3,4&q=7&fm=png&v=abcdef12&exp=99&kid=a-b&s=xyz"
    )
    assert opts == RenditionOptions(
        10, 20, 2.5, "fill", "focal", 0.25, 1.0, Crop(1, 2, 3, 4), 7, "png", "abcdef12", 99, "a-b"
    )
    assert sig == "xyz"
    assert parse_query(canonical_query(opts))[0] == opts


def test_q_auto_and_max_bytes_are_part_of_the_canonical_form():
    opts, _ = parse_query("max_bytes=050000&w=640&q=auto")
    assert (opts.q, opts.max_bytes) == ("auto", 50000)
    assert canonical_query(opts) == "max_bytes=50000&q=auto&w=640"
    assert canonical_query(parse_query("w=640&q=80")[0]) != canonical_query(parse_query("w=640&q=auto")[0])


@pytest.mark.parametrize(
    "query, option, words",
    [
        ("w=abc", "w", "w must be an integer 1..8192, got 'abc'"),
        ("w=0", "w", "1..8192"),
        ("h=8193", "h", "1..8192"),
        ("w=-5", "w", "integer"),
        ("dpr=5", "dpr", "1..4"),
        ("dpr=1.234", "dpr", "at most 2 decimals"),
        ("dpr=0.5", "dpr", "1..4"),
        ("fit=crop", "fit", "one of cover, contain, fill, inside, outside"),
        ("g=middle", "g", "one of center"),
        ("fx=0.5", "fx", "fx needs g=focal"),
        ("g=focal&fx=1.5", "fx", "0..1"),
        ("crop=1,2,3", "crop", "x,y,w,h"),
        ("crop=0,0,0,10", "crop", "w and h at least 1"),
        ("q=101", "q", "1..100"),
        ("q=best", "q", "q must be an integer 1..100 or auto, got 'best'"),
        ("max_bytes=99", "max_bytes", "100..50000000"),
        ("max_bytes=20kb", "max_bytes", "integer"),
        ("fm=bmp", "fm", "one of auto, avif"),
        ("v=XYZ", "v", "hex"),
        ("exp=soon", "exp", "integer"),
        ("kid=a b", "kid", "key id"),
        ("w=1&w=2", "w", "more than once"),
        ("width=100", "width", "unknown option 'width'"),
        ("w", "w", "given a value"),
    ],
)
def test_malformed_options_name_the_option(query, option, words):
    with pytest.raises(Problem) as err:
        parse_query(query)
    assert err.value.status == 400
    assert err.value.extra["option"] == option
    assert words in err.value.detail


def test_focal_defaults_to_the_middle_and_is_dropped_from_the_canonical_form():
    opts, _ = parse_query("g=focal")
    assert (opts.fx, opts.fy) == (0.5, 0.5)
    assert canonical_query(opts) == "g=focal"


def test_signed_url_verifies_and_carries_kid():
    signer = Signer(KEYS)
    url = signer.sign_url("dir/cat photo.jpg", RenditionOptions(w=400, v="abcdef0123456789"))
    assert url.startswith("/img/dir/cat%20photo.jpg?kid=new&v=abcdef0123456789&w=400&s=")
    opts, sig = parse_query(url.split("?", 1)[1])
    signer.verify("dir/cat photo.jpg", opts, sig)


def test_a_url_signed_with_the_old_key_survives_rotation():
    old_first = Signer(list(reversed(KEYS)))
    url = old_first.sign_url("a.jpg", RenditionOptions(w=10))
    rotated = Signer(KEYS)  # a new key now signs; the old one is still configured
    opts, sig = parse_query(url.split("?", 1)[1])
    rotated.verify("a.jpg", opts, sig)


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda q: q.replace("w=400", "w=401"), "does not match"),
        (lambda q: q.replace("kid=new", "kid=gone"), "unknown signing key"),
        (lambda q: q.split("&s=")[0], "missing signature"),
    ],
)
def test_tampering_is_refused(change, words):
    signer = Signer(KEYS)
    query = signer.sign_url("a.jpg", RenditionOptions(w=400)).split("?", 1)[1]
    opts, sig = parse_query(change(query))
    with pytest.raises(Problem) as err:
        signer.verify("a.jpg", opts, sig)
    assert err.value.status == 403 and words in err.value.detail


def test_expired_urls_are_refused_and_fresh_ones_accepted():
    signer = Signer(KEYS)
    for exp, ok in ((int(time.time()) - 1, False), (int(time.time()) + 3600, True)):
        opts, sig = parse_query(signer.sign_url("a.jpg", RenditionOptions(w=1, exp=exp)).split("?", 1)[1])
        if ok:
            signer.verify("a.jpg", opts, sig)
        else:
            with pytest.raises(Problem, match="expired"):
                signer.verify("a.jpg", opts, sig)


# ---- properties -------------------------------------------------------------------------------

decimals2 = st.integers(100, 400).map(lambda n: n / 100)
unit = st.integers(0, 10000).map(lambda n: n / 10000)
options = st.builds(
    RenditionOptions,
    w=st.none() | st.integers(1, 8192),
    h=st.none() | st.integers(1, 8192),
    dpr=decimals2,
    fit=st.sampled_from(FITS),
    g=st.sampled_from([g for g in GRAVITIES if g != "focal"]),
    crop=st.none()
    | st.builds(Crop, st.integers(0, 9999), st.integers(0, 9999), st.integers(1, 9999), st.integers(1, 9999)),
    q=st.none() | st.integers(1, 100),
    fm=st.sampled_from(FORMATS),
    v=st.none() | st.text("0123456789abcdef", min_size=8, max_size=64),
    exp=st.none() | st.integers(2_000_000_000, 3_000_000_000),
    kid=st.sampled_from([None, "new", "old"]),
)
paths = st.lists(
    st.text(string.ascii_letters + string.digits + " _-éü", min_size=1, max_size=12), min_size=1, max_size=4
).map("/".join)


@settings(max_examples=300, deadline=None)
@given(options, paths)
def test_sign_then_verify_always_holds(opts, path):
    signer = Signer(KEYS)
    url = signer.sign_url(path, opts)
    parsed, sig = parse_query(url.split("?", 1)[1])
    signer.verify(path, parsed, sig)


@settings(max_examples=300, deadline=None)
@given(options)
def test_canonicalisation_is_idempotent(opts):
    once = canonical_query(opts)
    reparsed, _ = parse_query(once)
    assert canonical_query(reparsed) == once
    assert reparsed == opts


@settings(max_examples=200, deadline=None)
@given(options, st.data())
def test_changing_any_character_of_a_signed_url_fails(opts, data):
    signer = Signer(KEYS)
    url = signer.sign_url("photos/a.jpg", opts)
    i = data.draw(st.integers(0, len(url) - 1))
    replacement = data.draw(st.sampled_from(string.ascii_letters + string.digits + "=&,._-/"))
    if url[i] == replacement:
        return
    tampered = url[:i] + replacement + url[i + 1 :]
    path_part, _, query = tampered.partition("?")
    if not path_part.startswith("/img/"):
        return  # no longer our route at all
    path = path_part[len("/img/") :]
    try:
        parsed, sig = parse_query(query)
        signer.verify(path, parsed, sig)
    except Problem as p:
        assert p.status in (400, 403)
    else:
        # Only a different spelling of the same canonical request may pass.
        assert canonical_url(path, parsed) == canonical_url("photos/a.jpg", opts)


@settings(max_examples=1000, deadline=None)
@given(st.text(max_size=80))
def test_parse_raises_nothing_but_400(query):
    try:
        parse_query(query)
    except Problem as p:
        assert p.status == 400
