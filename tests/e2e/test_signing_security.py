"""Signatures under attack: key rotation without downtime, tampering with any character of any signed
URL, and no timing leak in the comparison. In process for thousands of URLs, and through the real
server for a few hundred.
"""

from __future__ import annotations

import inspect
import random
import statistics
import string
import time
import types
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import edge.headers
import edge.http.markup
import edge.http.ops
import edge.signing
from edge.signing import Signer, parse_keys
from edge.urls import canonical_url, parse_query
from origin.core.errors import Problem
from origin.core.request import FITS, FORMATS, Crop, RenditionOptions
from tests.support.corpus import CORPUS
from tests.support.http import RawClient, assert_problem
from tests.support.server import Server, start_server, stop_server

OLD = "old:old-secret-0123456789abcdef"
NEW = "new:new-secret-0123456789abcdef"
MASTERS = ["flower_640x427.jpg", "tiny_1x1.jpg", "dir/cat photo.jpg", "ü/ñ.png"]


# ---- key rotation, through the real server -------------------------------------------------------------


def _masters(tmp: Path) -> Path:
    masters = tmp / "masters"
    (masters / "dir").mkdir(parents=True)
    (masters / "ü").mkdir()
    for name, source in zip(
        MASTERS, ["flower_640x427.jpg", "tiny_1x1.jpg", "rocket_640x427.jpg", "tiny_1x1.gif"], strict=True
    ):
        (masters / name).write_bytes((CORPUS / source).read_bytes())
    return masters


def _signed(keys: str, n: int) -> list[str]:
    signer = Signer(parse_keys(keys))
    return [signer.sign_url(MASTERS[i % len(MASTERS)], RenditionOptions(w=20 + i, fm="jpeg")) for i in range(n)]


def _statuses(server: Server, paths: list[str]) -> Counter[int]:
    with httpx.Client(timeout=30) as client:
        return Counter(client.get(server.base + p).status_code for p in paths)


def test_keys_rotate_without_downtime(tmp_path: Path):
    """The procedure SECURITY.md gives: add the new key (verify only), then make it the signer, then
    drop the old one. Replicas are restarted one by one, so neighbouring steps run side by side: every
    URL a signer hands out during the rotation is accepted by every replica running at that moment."""
    masters, cache = _masters(tmp_path), tmp_path / "cache"
    old_urls, new_urls = _signed(OLD, 8), _signed(NEW, 8)

    def server(step: str, keys: str, cache_dir: Path = cache) -> Server:
        (tmp_path / step).mkdir()
        return start_server(tmp_path / step, {"EDGE_KEYS": keys}, masters=masters, cache_dir=cache_dir)

    before = server("1-old", OLD)
    try:
        assert _statuses(before, old_urls) == {200: 8}  # rendered and cached under the old key
        assert _statuses(before, new_urls) == {403: 8}
    finally:
        stop_server(before)

    # Step 2 (old signs, new verifies) and step 3 (new signs, old verifies): replicas in both states.
    adding, promoted = server("2-old-new", f"{OLD},{NEW}"), server("3-new-old", f"{NEW},{OLD}", tmp_path / "cache3")
    try:
        for replica in (adding, promoted):
            assert _statuses(replica, old_urls) == {200: 8}
            assert _statuses(replica, new_urls) == {200: 8}
    finally:
        stop_server(adding)
        stop_server(promoted)

    after = server("4-new", NEW)
    try:
        assert _statuses(after, new_urls) == {200: 8}
        with httpx.Client(timeout=30) as client:
            for url in old_urls:  # cached renditions included: the signature is checked first
                assert_problem(client.get(after.base + url), 403, "unknown signing key id 'old'")
    finally:
        stop_server(after)


def test_urls_without_kid_follow_the_first_key(tmp_path: Path):
    """Why `edge sign` always writes kid: a URL without one is checked against whichever key is first."""
    masters = _masters(tmp_path)
    signed = canonical_url("flower_640x427.jpg", RenditionOptions(w=30, fm="jpeg"))
    bare = f"{signed}&s={edge.signing.mac(b'old-secret-0123456789abcdef', signed)}"
    for step, keys, status in (("a", f"{OLD},{NEW}", 200), ("b", f"{NEW},{OLD}", 403)):
        (tmp_path / step).mkdir()
        srv = start_server(tmp_path / step, {"EDGE_KEYS": keys}, masters=masters)
        try:
            assert httpx.get(srv.base + bare, timeout=30).status_code == status
        finally:
            stop_server(srv)


# ---- tampering ------------------------------------------------------------------------------------------

