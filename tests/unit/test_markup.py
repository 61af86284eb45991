"""Markup from rules, as a frontend developer would check it: parsed HTML, signed URLs, preload hints,
the Link header, the JSON form, the CLI and the HTTP endpoints."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import re
import textwrap
from fractions import Fraction
from html.parser import HTMLParser
from itertools import pairwise
from urllib.parse import unquote, urlsplit

import pytest

from edge.config import DEMO_MASTERS
from edge.signing import Signer, parse_keys
from edge.urls import parse_query
from origin.core.errors import Problem
from origin.core.limits import Limits
from origin.core.request import RenditionOptions
from origin.masters.index import MasterIndex
from origin.masters.local import LocalMasterStore
from rules.loader import load_rules
from rules.markup import ALT_PLACEHOLDER, Markup, build_markup
from rules.settings import BUNDLED_RULES
from tests.support.app import InProcess, in_process
from tests.support.cli import edge, run_cli
from tests.support.corpus import AVIF_ACCEPT
from tests.support.images import decode, frames, sniff
from tests.support.planning import CAPACITY

EXAMPLES = BUNDLED_RULES
KEYS = "k1:test-secret-number-one-0123456789,k0:test-secret-number-zero-0123456789"
SIGNER = Signer(parse_keys(KEYS))
BASE = "https://img.example.com"


class Elements(HTMLParser):
    """Every start tag of an HTML fragment, in order, as (tag, attributes)."""

    def __init__(self, text: str):
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, dict(attrs)))

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for t, attrs in self.found if t == tag]

    def one(self, tag: str) -> dict[str, str | None]:
        [attrs] = self.all(tag)
        return attrs


def srcset_entries(srcset: str) -> list[tuple[str, int]]:
    entries = []
    for item in srcset.split(", "):
        url, descriptor = item.rsplit(" ", 1)
        assert descriptor.endswith("w"), item
        entries.append((url, int(descriptor[:-1])))
    return entries


def verified(url: str, master: str, version: str, base: str = BASE) -> RenditionOptions:
    """Check a URL the way the server will: its signature holds and it names the version."""
    assert url.startswith(base + "/img/"), url
    parts = urlsplit(url[len(base) :])
    assert unquote(parts.path.removeprefix("/img/")) == master
    opts, signature = parse_query(parts.query)
    SIGNER.verify(master, opts, signature)
    assert opts.v == version and opts.dpr == 1
    return opts


@pytest.fixture(scope="module")
def ruleset():
    return load_rules(EXAMPLES)


@pytest.fixture(scope="module")
def masters():
    return MasterIndex(LocalMasterStore(DEMO_MASTERS), Limits())


def markup_for(ruleset, masters, rule: str, master: str, base: str = BASE) -> Markup:
    record = asyncio.run(masters.lookup(master))
    return build_markup(
        ruleset.rule_for(rule, master), master, record.header, record.short_version, SIGNER.url_signer(base), CAPACITY
    )


# --- <img> -------------------------------------------------------------------------------------


def test_img_has_everything_for_no_layout_shift_and_lazy_loading(ruleset, masters):
    m = markup_for(ruleset, masters, "card", "coffee.jpg")
    img = Elements(m.img_html()).one("img")
    assert img["loading"] == "lazy" and img["decoding"] == "async" and "fetchpriority" not in img
    assert img["alt"] == ALT_PLACEHOLDER
    assert img["sizes"] == (
        "(min-width: 1024px) calc((min(100vw, 1280px) - 4rem) / 3), (min-width: 640px) calc((100vw - 3rem) / 2), "
        "calc(100vw - 2rem)"
    )
    width, height = int(img["width"]), int(img["height"])
    assert (width, height) == (608, 405)  # the one-column slot at 640px, at the rule's 3:2
    assert abs(width / height - 1.5) < 1 / height
    entries = srcset_entries(img["srcset"])
    assert img["src"] in [url for url, _ in entries]
    for url, descriptor in entries:
        opts = verified(url, "coffee.jpg", m.version)
        # Device pixels at dpr 1: the w descriptor is the URL's w; the height follows the aspect.
        assert opts.w == descriptor and opts.h == round(descriptor / 1.5) and opts.fit == "cover" and opts.g == "smart"
        assert opts.fm == "auto" and opts.q is None  # negotiated: the server answers Vary: Accept
    widths = [w for _, w in entries]
    assert widths == sorted(widths) and len(set(widths)) == len(widths)
    assert all(b >= a * 1.1 for a, b in pairwise(widths))  # merged at the 10 % step
    assert widths[-1] == 1200  # 600px master, doubled by super-resolution (enhance: auto)


def test_lcp_images_load_eagerly_with_high_priority(ruleset, masters):
    img = Elements(markup_for(ruleset, masters, "hero", "seeding_dandelions.jpg").img_html()).one("img")
    assert img["loading"] == "eager" and img["fetchpriority"] == "high" and img["decoding"] == "async"
    assert img["sizes"] == "100vw"
    assert Fraction(int(img["width"]), int(img["height"])) == Fraction(4, 5)


def test_without_an_aspect_the_masters_shape_is_kept_and_never_enlarged(ruleset, masters):
    m = markup_for(ruleset, masters, "product", "coffee.jpg")  # 600x400, enhance: never
    img = Elements(m.img_html()).one("img")
    assert (img["width"], img["height"]) == ("600", "400")
    for url, w in srcset_entries(img["srcset"]):
        opts = verified(url, "coffee.jpg", m.version)
        assert opts.h is None and w <= 600
    assert max(w for _, w in srcset_entries(img["srcset"])) == 600


def test_high_dpr_avatars_stay_small(ruleset, masters):
    m = markup_for(ruleset, masters, "avatar", "astronaut.jpg")
    img = Elements(m.img_html()).one("img")
    assert (img["width"], img["height"], img["sizes"]) == ("64", "64", "(min-width: 768px) 64px, 48px")
    assert [w for _, w in srcset_entries(img["srcset"])] == [48, 64, 96, 128, 144]
    for url, _ in srcset_entries(img["srcset"]):
        opts = verified(url, "astronaut.jpg", m.version)
        assert (opts.g, opts.fx, opts.fy) == ("focal", 0.45, 0.25)


def test_alt_text_and_attribute_values_are_escaped(ruleset, masters):
    record = asyncio.run(masters.lookup("coffee.jpg"))
    rule = ruleset.named("card")
    m = build_markup(
        rule, "coffee.jpg", record.header, record.short_version, SIGNER.url_signer(), CAPACITY, alt='A "cup" & <saucer>'
    )
    img = Elements(m.img_html()).one("img")
    assert img["alt"] == 'A "cup" & <saucer>'
    assert "&amp;" in m.img_html() and "<saucer>" not in m.img_html()
    url = srcset_entries(img["srcset"])[0][0]
    assert url.startswith("/img/coffee.jpg?") and "&" in url  # no base URL: a path the page's origin serves


# --- <picture> ---------------------------------------------------------------------------------


def test_picture_has_typed_sources_with_the_format_and_quality_in_every_url(ruleset, masters):
    m = markup_for(ruleset, masters, "card", "rocket.jpg")
    page = Elements(m.picture_html())
    assert [t for t, _ in page.found] == ["picture", "source", "source", "img"]
    avif, webp = page.all("source")
    img = page.one("img")
    expected = {"image/avif": ("avif", None), "image/webp": ("webp", None)}
    assert (avif["type"], webp["type"]) == tuple(expected)
    for source, (fm, q) in ((avif, ("avif", 50)), (webp, ("webp", 80)), (img, ("jpeg", 80))):
        assert source["sizes"] == img["sizes"] and source.get("media") is None
        for url, _ in srcset_entries(source["srcset"]):
            opts = verified(url, "rocket.jpg", m.version)
            assert (opts.fm, opts.q) == (fm, q)  # for CDNs that ignore Vary: Accept
    assert "type" not in img and img["loading"] == "lazy"
    assert verified(img["src"], "rocket.jpg", m.version).fm == "jpeg"


def test_art_direction_gives_media_sources_widest_first_each_with_its_aspect(ruleset, masters):
    m = markup_for(ruleset, masters, "hero", "seeding_dandelions.jpg")
    page = Elements(m.picture_html())
    sources = page.all("source")
    assert [(s.get("media"), s["type"]) for s in sources] == [
        ("(min-width: 1280px)", "image/avif"),
        ("(min-width: 1280px)", "image/webp"),
        ("(min-width: 1280px)", "image/jpeg"),
        ("(min-width: 768px)", "image/avif"),
        ("(min-width: 768px)", "image/webp"),
        ("(min-width: 768px)", "image/jpeg"),
        (None, "image/avif"),
        (None, "image/webp"),
    ]
    aspects = {"(min-width: 1280px)": Fraction(21, 9), "(min-width: 768px)": Fraction(16, 9), None: Fraction(4, 5)}
    for s in sources:
        aspect = aspects[s.get("media")]
        assert abs(int(s["width"]) / int(s["height"]) - aspect) < Fraction(1, int(s["height"]))
        for url, w in srcset_entries(s["srcset"]):
            opts = verified(url, "seeding_dandelions.jpg", m.version)
            assert opts.w == w and opts.h == round(w / aspect)
    img = page.one("img")
    assert img["fetchpriority"] == "high" and Fraction(int(img["width"]), int(img["height"])) == Fraction(4, 5)
    # The 21:9 crop from xl up rests on the bottom edge; the phone crop on the focal point.
    assert {verified(u, "seeding_dandelions.jpg", m.version).g for u, _ in srcset_entries(sources[0]["srcset"])} == {
        "s"
    }


# --- preload hints -----------------------------------------------------------------------------


def test_an_lcp_preload_has_imagesrcset_and_no_href(ruleset, masters):
    m = markup_for(ruleset, masters, "hero", "rocket.jpg")
    link = Elements(m.preload_html()).one("link")
    img = Elements(m.img_html()).one("img")
    assert "href" not in link  # a browser that knew only href would fetch a second image
    assert link == {
        "rel": "preload",
        "as": "image",
        "imagesrcset": img["srcset"],
        "imagesizes": img["sizes"],
        "fetchpriority": "high",
    }


def test_picture_preloads_one_avif_hint_per_art_direction_range(ruleset, masters):
    m = markup_for(ruleset, masters, "hero", "seeding_dandelions.jpg")
    links = Elements(m.preload_html("picture")).all("link")
    sources = Elements(m.picture_html()).all("source")
    assert [(ln["media"], ln["type"]) for ln in links] == [
        ("(min-width: 1280px)", "image/avif"),
        ("(min-width: 768px) and (max-width: 1279.98px)", "image/avif"),
        ("(max-width: 767.98px)", "image/avif"),
    ]
    assert [ln["imagesrcset"] for ln in links] == [s["srcset"] for s in sources if s["type"] == "image/avif"]
    assert all("href" not in ln for ln in links)


def parse_link_header(value: str) -> list[tuple[str, dict[str, str]]]:
    """RFC 8288: `<uri>; param=token; param="quoted, string", <uri>; ...`."""
    token = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
    quoted = r'"(?:[^"\\]|\\.)*"'
    param = rf"\s*;\s*({token})\s*=\s*({token}|{quoted})"
    link = re.compile(rf"\s*<([^>]*)>((?:{param})*)\s*(,|$)")
    out, pos = [], 0
    while pos < len(value):
        m = link.match(value, pos)
        assert m, f"malformed Link header at {value[pos : pos + 40]!r}"
        params = {
            k: v[1:-1].replace('\\"', '"').replace("\\\\", "\\") if v.startswith('"') else v
            for k, v in re.findall(param, m.group(2))
        }
        out.append((m.group(1), params))
        pos = m.end()
    return out


def test_the_link_header_is_well_formed_and_matches_the_preload_element(ruleset, masters):
    m = markup_for(ruleset, masters, "hero", "seeding_dandelions.jpg")
    for target in ("img", "picture"):
        header = m.link_header(target)
        header.encode("latin-1")  # sendable as an HTTP header
        parsed = parse_link_header(header)
        links = Elements(m.preload_html(target)).all("link")
        assert len(parsed) == len(links) == (1 if target == "img" else 3)
        for (uri, params), link in zip(parsed, links, strict=True):
            assert params["rel"] == "preload" and params["as"] == "image" and params["fetchpriority"] == "high"
            assert params["imagesrcset"] == link["imagesrcset"] and params["imagesizes"] == link["imagesizes"]
            assert params.get("type") == link.get("type") and params.get("media") == link.get("media")
            assert uri in [u for u, _ in srcset_entries(params["imagesrcset"])]
            verified(uri, "seeding_dandelions.jpg", m.version)


def test_rules_that_are_not_lcp_have_no_preload(ruleset, masters):
    m = markup_for(ruleset, masters, "card", "coffee.jpg")
    assert m.preloads("img") == m.preloads("picture") == ()
    assert m.preload_html() == "" and m.link_header() == ""


# --- JSON --------------------------------------------------------------------------------------


def test_the_json_form_carries_the_same_markup_and_attributes(ruleset, masters):
    m = markup_for(ruleset, masters, "hero", "rocket.jpg")
    doc = json.loads(m.json())
    assert (doc["rule"], doc["master"], doc["version"], doc["lcp"]) == ("hero", "rocket.jpg", m.version, True)
    assert doc["img"]["html"] == m.img_html() and doc["picture"]["html"] == m.picture_html()
    assert doc["img"]["attributes"] == Elements(m.img_html()).one("img")
    assert [s["type"] for s in doc["picture"]["sources"]][:3] == ["image/avif", "image/webp", "image/jpeg"]
    assert doc["preload"]["img"]["link"] == m.link_header("img")
    assert doc["preload"]["picture"]["html"] == m.preload_html("picture")
    for c in doc["img"]["candidates"]:
        assert verified(c["url"], "rocket.jpg", m.version).w == c["width"]


# --- CLI ---------------------------------------------------------------------------------------


@pytest.fixture
def keys(monkeypatch):
    monkeypatch.setenv("EDGE_KEYS", KEYS)
    monkeypatch.delenv("EDGE_CONFIG", raising=False)
    monkeypatch.delenv("EDGE_MASTERS", raising=False)


def test_cli_srcset_prints_ready_markup(keys, capsys):
    assert run_cli("srcset", "hero", "rocket.jpg", "--base-url", BASE + "/", "--alt", "A rocket") == 0
    out = capsys.readouterr()
    img = Elements(out.out).one("img")
    assert img["alt"] == "A rocket" and img["fetchpriority"] == "high"
    version = asyncio.run(MasterIndex(LocalMasterStore(DEMO_MASTERS), Limits()).lookup("rocket.jpg")).short_version
    for url, _ in srcset_entries(img["srcset"]):
        verified(url, "rocket.jpg", version)
    assert "development key" not in out.err

    assert run_cli("srcset", "hero", "rocket.jpg", "--format", "picture") == 0
    assert len(Elements(capsys.readouterr().out).all("source")) == 8
    assert run_cli("srcset", "avatar", "astronaut.jpg", "--format", "json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["rule"] == "avatar" and doc["placeholder"]["data_uri"].startswith("data:image/webp;base64,")
    assert run_cli("srcset", "hero", "rocket.jpg", "--placeholder") == 0
    assert Elements(capsys.readouterr().out).one("img")["style"].startswith("background: #")


def test_cli_preload_prints_the_link_element_or_header_value(keys, capsys):
    assert run_cli("preload", "hero", "rocket.jpg", "--for", "img") == 0
    assert "href" not in Elements(capsys.readouterr().out).one("link")
    assert run_cli("preload", "hero", "rocket.jpg", "--for", "picture", "--format", "link") == 0
    assert len(parse_link_header(capsys.readouterr().out.strip())) == 3
    # By default the preload follows the markup the rule needs: hero art-directs, so <picture>.
    assert run_cli("preload", "hero", "rocket.jpg") == 0
    assert len(Elements(capsys.readouterr().out).all("link")) == 3
    assert run_cli("preload", "hero", "rocket.jpg", "--format", "json") == 0
    assert json.loads(capsys.readouterr().out)["link"].startswith("</img/rocket.jpg?")
    assert run_cli("preload", "card", "rocket.jpg") == 0
    out = capsys.readouterr()
    assert out.out == "" and "not an LCP rule" in out.err


def test_cli_refuses_unknown_rules_and_masters_the_rule_does_not_cover(keys):
    with pytest.raises(Problem) as unknown:
        run_cli("srcset", "banner", "rocket.jpg")
    assert unknown.value.status == 404 and "hero, card, avatar, product" in unknown.value.detail
    with pytest.raises(Problem) as mismatch:
        run_cli("srcset", "avatar", "rocket.jpg")
    assert mismatch.value.status == 404 and "astronaut.jpg" in mismatch.value.detail


def test_the_edge_command_runs_srcset(tmp_path):
    ok = edge("srcset", "card", "chelsea.png", "--format", "html")
    assert ok.returncode == 0, ok.stderr
    assert Elements(ok.stdout).one("img")["loading"] == "lazy"
    missing = edge("srcset", "card", "photos/none.jpg")
    assert missing.returncode == 1 and "no master at 'photos/none.jpg'" in missing.stderr
    (tmp_path / "bad.yaml").write_text("rules:\n  x: {masters: a.jpg, sizes: half}\n")
    bad = edge("rules", "check", "--rules", str(tmp_path))
    assert bad.returncode == 1 and bad.stdout.startswith(
        f"{tmp_path / 'bad.yaml'}:2 rules.x.sizes: expected a CSS length"
    )


# --- HTTP --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    with in_process(tmp_path_factory.mktemp("markup"), masters=DEMO_MASTERS) as app:
        yield app


@pytest.fixture
def client(app):
    with app.client(base_url=app.base) as c:
        yield c


def test_http_srcset_answers_json_by_default_and_markup_on_request(client):
    r = client.get("/srcset/card/coffee.jpg", params={"base_url": BASE})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    doc = r.json()
    img = Elements(doc["img"]["html"]).one("img")
    for url, _ in srcset_entries(img["srcset"]):
        verified(url, "coffee.jpg", doc["version"])
    html = client.get("/srcset/card/coffee.jpg", params={"format": "html", "alt": "Coffee"})
    assert html.headers["content-type"].startswith("text/html")
    assert Elements(html.text).one("img")["alt"] == "Coffee"
    picture = client.get("/srcset/hero/rocket.jpg", params={"format": "picture"})
    assert len(Elements(picture.text).all("source")) == 8


def test_http_preload_carries_the_link_header_itself(client):
    r = client.get("/preload/hero/seeding_dandelions.jpg", params={"for": "picture"})
    assert r.status_code == 200
    doc = r.json()
    assert r.headers["link"] == doc["link"] and len(parse_link_header(r.headers["link"])) == 3
    assert len(Elements(doc["html"]).all("link")) == 3 and doc["for"] == "picture"
    plain = client.get("/preload/hero/rocket.jpg", params={"format": "link"})
    assert plain.text.strip() == plain.headers["link"]
    assert len(parse_link_header(plain.headers["link"])) == 3  # hero art-directs: the <picture> preload
    assert len(parse_link_header(client.get("/preload/hero/rocket.jpg", params={"for": "img"}).headers["link"])) == 1
    none = client.get("/preload/card/rocket.jpg")
    assert none.status_code == 200 and "link" not in none.headers and none.json()["hints"] == []


@pytest.mark.parametrize(
    ("path", "params", "status", "detail"),
    [
        ("/srcset/banner/rocket.jpg", {}, 404, "no rule named 'banner'"),
        ("/srcset/card/photos/nothing.jpg", {}, 404, "no master at 'photos/nothing.jpg'"),
        ("/preload/avatar/rocket.jpg", {}, 404, "rule 'avatar' does not apply to 'rocket.jpg'"),
        ("/srcset/card/coffee.jpg", {"format": "svg"}, 400, "format must be one of json, html, picture"),
        ("/srcset/card/coffee.jpg", {"base_url": "javascript:alert(1)"}, 400, "base_url must be"),
        ("/srcset/card/../edge/config.py", {}, 404, ""),
    ],
)
def test_http_errors_are_problems(client, path, params, status, detail):
    r = client.get(path, params=params)
    assert r.status_code == status and r.headers["content-type"] == "application/problem+json"
    assert detail in r.json()["detail"]


def test_http_without_rules_configured_is_a_404(tmp_path):
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "site.yaml").write_text("# no rules yet\n")
    with in_process(tmp_path, {"EDGE_RULES_DIR": str(tmp_path / "rules")}, masters=DEMO_MASTERS) as app:
        r = app.client().get(app.base + "/srcset/card/coffee.jpg")
    assert r.status_code == 404 and "no rule named 'card' (rules: none)" in r.json()["detail"]


# --- the real server renders what the markup promises ------------------------------------------


def test_the_server_renders_every_url_of_the_markup_at_the_size_it_declares(server: InProcess, tmp_path):
    """Each URL of the <picture> (and the negotiated <img>) is fetched from a running server: it is
    accepted (signed, current version), in the format its <source type> says, at exactly the
    width and height the srcset and the width/height attributes promise."""
    write = (tmp_path / "r.yaml").write_text
    write(
        textwrap.dedent(
            """
            rules:
              photo:
                masters: ["rocket_*.jpg", "rgba_alpha_*.webp", "animated_*.gif"]
                sizes: {default: 50vw, md: 240px}
                dprs: [1]
                aspect: "3:2"
                art:
                  md: {aspect: "1:1", gravity: n}
                formats: {webp: 70, jpeg: 75}
                enhance: never  # model-made candidates: test_superres_server::test_the_widest_candidates_...
            """
        )
    )
    rule = load_rules(tmp_path).named("photo")
    index = MasterIndex(LocalMasterStore(server.masters), Limits())
    with server.client() as client:
        for master, fallback in (
            ("rocket_640x427.jpg", "jpeg"),
            ("rgba_alpha_1600x1000.webp", "png"),
            ("animated_24f_160x90.gif", "gif"),
        ):
            record = asyncio.run(index.lookup(master))
            sign = server.signer.url_signer(server.base)
            m = build_markup(rule, master, record.header, record.short_version, sign, CAPACITY)
            page = Elements(m.picture_html())
            assert page.one("img") and verified(page.one("img")["src"], master, m.version, server.base).fm == fallback
            for element in (*page.all("source"), page.one("img")):
                fm = (element.get("type") or f"image/{fallback}").removeprefix("image/")
                aspect = Fraction(1) if element.get("media") else Fraction(3, 2)
                width, height = int(element["width"]), int(element["height"])
                assert abs(width / height - aspect) < Fraction(1, height)
                for url, w in srcset_entries(element["srcset"]):
                    r = client.get(url, headers={"Accept": AVIF_ACCEPT})
                    assert r.status_code == 200, (url, r.text)
                    assert sniff(r.content) == fm, url
                    image = decode(r.content)
                    assert (image.width, image.height) == (w, round(w / aspect)), url
                    if fallback == "png":
                        assert image.hasalpha()
                    if fallback == "gif":
                        assert frames(r.content) == 24  # animations keep moving
            for url, w in srcset_entries(Elements(m.img_html()).one("img")["srcset"])[:2]:
                r = client.get(url, headers={"Accept": AVIF_ACCEPT})
                expected = "webp" if fallback == "gif" else "avif"  # animated masters stay animated
                assert r.status_code == 200 and sniff(r.content) == expected and decode(r.content).width == w


def test_srcset_json_speaks_react_too_and_markup_endpoints_revalidate(client):
    doc = client.get("/srcset/hero/rocket.jpg").json()
    attrs, props = doc["img"]["attributes"], doc["img"]["props"]
    assert props["srcSet"] == attrs["srcset"] and props["fetchPriority"] == "high" == attrs["fetchpriority"]
    assert "srcset" not in props and props["sizes"] == attrs["sizes"] and props["width"] == attrs["width"]
    for source in doc["picture"]["sources"]:
        assert source["props"]["srcSet"] == source["srcset"] and source["props"]["type"] == source["type"]
    assert doc["picture"]["img"]["props"]["srcSet"] == doc["picture"]["img"]["srcset"]
    hint = doc["preload"]["img"]["hints"][0]
    assert hint["props"]["imageSrcSet"] == hint["imagesrcset"] and hint["props"]["imageSizes"] == hint["imagesizes"]
    for path, params in (
        ("/srcset/hero/rocket.jpg", {}),
        ("/srcset/hero/rocket.jpg", {"format": "picture"}),
        ("/preload/hero/rocket.jpg", {}),
        ("/preload/hero/rocket.jpg", {"format": "link"}),
    ):
        first = client.get(path, params=params)
        etag = first.headers["etag"]
        assert etag.startswith(('"', 'W/"')) and client.get(path, params=params).headers["etag"] == etag  # stable
        again = client.get(path, params=params, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
        assert again.headers["cache-control"] == first.headers["cache-control"] and again.headers["etag"] == etag
        if path.startswith("/preload"):
            assert again.headers["link"] == first.headers["link"]
    assert (
        client.get("/srcset/hero/rocket.jpg", params={"base_url": "https://img.example.com"}).headers["etag"]
        != (client.get("/srcset/hero/rocket.jpg").headers["etag"])
    )


def test_srcset_json_carries_placeholders_and_html_paints_them_on_request(client):
    doc = client.get("/srcset/hero/rocket.jpg").json()
    placeholder = doc["placeholder"]
    assert set(placeholder) == {"color", "thumbhash", "data_uri"}
    assert client.get("/srcset/hero/rocket.jpg").json()["placeholder"] == placeholder  # made once, the same
    tiny = decode(base64.b64decode(placeholder["data_uri"].split(",", 1)[1]))
    # the rule's framing (hero: 4:5 below md): the placeholder has the shape of what replaces it
    assert abs(tiny.width / tiny.height - doc["width"] / doc["height"]) < 0.15
    assert "style=" not in client.get("/srcset/hero/rocket.jpg", params={"format": "html"}).text
    painted = client.get("/srcset/hero/rocket.jpg", params={"format": "html", "placeholder": "style"}).text
    img = Elements(painted).one("img")
    assert img["style"].startswith(f"background: {placeholder['color']} url(data:image/webp;base64,")
    bad = client.get("/srcset/hero/rocket.jpg", params={"placeholder": "blur"})
    assert bad.status_code == 400 and bad.json()["option"] == "placeholder"


def test_text_is_compressed_on_request_with_a_weak_etag_and_images_never(client):
    zipped = client.get("/srcset/hero/rocket.jpg", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip" and "accept-encoding" in zipped.headers["vary"].lower()
    assert zipped.headers["etag"].startswith('W/"') and zipped.json()["rule"] == "hero"  # httpx unpacks it
    plain = client.get("/srcset/hero/rocket.jpg", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.headers["etag"] == zipped.headers["etag"]
    assert "accept-encoding" in plain.headers["vary"].lower()  # a cache must keep both apart
    for etag in (zipped.headers["etag"], plain.headers["etag"]):  # either revalidates either way
        again = client.get("/srcset/hero/rocket.jpg", headers={"Accept-Encoding": "gzip", "If-None-Match": etag})
        assert again.status_code == 304
    doc = zipped.json()
    image = client.get(doc["img"]["candidates"][0]["url"], headers={"Accept-Encoding": "br, gzip"})
    assert image.status_code == 200 and "content-encoding" not in image.headers


@pytest.mark.parametrize(
    ("accept_encoding", "coding"),
    [
        ("gzip, deflate, br, zstd", "br"),  # what Chromium sends
        ("br;q=0, gzip", "gzip"),
        ("gzip;q=0, br;q=0", None),
        ("*", "br"),
        ("*, br;q=0", "gzip"),
        ("identity", None),
    ],
)
def test_brotli_is_preferred_when_named_and_q_0_means_no(client, accept_encoding: str, coding: str | None):
    r = client.get("/srcset/hero/rocket.jpg", headers={"Accept-Encoding": accept_encoding})
    assert r.headers.get("content-encoding") == coding
    plain = client.get("/srcset/hero/rocket.jpg", headers={"Accept-Encoding": "identity"}).content
    assert r.content == plain  # httpx unpacks br and gzip
    if coding == "br":
        sent = int(r.headers["content-length"])
        assert sent < len(gzip.compress(plain, 6))  # why br: fewer bytes than gzip for the same markup


@pytest.mark.parametrize(
    ("env", "public"),
    [
        ({"EDGE_RULES_MARKUP_ACCESS": "auto"}, False),  # real keys, open world: a token
        ({"EDGE_RULES_MARKUP_ACCESS": "auto", "EDGE_RULES_CLOSED_WORLD": "true"}, True),
        ({"EDGE_RULES_MARKUP_ACCESS": "auto", "EDGE_KEYS": ""}, True),  # the development key: the demo
        ({"EDGE_RULES_MARKUP_ACCESS": "token"}, False),
        ({"EDGE_RULES_MARKUP_ACCESS": "public"}, True),
    ],
)
def test_who_may_mint_signed_urls_through_the_markup_endpoints(tmp_path, env: dict[str, str], public: bool):
    token = "markup-token-0123456789"
    with in_process(tmp_path, {**env, "EDGE_RULES_MARKUP_TOKEN": token}, masters=DEMO_MASTERS) as app:
        with app.client(base_url=app.base) as c:
            for path in ("/srcset/card/coffee.jpg", "/preload/hero/rocket.jpg"):
                anonymous = c.get(path)
                if public:
                    assert anonymous.status_code == 200 and anonymous.headers["cache-control"] == "public, max-age=60"
                    continue
                assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
                assert "markup_token" in anonymous.json()["detail"]
                assert c.get(path, headers={"Authorization": "Bearer wrong-token-0123456789"}).status_code == 401
                assert c.get(path, headers={"Authorization": token}).status_code == 401  # no scheme
                allowed = c.get(path, headers={"Authorization": f"bearer {token}"})
                assert allowed.status_code == 200
                assert allowed.headers["cache-control"] == "private, max-age=60"  # no shared cache hands it out


def test_token_access_without_a_token_says_how_to_set_one(tmp_path):
    with in_process(tmp_path, {"EDGE_RULES_MARKUP_ACCESS": "token"}, masters=DEMO_MASTERS) as app:
        r = app.get(app.base + "/srcset/card/coffee.jpg")
        assert r.status_code == 401 and "[rules] markup_token to be set" in r.json()["detail"]