KEYS = parse_keys(f"{NEW},{OLD}")
SIGNER = Signer(KEYS)
options = st.builds(
    RenditionOptions,
    w=st.none() | st.integers(1, 64),
    h=st.none() | st.integers(1, 64),
    dpr=st.sampled_from([1.0, 1.5, 2.0, 3.25]),
    fit=st.sampled_from(FITS),
    g=st.sampled_from(["center", "n", "se", "smart"]),
    crop=st.none() | st.builds(Crop, st.integers(0, 99), st.integers(0, 99), st.integers(1, 99), st.integers(1, 99)),
    q=st.none() | st.integers(1, 100),
    fm=st.sampled_from(FORMATS),
    v=st.none() | st.text("0123456789abcdef", min_size=8, max_size=16),
    exp=st.none() | st.just(4_000_000_000),
    kid=st.sampled_from([None, "new", "old"]),
)
TAMPER_CHARS = string.ascii_letters + string.digits + "=&,._-/%+~:;!*'()@$?"


@st.composite
def tampered_urls(draw: Callable) -> tuple[str, str, RenditionOptions, str]:
    """(master, signed URL, its options, the URL with one character replaced, inserted or deleted)."""
    master, opts = draw(st.sampled_from(MASTERS)), draw(options)
    url = SIGNER.sign_url(master, opts)
    i = draw(st.integers(len("/img/"), len(url) - 1))
    op = draw(st.sampled_from(["replace", "replace", "insert", "delete"]))
    c = draw(st.sampled_from(TAMPER_CHARS).filter(lambda c: op != "replace" or c != url[i]))
    tampered = url[:i] + url[i + 1 :] if op == "delete" else url[:i] + c + url[i + (op == "replace") :]
    return master, url, opts, tampered


def gate(signer: Signer, target: str) -> int:
    """The signature gate of edge.http.images.rendition_endpoint in process: 403, 400 (a signed URL with a bad
    option), or 200 (the request goes on to the master). Checked against the real server below."""
    path_part, _, query = target.partition("?")
    path = unquote(path_part.removeprefix("/img/"))
    try:
        opts, signature = parse_query(query)
    except Problem:
        return 400 if signer.verify_unparsed(path, query) else 403
    try:
        signer.verify(path, opts, signature)
    except Problem as problem:
        return problem.status
    return 200


def same_request(master: str, opts: RenditionOptions, url: str, target: str) -> bool:
    """Whether a changed URL still says exactly what the signed `url` said, signature included (a
    respelling: `%C3%BC` for `%c3%bc`, `%2C` for `,`...). Only those may pass, and they are the same
    request and cache entry."""
    path_part, _, query = target.partition("?")
    try:
        parsed, signature = parse_query(query)
    except Problem:
        return False
    signed = replace(opts, kid=opts.kid or KEYS[0].kid)  # what sign_url signed: it always writes kid
    same_signature = signature == parse_query(url.partition("?")[2])[1]
    same_url = canonical_url(unquote(path_part.removeprefix("/img/")), parsed) == canonical_url(master, signed)
    return same_signature and same_url


# 5,000 tampered URLs, drawn 5 per example: hypothesis' own cost per example was most of the time.
@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(tampered_urls(), min_size=5, max_size=5))
def test_changing_any_character_of_a_signed_url_is_refused_in_process(cases):
    for master, url, opts, tampered in cases:
        assert gate(SIGNER, url) == 200
        status = gate(SIGNER, tampered)
        if same_request(master, opts, url, tampered):
            assert status == 200
        else:
            assert status == 403, (url, tampered, status)


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("tamper")
    srv = start_server(tmp, {"EDGE_KEYS": f"{NEW},{OLD}"}, masters=_masters(tmp))
    yield srv
    stop_server(srv)


def test_changing_any_character_of_a_signed_url_is_403_from_the_server(keyed_server: Server):
    seen: Counter[str] = Counter()
    client = RawClient(keyed_server.base)  # byte-exact targets: httpx would normalise '/../'

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(tampered_urls())
    def one(case):
        master, url, opts, tampered = case
        r = client.send("GET", tampered)
        respelling = same_request(master, opts, url, tampered)
        seen["respelling" if respelling else "changed"] += 1
        assert (r.status == 403) is (not respelling), (url, tampered, r.status, r.body[:200])
        assert (r.status == 403) is (gate(SIGNER, tampered) == 403)  # the in-process gate is the server's
        if r.status == 403:
            assert r.headers["content-type"] == "application/problem+json"
            assert r.headers["cache-control"] == "no-store"

    try:
        one()
    finally:
        client.close()
    print(f"\ntampered URLs through the server: {dict(seen)}")
    assert seen["changed"] >= 250


def test_a_tampered_url_renders_nothing(keyed_server: Server):
    from tests.support.metrics import scrape

    def renders() -> float:
        return sum(v for (name, _), v in scrape(keyed_server).items() if name == "edge_renders_total")

    url = SIGNER.sign_url("flower_640x427.jpg", RenditionOptions(w=77, fm="webp"))
    before = renders()
    for forged in (url.replace("w=77", "w=78"), url[:-1] + ("A" if url[-1] != "A" else "B"), url.split("&s=")[0]):
        assert httpx.get(keyed_server.base + forged, timeout=30).status_code == 403
    assert renders() == before


# ---- timing -------------------------------------------------------------------------------------------


def test_the_signature_is_compared_in_constant_time_by_construction(monkeypatch: pytest.MonkeyPatch):
    source = inspect.getsource(Signer._check)
    assert "hmac.compare_digest(" in source and "== signature" not in source and "signature ==" not in source
    # The admin and markup tokens too: both endpoints check through bearer_matches, which compares so.
    assert "hmac.compare_digest(" in inspect.getsource(edge.headers.bearer_matches)
    assert "bearer_matches(" in inspect.getsource(edge.http.ops.purge_endpoint)
    assert "bearer_matches(" in inspect.getsource(edge.http.markup.authorise)
    calls = []
    real = edge.signing.hmac

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real.compare_digest(a, b)

    monkeypatch.setattr(edge.signing, "hmac", types.SimpleNamespace(new=real.new, compare_digest=spy))
    url = SIGNER.sign_url("a.jpg", RenditionOptions(w=1))
    assert gate(SIGNER, url) == 200 and gate(SIGNER, url[:-1] + "x") == 403
    assert len(calls) == 2  # every check goes through it


def _timing_difference(signer: Signer, rounds: int = 1500, batch: int = 32) -> tuple[float, float]:
    """Median over interleaved rounds of (time to reject a signature wrong in its first character)
    minus (wrong in its last), per call in ns, and the median time per call. Each round times both,
    in random order, so drift on a busy machine touches both alike and cancels in the difference."""
    opts, good = parse_query(signer.sign_url("photos/cat.jpg", RenditionOptions(w=640)).split("?", 1)[1])
    assert good is not None

    def other(c: str) -> str:
        return "A" if c != "A" else "B"

    first, last = other(good[0]) + good[1:], good[:-1] + other(good[-1])

    def per_call(signature: str) -> float:
        started = time.perf_counter_ns()
        for _ in range(batch):
            try:
                signer.verify("photos/cat.jpg", opts, signature)
            except Problem:
                pass
        return (time.perf_counter_ns() - started) / batch

    rng, differences, totals = random.Random(7), [], []
    for _ in range(rounds):
        if rng.random() < 0.5:
            a, b = per_call(first), per_call(last)
        else:
            b, a = per_call(last), per_call(first)
        differences.append(a - b)
        totals.append(a)
    return statistics.median(differences), statistics.median(totals)


def test_no_timing_leak_in_the_signature_comparison(monkeypatch: pytest.MonkeyPatch):
    """A statistical smoke check, not a proof (that is compare_digest, asserted above). It must be
    able to see a leak: a comparator that stops at the first wrong character (a Python loop, about
    20 ns a character) shows up as several per cent. The real check shows none of it (measured: a
    median difference of a few ns in ~6 us per call)."""
    difference, per_call = _timing_difference(SIGNER)
    print(f"\nconstant time: first-vs-last wrong character differ by {difference:+.1f} ns of {per_call:.0f} ns")
    real = edge.signing.hmac

    def leaky(a: bytes, b: bytes) -> bool:
        if len(a) != len(b):
            return False
        for x, y in zip(a, b, strict=True):
            if x != y:
                return False
        return True

    monkeypatch.setattr(edge.signing, "hmac", types.SimpleNamespace(new=real.new, compare_digest=leaky))
    leak, leaky_per_call = _timing_difference(SIGNER)
    print(f"early-exit comparator:  first-vs-last wrong character differ by {leak:+.1f} ns of {leaky_per_call:.0f} ns")
    assert abs(leak) > 0.03 * leaky_per_call, "the measurement cannot see a leak it should see"
    assert abs(difference) < 0.015 * per_call


# ---- what an unsigned request can learn ---------------------------------------------------------------


def test_the_markup_endpoints_do_not_reveal_which_masters_exist(server: Server):
    # 'hero' covers seeding_dandelions.jpg and rocket.jpg only; neither path below is covered by it.
    with httpx.Client(timeout=30) as client:
        existing = client.get(f"{server.base}/srcset/hero/flower_640x427.jpg")
        missing = client.get(f"{server.base}/srcset/hero/no-such-master.jpg")
    assert existing.status_code == missing.status_code, (existing.status_code, missing.status_code)
