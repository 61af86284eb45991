"""Image sitemaps, checked the way an SEO team would: parse the XML, follow the index, verify the URLs."""

from __future__ import annotations

import asyncio
import gzip
import io
import itertools
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx
import pytest
from starlette.applications import Starlette

from edge.cli.sitemaps import ProgressLine
from edge.config import DEMO_MASTERS, DEV_KEYS
from edge.http.problems import on_problem
from edge.http.sitemaps import routes
from edge.signing import Signer, parse_keys
from edge.urls import parse_query
from origin.core.errors import Problem
from origin.core.limits import Limits
from origin.core.master import VERSION_DIGITS, MasterHeader
from origin.masters.index import MasterIndex, version_hash
from origin.masters.local import LocalMasterStore
from sitemaps.build import (
    IMAGE_NS,
    INDEX_NAME,
    SITEMAP_NS,
    BuildError,
    ImageUnavailable,
    build_sitemaps,
)
from sitemaps.pages import ImageRef, Page, PagesError, csv_rows, group_pages, json_rows, read_pages
from sitemaps.urls import SignedImageURLs, sitemap_width
from tests.support import cli
from tests.support.corpus import TEST_KEYS

BASE = "https://img.example.com"
URL = f"{{{SITEMAP_NS}}}url"
LOC = f"{{{SITEMAP_NS}}}loc"
IMAGE = f"{{{IMAGE_NS}}}image"
IMAGE_LOC = f"{{{IMAGE_NS}}}loc"
DEMO = ("astronaut.jpg", "coffee.jpg", "chelsea.png", "rocket.jpg", "seeding_dandelions.jpg")


# Helpers: read sitemaps back with a real XML parser, checking their shape on the way


def xml_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.name.endswith(".gz") else data


def parse_sitemap(path: Path) -> Iterator[tuple[str, list[str]]]:
    """(page, image URLs) per <url>, asserting the exact namespaces and that only image:loc is written."""
    declared = []
    for event, item in ET.iterparse(io.BytesIO(xml_bytes(path)), events=("start-ns", "start", "end")):
        if event == "start-ns":
            declared.append(item)
        elif event == "start" and declared is not None:
            assert item.tag == f"{{{SITEMAP_NS}}}urlset"
            assert declared == [("", SITEMAP_NS), ("image", IMAGE_NS)]
            declared = None  # type: ignore[assignment]
        elif event == "end" and item.tag == URL:
            children = list(item)
            assert children[0].tag == LOC and not list(children[0])
            images = []
            for image in children[1:]:
                assert image.tag == IMAGE
                assert [c.tag for c in image] == [IMAGE_LOC]  # no caption, title, license, geo_location
                images.append(image[0].text)
            yield children[0].text, images
            item.clear()


def parse_index(out: Path) -> list[str]:
    root = ET.parse(out / INDEX_NAME).getroot()
    assert root.tag == f"{{{SITEMAP_NS}}}sitemapindex"
    assert all(child.tag == f"{{{SITEMAP_NS}}}sitemap" for child in root)
    return [child.find(LOC).text for child in root]  # type: ignore[union-attr]


def sitemap_files(out: Path) -> list[Path]:
    """The files the index lists, in its order, checked to be absolute URLs under the base URL."""
    files = []
    for loc in parse_index(out):
        assert loc.startswith(f"{BASE}/sitemaps/sitemap-")
        files.append(out / loc.rsplit("/", 1)[1])
    return files


def all_urls(out: Path) -> list[tuple[str, list[str]]]:
    return [entry for path in sitemap_files(out) for entry in parse_sitemap(path)]


def fake_image_url(master: str, rule: str | None = None) -> str:
    return f"{BASE}/img/{master}?v=0123456789abcdef" + (f"&rule={rule}" if rule else "")


def pages(count: int, images: int = 1, start: int = 0) -> list[Page]:
    return [
        Page(f"https://shop.example/p/{i}", tuple(ImageRef(f"m/{i}-{k}.jpg") for k in range(images)), i + 2)
        for i in range(start, start + count)
    ]


def build(out: Path, page_list, **kwargs):
    return build_sitemaps(page_list, base_url=BASE, out_dir=out, image_url=fake_image_url, **kwargs)


def write_csv(path: Path, rows: list[tuple[str, ...]], header: str = "page,master") -> Path:
    path.write_text(header + "\n" + "".join(",".join(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture
def masters(tmp_path: Path) -> Path:
    directory = tmp_path / "masters"
    shutil.copytree(DEMO_MASTERS, directory)
    return directory


@pytest.fixture
def signer() -> Signer:
    return Signer(parse_keys(TEST_KEYS))


@pytest.fixture
def edge_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("EDGE_CONFIG", "EDGE_MASTERS", "EDGE_KEYS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("EDGE_KEYS", TEST_KEYS)


def run_cli(*argv: str) -> int:
    return cli.run_cli("sitemap", "build", *argv)


def verify(url: str, signer: Signer) -> tuple[str, object]:
    """The master and options of a signed image URL, after Signer.verify accepted it."""
    assert url.startswith(f"{BASE}/img/")
    parts = urlsplit(url)
    master = unquote(parts.path.removeprefix("/img/"))
    opts, signature = parse_query(parts.query)
    signer.verify(master, opts, signature)
    return master, opts


# Manifests


def test_csv_rows_become_pages_in_input_order_with_their_masters(tmp_path: Path):
    manifest = write_csv(
        tmp_path / "pages.csv",
        [
            ("https://shop.example/boots", "boots/1.jpg", "product"),
            ("https://shop.example/boots", "boots/2.jpg", "product"),
            ("https://shop.example/boots", "boots/1.jpg", "product"),  # the same image twice: once
            ("https://shop.example/", "hero.jpg", ""),
            ("https://shop.example/hats", "hats/1.jpg"),  # the optional rule left off the line
        ],
        header="page,master,rule",
    )
    assert list(read_pages(manifest)) == [
        Page("https://shop.example/boots", (ImageRef("boots/1.jpg", "product"), ImageRef("boots/2.jpg", "product")), 2),
        Page("https://shop.example/", (ImageRef("hero.jpg"),), 5),
        Page("https://shop.example/hats", (ImageRef("hats/1.jpg"),), 6),
    ]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        (
            "pages.csv",
            "page,master,rule\nhttps://a.example/x,a.jpg,hero\nhttps://a.example/x,b.jpg,hero\n"
            "https://a.example/y,c.jpg,\n",
        ),
        (
            "pages.jsonl",
            '{"page": "https://a.example/x", "masters": ["a.jpg", "b.jpg"], "rule": "hero"}\n\n'
            '{"page": "https://a.example/y", "master": "c.jpg"}\n',
        ),
        (
            "pages.json",
            '[{"page": "https://a.example/x", "masters": ["a.jpg"], "rule": "hero"},\n'
            ' {"page": "https://a.example/x", "master": "b.jpg", "rule": "hero"},\n'
            ' {"page": "https://a.example/y", "master": "c.jpg", "rule": null}]',
        ),
        (
            "pages.json",
            '{"page": "https://a.example/x", "masters": ["a.jpg", "b.jpg"], "rule": "hero"}\n'
            '{"page": "https://a.example/y", "master": "c.jpg"}\n',
        ),
        (
            "pages.yaml",
            "- page: https://a.example/x\n  masters: [a.jpg, b.jpg]\n  rule: hero\n"
            "- {page: https://a.example/y, master: c.jpg}\n",
        ),
    ],
)
def test_every_manifest_format_reads_the_same_pages(tmp_path: Path, name: str, text: str):
    (tmp_path / name).write_text(text)
    got = [(p.loc, p.images) for p in read_pages(tmp_path / name)]
    assert got == [
        ("https://a.example/x", (ImageRef("a.jpg", "hero"), ImageRef("b.jpg", "hero"))),
        ("https://a.example/y", (ImageRef("c.jpg"),)),
    ]


def test_csv_and_json_readers_stream_without_reading_the_whole_manifest():
    endless_csv = itertools.chain(
        ["page,master\n"], (f"https://a.example/{i // 3},m{i}.jpg\n" for i in itertools.count())
    )
    first = list(itertools.islice(group_pages(csv_rows(endless_csv, "endless.csv")), 3))
    assert [p.loc for p in first] == ["https://a.example/0", "https://a.example/1", "https://a.example/2"]
    assert [len(p.images) for p in first] == [3, 3, 3]

    class EndlessJsonArray(io.TextIOBase):
        def __init__(self):
            self.rows = 0

        def read(self, size: int = -1) -> str:
            chunk = "[" if self.rows == 0 else ""
            for _ in range(100):
                chunk += f'{{"page": "https://a.example/{self.rows}", "master": "m.jpg"}},\n'
                self.rows += 1
            return chunk

        def seek(self, offset: int, whence: int = 0) -> int:
            self.rows = 0
            return 0

    stream = EndlessJsonArray()
    first = list(itertools.islice(group_pages(json_rows(stream, "endless.json")), 1000))
    assert first[-1].loc == "https://a.example/999" and first[-1].line == 1000
    assert stream.rows < 200_000  # read a little ahead, not on and on


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("pages.csv", "page,master\nhttps://a.example/x,a.jpg\nhttps://a.example/y,\n", "pages.csv:3: master is empty"),
        ("pages.csv", "page,master\n/relative/page,a.jpg\n", "pages.csv:2: page must be an absolute http(s) URL"),
        ("pages.csv", "page,master\nftp://a.example/x,a.jpg\n", "pages.csv:2: page must be an absolute http(s) URL"),
        ("pages.csv", "page,master\nhttps://a.example/a\tb,a.jpg\n", "pages.csv:2: page contains a control character"),
        ("pages.csv", "page,master,lastmod\nhttps://a.example/a,a.jpg,yesterday\n", "pages.csv:2: lastmod must be"),
        (
            "pages.csv",
            "page,master\nhttps://a.example/x,../secret.jpg\n",
            "pages.csv:2: master must be a path relative",
        ),
        ("pages.csv", "page,master\nhttps://a.example/x,/etc/passwd\n", "pages.csv:2: master must be a path relative"),
        ("pages.csv", "page,master\nhttps://a.example/x,a.jpg,extra\n", "pages.csv:2: expected 2 fields"),
        ("pages.csv", "url,image\nhttps://a.example/x,a.jpg\n", "pages.csv:1: the header must name the columns"),
        ("pages.csv", "page,master,rules\n", "pages.csv:1: the header must name the columns"),
        ("pages.csv", "", "pages.csv:1: empty file"),
        (
            "pages.csv",
            "page,master\nhttps://a.example/" + "x" * 2100 + ",a.jpg\n",
            "pages.csv:2: page URL is 2118 characters; sitemaps allow at most 2047",
        ),
        (
            "pages.jsonl",
            '{"page": "https://a.example/x", "master": "a.jpg"}\n{"page": "https://a.ex',
            "pages.jsonl:2: not valid JSON",
        ),
        ("pages.jsonl", '{"page": "https://a.example/x"}\n', "pages.jsonl:1: give either master"),
        (
            "pages.jsonl",
            '{"page": "https://a.example/x", "master": "a.jpg", "alt": "?"}\n',
            "pages.jsonl:1: unknown key 'alt'",
        ),
        ("pages.jsonl", '{"master": "a.jpg"}\n', "pages.jsonl:1: page is missing"),
        (
            "pages.jsonl",
            '{"page": "https://a.example/x", "masters": []}\n',
            "pages.jsonl:1: masters must be a non-empty",
        ),
        (
            "pages.json",
            '[\n{"page": "https://a.example/x", "master": "a.jpg"},\n{"page": 7, "master": "a.jpg"}\n]',
            "pages.json:3: page must be a string",
        ),
        (
            "pages.json",
            '[\n{"page": "https://a.example/x", "master": "a.jpg"}\n{"page": "x"}]',
            "pages.json:3: expected ','",
        ),
        ("pages.json", '"pages"', "pages.json:1: expected a JSON array of rows"),
        (
            "pages.yaml",
            "- page: https://a.example/x\n  master: a.jpg\n- page: https://a.example/y\n  master: ''\n",
            "pages.yaml:3: master is empty",
        ),
        ("pages.yaml", "- page: https://a.example/x\n  master: [a.jpg\n", "pages.yaml:3: not valid YAML"),
        ("pages.yaml", "page: https://a.example/x\n", "pages.yaml:1: expected a list of rows"),
        ("pages.txt", "", "pages.txt: unknown manifest type"),
    ],
)
def test_bad_manifests_say_which_file_and_line(tmp_path: Path, name: str, text: str, message: str):
    (tmp_path / name).write_text(text)
    with pytest.raises(PagesError) as error:
        list(read_pages(tmp_path / name))
    assert str(error.value).startswith(str(tmp_path / message))


def test_page_urls_become_absolute_uris(tmp_path: Path):
    manifest = write_csv(
        tmp_path / "pages.csv",
        [("https://bücher.example/straße?q=café", "a.jpg"), ("HTTPS://a.example/%C3%A9?x=1", "a.jpg")],
    )
    assert [p.loc for p in read_pages(manifest)] == [
        "https://xn--bcher-kva.example/stra%C3%9Fe?q=caf%C3%A9",
        "HTTPS://a.example/%C3%A9?x=1",  # already a URI: kept as written
    ]


# The XML


def test_sitemaps_are_google_image_sitemaps_with_only_image_loc(tmp_path: Path):
    report = build(tmp_path / "out", pages(3, images=2))
    assert (report.pages, report.images, report.files) == (3, 6, ["sitemap-00001.xml"])
    path = tmp_path / "out" / "sitemap-00001.xml"
    assert path.read_bytes().startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<urlset ')
    assert list(parse_sitemap(path)) == [
        (f"https://shop.example/p/{i}", [fake_image_url(f"m/{i}-0.jpg"), fake_image_url(f"m/{i}-1.jpg")])
        for i in range(3)
    ]
    assert sitemap_files(tmp_path / "out") == [path]
    assert report.index_url == f"{BASE}/sitemaps/sitemap-index.xml"


def test_urls_are_xml_escaped_and_read_back_exactly(tmp_path: Path):
    tricky = [
        "https://shop.example/search?q=boots&size=42&colour=<red>",
        "https://shop.example/say?q=\"hello\"&who='you'",
        "https://shop.example/café?q=naïve&emoji=😀",
    ]
    manifest = write_csv(
        tmp_path / "pages.csv", [(f'"{p.replace(chr(34), chr(34) * 2)}"', "a&b <c>.jpg") for p in tricky]
    )
    report = build_sitemaps(
        read_pages(manifest), base_url=BASE, out_dir=tmp_path / "out", image_url=lambda m, r: f"{BASE}/img/{m}?a=1&b=2"
    )
    raw = (tmp_path / "out" / report.files[0]).read_text(encoding="utf-8")
    # Percent-encoded first (RFC 3986 allows no <, >, " or space), then XML-escaped (& and ').
    assert "boots&amp;size=42&amp;colour=%3Cred%3E" in raw
    assert "q=%22hello%22&amp;who=&apos;you&apos;" in raw
    assert raw.isascii()  # unicode in pages went to percent-encoded UTF-8
    image = f"{BASE}/img/a&b%20%3Cc%3E.jpg?a=1&b=2"
    assert [(loc, images) for loc, images in all_urls(tmp_path / "out")] == [
        ("https://shop.example/search?q=boots&size=42&colour=%3Cred%3E", [image]),
        ("https://shop.example/say?q=%22hello%22&who='you'", [image]),
        ("https://shop.example/caf%C3%A9?q=na%C3%AFve&emoji=%F0%9F%98%80", [image]),
    ]


def test_files_split_at_the_url_limit_and_the_index_lists_every_one(tmp_path: Path):
    report = build(tmp_path / "out", pages(10), max_urls=3)
    assert report.files == [f"sitemap-0000{n}.xml" for n in (1, 2, 3, 4)]
    files = sitemap_files(tmp_path / "out")
    assert [len(list(parse_sitemap(f))) for f in files] == [3, 3, 3, 1]
    assert [loc for loc, _ in all_urls(tmp_path / "out")] == [p.loc for p in pages(10)]


def test_a_real_50001_page_build_makes_two_files_of_50000_and_1(tmp_path: Path):
    manifest = write_csv(tmp_path / "pages.csv", [(f"https://shop.example/p/{i}", "a.jpg") for i in range(50_001)])
    report = build_sitemaps(read_pages(manifest), base_url=BASE, out_dir=tmp_path / "out", image_url=fake_image_url)
    assert report.pages == 50_001
    files = sitemap_files(tmp_path / "out")
    assert [f.name for f in files] == ["sitemap-00001.xml", "sitemap-00002.xml"]
    counts = [sum(1 for _ in parse_sitemap(f)) for f in files]
    assert counts == [50_000, 1]
    assert next(parse_sitemap(files[1]))[0] == "https://shop.example/p/50000"


def test_files_split_at_the_byte_limit(tmp_path: Path):
    limit = 2_000
    report = build(tmp_path / "out", pages(40, images=2), max_bytes=limit)
    files = sitemap_files(tmp_path / "out")
    assert len(files) == len(report.files) > 5
    assert all(f.stat().st_size <= limit for f in files)
    assert max(f.stat().st_size for f in files) > limit - 300  # filled, not split early
    assert [loc for loc, _ in all_urls(tmp_path / "out")] == [p.loc for p in pages(40)]
    with pytest.raises(BuildError, match="alone makes a sitemap bigger than 400 bytes"):
        build(tmp_path / "small", pages(1, images=3), max_bytes=400)


def test_at_most_1000_images_per_page_and_the_rest_are_counted(tmp_path: Path):
    report = build(tmp_path / "out", pages(1, images=1_005) + pages(1, images=3, start=1))
    assert (report.images, report.images_dropped) == (1_003, 5)
    assert any("shows 1005 images; 5 past the first 1000 left out" in w for w in report.warnings)
    assert [len(images) for _, images in all_urls(tmp_path / "out")] == [1_000, 3]


def test_gzip_holds_the_same_xml_and_is_byte_identical_across_builds(tmp_path: Path):
    build(tmp_path / "plain", pages(7), max_urls=3)
    one = build(tmp_path / "gz1", pages(7), max_urls=3, gzip=True)
    build(tmp_path / "gz2", pages(7), max_urls=3, gzip=True)
    assert one.files == ["sitemap-00001.xml.gz", "sitemap-00002.xml.gz", "sitemap-00003.xml.gz"]
    assert [f.name for f in sitemap_files(tmp_path / "gz1")] == one.files
    for name in one.files:
        data = (tmp_path / "gz1" / name).read_bytes()
        assert data[:2] == b"\x1f\x8b" and data[3] == 0 and data[4:8] == b"\0\0\0\0"  # no name, mtime 0
        assert gzip.decompress(data) == (tmp_path / "plain" / name.removesuffix(".gz")).read_bytes()
        assert data == (tmp_path / "gz2" / name).read_bytes()
    assert (tmp_path / "gz1" / INDEX_NAME).read_bytes() == (tmp_path / "gz2" / INDEX_NAME).read_bytes()


def test_same_pages_give_the_same_bytes(tmp_path: Path):
    build(tmp_path / "a", pages(20, images=3), max_urls=7)
    build(tmp_path / "b", pages(20, images=3), max_urls=7)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert (
        names
        == sorted(p.name for p in (tmp_path / "b").iterdir())
        == ["sitemap-00001.xml", "sitemap-00002.xml", "sitemap-00003.xml", INDEX_NAME]
    )
    assert all((tmp_path / "a" / n).read_bytes() == (tmp_path / "b" / n).read_bytes() for n in names)


def test_a_rebuild_rewrites_only_the_file_whose_pages_changed(tmp_path: Path):
    out = tmp_path / "out"
    build(out, pages(9), max_urls=3)
    before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.iterdir()}
    again = build(out, pages(9), max_urls=3)
    assert (again.written, again.removed) == ([], [])
    assert sorted(again.unchanged) == sorted(before)

    changed = pages(9)
    changed[4] = Page(changed[4].loc, (ImageRef("m/new.jpg"),), changed[4].line)
    report = build(out, changed, max_urls=3)
    assert report.written == ["sitemap-00002.xml"]
    assert report.unchanged == ["sitemap-00001.xml", "sitemap-00003.xml", INDEX_NAME]
    after = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.iterdir()}
    assert after.keys() == before.keys()  # no temporary files left behind
    assert [n for n in before if before[n] != after[n]] == ["sitemap-00002.xml"]
    assert fake_image_url("m/new.jpg") in [i for _, images in all_urls(out) for i in images]


def test_stale_sitemap_files_are_removed_and_nothing_else(tmp_path: Path):
    out = tmp_path / "out"
    build(out, pages(10), max_urls=2)
    (out / "robots.txt").write_text("User-agent: *\n")
    (out / "sitemap-news.xml").write_text("<urlset/>")
    report = build(out, pages(5), max_urls=2)
    assert report.removed == ["sitemap-00004.xml", "sitemap-00005.xml"]
    assert sorted(p.name for p in out.iterdir()) == [
        "robots.txt",
        "sitemap-00001.xml",
        "sitemap-00002.xml",
        "sitemap-00003.xml",
        INDEX_NAME,
        "sitemap-news.xml",
    ]
    switched = build(out, pages(5), max_urls=2, gzip=True)  # to gzip: the .xml files go
    assert switched.removed == ["sitemap-00001.xml", "sitemap-00002.xml", "sitemap-00003.xml"]
    assert len(all_urls(out)) == 5


def test_empty_manifest_gives_an_empty_index(tmp_path: Path):
    report = build(tmp_path / "out", [])
    assert report.files == [] and parse_index(tmp_path / "out") == []


@pytest.mark.parametrize("base_url", ["img.example.com", "/sitemaps", "ftp://img.example.com", ""])
def test_base_url_must_be_absolute(tmp_path: Path, base_url: str):
    with pytest.raises(BuildError, match="base URL"):
        build_sitemaps(pages(1), base_url=base_url, out_dir=tmp_path, image_url=fake_image_url)


def test_unavailable_images_are_left_out_and_counted(tmp_path: Path):
    def image_url(master: str, rule: str | None) -> str:
        if "missing" in master:
            raise ImageUnavailable(f"no master at {master!r}")
        return fake_image_url(master)

    page_list = [
        Page("https://a.example/1", (ImageRef("a.jpg"), ImageRef("missing.jpg")), 2),
        Page("https://a.example/2", (ImageRef("missing.jpg"),), 4),
    ]
    report = build_sitemaps(page_list, base_url=BASE, out_dir=tmp_path, image_url=image_url)
    assert (report.pages, report.images, report.images_unavailable) == (2, 1, 2)
    assert report.warnings == ["image left out: no master at 'missing.jpg' (first on https://a.example/1)"]
    assert all_urls(tmp_path) == [("https://a.example/1", [fake_image_url("a.jpg")]), ("https://a.example/2", [])]


def test_progress_is_reported_during_and_after_the_build(tmp_path: Path):
    seen = []
    build(tmp_path, pages(2_500), progress=lambda r: seen.append(r.pages))
    assert seen == [1_000, 2_000, 2_500]

    ticks = iter(range(100))
    stream = io.StringIO()
    line = ProgressLine(stream, interval=1, clock=lambda: float(next(ticks)))
    report = build(tmp_path / "again", pages(2_500), progress=line)
    line.close(report)
    assert stream.getvalue().startswith("\rsitemap: 1,000 pages, 1,000 images, 1 files, ")
    assert stream.getvalue().count("\r") == 4 and stream.getvalue().endswith(" s \n")

    # Not a terminal: plain lines, one per interval once it has passed, and the last figures.
    clock = iter([0.0, 3.0, 12.0, 15.0, 23.0, 25.0, 26.0])
    lines = io.StringIO()
    logged = ProgressLine(lines, interval=10, clock=lambda: next(clock), lines=True)
    report = build(tmp_path / "logged", pages(4_500), progress=logged)  # ticks at 1,000..4,000 and the end
    logged.close(report)
    assert "\r" not in lines.getvalue()
    assert [line.split(" images")[0] for line in lines.getvalue().splitlines()] == [
        "sitemap: 2,000 pages, 2,000",
        "sitemap: 4,000 pages, 4,000",
        "sitemap: 4,500 pages, 4,500",
    ]
    quiet = io.StringIO()
    short = ProgressLine(quiet, interval=10, clock=iter([0.0, 1.0, 2.0, 3.0, 4.0]).__next__, lines=True)
    short.close(build(tmp_path / "short", pages(1_500), progress=short))
    assert quiet.getvalue() == ""  # a short build prints nothing
    assert "pages/s" in stream.getvalue()


# The command: real masters, signed and versioned URLs


def test_edge_sitemap_build_writes_signed_versioned_urls(
    tmp_path: Path, masters: Path, signer: Signer, edge_env, capsys: pytest.CaptureFixture[str]
):
    rows = [(f"https://shop.example/p/{i}", DEMO[(i + k) % 5], "") for i in range(12) for k in range(3)]
    manifest = write_csv(tmp_path / "pages.csv", rows, header="page,master,rule")
    out = tmp_path / "out"
    code = run_cli("--masters", str(masters), "--pages", str(manifest), "--base-url", BASE + "/", "--out", str(out))
    assert code == 0
    stdout, stderr = capsys.readouterr()
    assert "12 pages, 36 images in 1 sitemap files" in stdout and f"index: {BASE}/sitemaps/sitemap-index.xml" in stdout
    assert "\r" not in stderr  # no progress bar when stderr is not a terminal
    versions = {name: version_hash((masters / name).read_bytes())[:VERSION_DIGITS] for name in DEMO}
    seen = 0
    for _page, images in all_urls(out):
        assert len(images) == 3
        for url in images:
            master, opts = verify(url, signer)
            assert opts.v == versions[master] and opts.w is None and opts.kid == "k1"  # type: ignore[attr-defined]
            seen += 1
    assert seen == 36


def test_a_changed_master_gets_a_new_version_and_only_its_files_change(
    tmp_path: Path, masters: Path, signer: Signer, edge_env, capsys: pytest.CaptureFixture[str]
):
    rows = [(f"https://shop.example/p/{i}", DEMO[i % 5]) for i in range(60_000)]  # coffee.jpg is on every 5th page
    manifest = write_csv(tmp_path / "pages.csv", rows[:50_000] + [(p, "astronaut.jpg") for p, _ in rows[50_000:]])
    out = tmp_path / "out"
    args = ("--masters", str(masters), "--pages", str(manifest), "--base-url", BASE, "--out", str(out), "--gzip")
    assert run_cli(*args) == 0
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    with open(masters / "coffee.jpg", "ab") as f:
        f.write(b"re-exported")
    assert run_cli(*args) == 0
    assert "files: 1 written, 2 unchanged, 0 removed" in capsys.readouterr().out
    after = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert [n for n in before if before[n] != after[n]] == ["sitemap-00001.xml.gz"]
    new_v = version_hash((masters / "coffee.jpg").read_bytes())[:VERSION_DIGITS]
    coffee = [
        verify(i, signer)[1]
        for _, images in parse_sitemap(out / "sitemap-00001.xml.gz")
        for i in images
        if "/coffee.jpg?" in i
    ]
    assert len(coffee) == 10_000 and all(opts.v == new_v for opts in coffee)  # type: ignore[attr-defined]


def test_missing_and_refused_masters_are_skipped_and_reported(
    tmp_path: Path, masters: Path, edge_env, capsys: pytest.CaptureFixture[str]
):
    (masters / "notes.jpg").write_text("not a picture")
    manifest = write_csv(
        tmp_path / "pages.csv",
        [
            ("https://a.example/1", "astronaut.jpg"),
            ("https://a.example/1", "gone.jpg"),
            ("https://a.example/2", "notes.jpg"),
            ("https://a.example/3", "gone.jpg"),
        ],
    )
    out = tmp_path / "out"
    assert run_cli("--masters", str(masters), "--pages", str(manifest), "--base-url", BASE, "--out", str(out)) == 0
    stdout, stderr = capsys.readouterr()
    assert "skipped: 3 images whose master is missing or refused" in stdout
    assert "no master at 'gone.jpg' (404) (first on https://a.example/1)" in stderr
    assert "master is not a decodable image" in stderr and "(415)" in stderr
    assert [(page, len(images)) for page, images in all_urls(out)] == [
        ("https://a.example/1", 1),
        ("https://a.example/2", 0),
        ("https://a.example/3", 0),
    ]


def test_a_bad_row_stops_a_strict_build_with_file_and_line_and_writes_nothing(
    tmp_path: Path, masters: Path, edge_env, capsys: pytest.CaptureFixture[str]
):
    manifest = write_csv(
        tmp_path / "pages.csv", [("https://a.example/1", "astronaut.jpg"), ("https://a.example/2", "")]
    )
    code = run_cli(
        "--masters", str(masters), "--pages", str(manifest), "--base-url", BASE, "--out", str(tmp_path / "o"),
        "--strict",
    )  # fmt: skip
    assert code == 1
    assert capsys.readouterr().err.strip().endswith("pages.csv:3: master is empty")
    assert list((tmp_path / "o").glob("sitemap-*")) == []
    code = run_cli(
        "--masters", str(masters), "--pages", str(manifest), "--base-url", BASE, "--out", str(tmp_path / "o"),
        "--image-base-url", "cdn.example.com",
    )  # fmt: skip
    assert code == 1
    assert (
        capsys.readouterr().err.strip() == "edge: image base URL must be an absolute http(s) URL, got 'cdn.example.com'"
    )


def test_broken_rows_are_reported_with_file_and_line_and_skipped(
    tmp_path: Path, masters: Path, edge_env, capsys: pytest.CaptureFixture[str]
):
    manifest = write_csv(
        tmp_path / "pages.csv",
        [
            ("https://a.example/1", "astronaut.jpg"),
            ("/not/absolute", "astronaut.jpg"),  # line 3
            ("https://a.example/2", ""),  # line 4: no master
            ("https://a.example/3", "rocket.jpg", "extra"),  # line 5
            ("https://a.example/4", "../secret.jpg"),  # line 6
            ("https://a.example/5", "coffee.jpg"),
        ],
    )
    out = tmp_path / "out"
    assert run_cli("--masters", str(masters), "--pages", str(manifest), "--base-url", BASE, "--out", str(out)) == 0
    stdout, stderr = capsys.readouterr()
    skipped = [line for line in stderr.splitlines() if line.startswith("edge: skipped ")]
    assert [line.split(": ")[1].rsplit(":", 1)[-1] for line in skipped] == ["3", "4", "5", "6"]
    assert f"skipped {manifest}:3: page must be an absolute http(s) URL" in stderr
    assert "2 pages, 2 images" in stdout and "skipped: 4 manifest rows in error" in stdout
    assert [page for page, _ in all_urls(out)] == ["https://a.example/1", "https://a.example/5"]


def test_jsonl_and_yaml_rows_in_error_are_skipped_too(tmp_path: Path):
    jsonl = tmp_path / "pages.jsonl"
    jsonl.write_text(
        '{"page": "https://a.example/1", "master": "a.jpg"}\n{"page": "https://a.ex\n{"master": "b.jpg"}\n'
    )
    yaml_file = tmp_path / "pages.yaml"
    yaml_file.write_text("- page: https://a.example/1\n  master: a.jpg\n- page: 7\n  master: b.jpg\n- just text\n")
    for manifest, lines in ((jsonl, [2, 3]), (yaml_file, [3, 5])):
        bad: list[PagesError] = []
        assert [p.loc for p in read_pages(manifest, bad.append)] == ["https://a.example/1"]
        assert [str(e).split(":")[1] for e in bad] == [str(n) for n in lines], bad


def test_page_urls_are_percent_encoded_per_rfc_3986_then_xml_escaped(tmp_path: Path):
    manifest = write_csv(tmp_path / "pages.csv", [('https://a.example/a b/<x>/"q"/{}|^`/é?q=1 2&r=%41', "a.jpg")])
    [page] = read_pages(manifest)
    assert page.loc == "https://a.example/a%20b/%3Cx%3E/%22q%22/%7B%7D%7C%5E%60/%C3%A9?q=1%202&r=%41"
    build(tmp_path / "out", [page])
    text = (tmp_path / "out" / "sitemap-00001.xml").read_text()
    assert "<loc>https://a.example/a%20b/%3Cx%3E/%22q%22/%7B%7D%7C%5E%60/%C3%A9?q=1%202&amp;r=%41</loc>" in text


def test_lastmod_comes_from_the_manifest_per_page(tmp_path: Path):
    manifest = write_csv(
        tmp_path / "pages.csv",
        [
            ("https://a.example/1", "a.jpg", "2026-11-30"),
            ("https://a.example/1", "b.jpg", ""),
            ("https://a.example/2", "a.jpg", "2026-11-30T08:15:00+01:00"),
            ("https://a.example/3", "a.jpg"),  # the optional column left off the end
        ],
        header="page,master,lastmod",
    )
    found = [(p.loc, p.lastmod) for p in read_pages(manifest)]
    assert found == [
        ("https://a.example/1", "2026-11-30"),
        ("https://a.example/2", "2026-11-30T08:15:00+01:00"),
        ("https://a.example/3", None),
    ]
    build(tmp_path / "out", list(read_pages(manifest)))
    text = (tmp_path / "out" / "sitemap-00001.xml").read_text()
    assert text.count("<lastmod>") == 2
    assert "<url><loc>https://a.example/1</loc><lastmod>2026-11-30</lastmod><image:image>" in text
    yaml_file = tmp_path / "pages.yaml"
    yaml_file.write_text("- page: https://a.example/1\n  master: a.jpg\n  lastmod: 2026-11-30\n")
    assert [p.lastmod for p in read_pages(yaml_file)] == ["2026-11-30"]  # YAML's own date, kept as written


def test_the_development_key_may_sign_only_for_this_machine(
    tmp_path: Path, masters: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    for name in ("EDGE_CONFIG", "EDGE_MASTERS", "EDGE_KEYS"):
        monkeypatch.delenv(name, raising=False)
    manifest = write_csv(tmp_path / "pages.csv", [("https://a.example/1", "astronaut.jpg")])
    args = ("--masters", str(masters), "--pages", str(manifest), "--out", str(tmp_path / "o"))
    assert run_cli(*args, "--base-url", BASE) == 1
    assert "the development key would sign URLs for https://img.example.com" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    assert run_cli(*args, "--base-url", BASE, "--allow-dev-key") == 0
    assert run_cli(*args, "--base-url", "http://127.0.0.1:8080") == 0
    assert run_cli(*args, "--base-url", "http://localhost:8080") == 0
    # The development key first, real keys beside it: always refused.
    monkeypatch.setenv("EDGE_KEYS", f"{DEV_KEYS},{TEST_KEYS}")
    assert run_cli(*args, "--base-url", "http://localhost:8080") == 1
    assert "while real keys are configured" in capsys.readouterr().err


def test_progress_flag_shows_progress_on_stderr(
    tmp_path: Path, masters: Path, edge_env, capsys: pytest.CaptureFixture[str]
):
    manifest = write_csv(tmp_path / "pages.csv", [(f"https://a.example/{i}", "rocket.jpg") for i in range(1_500)])
    args = ("--masters", str(masters), "--pages", str(manifest), "--base-url", BASE, "--out", str(tmp_path / "o"))
    assert run_cli(*args, "--progress") == 0
    err = capsys.readouterr().err
    assert err.startswith("\rsitemap: ") and "1,500 pages, 1,500 images, 1 files" in err and "pages/s" in err


def test_rule_widths_come_from_the_hook_and_never_upscale(masters: Path, signer: Signer):
    widths = {"hero": 2048, "thumb": 256}
    index = MasterIndex(LocalMasterStore(masters), Limits())
    sign = Signer(parse_keys(TEST_KEYS)).url_signer(BASE)
    urls = SignedImageURLs(lambda path: asyncio.run(index.lookup(path)), sign, Limits(), widths.get)
    assert verify(urls("coffee.jpg", "thumb"), signer)[1].w == 256  # type: ignore[attr-defined]
    assert verify(urls("coffee.jpg", "hero"), signer)[1].w is None  # type: ignore[attr-defined]  # 600 px master
    assert verify(urls("coffee.jpg", "unknown"), signer)[1].w is None  # type: ignore[attr-defined]
    assert verify(urls("coffee.jpg"), signer)[1].w is None  # type: ignore[attr-defined]
    with pytest.raises(ImageUnavailable, match="no master at '../coffee.jpg'"):
        urls("../coffee.jpg")


@pytest.mark.parametrize(
    ("size", "wanted", "expected"),
    [
        ((4000, 3000), None, None),  # 12 MP: the master's own size
        ((4000, 3000), 2048, 2048),
        ((4000, 3000), 5000, None),  # never wider than the master
        ((7000, 7000), None, 6324),  # 49 MP: over the 40 MP output limit
        ((12000, 1000), None, 8192),  # over the longest output side
        ((1000, 12000), None, 682),
    ],
)
def test_sitemap_width_is_one_the_server_renders(size: tuple[int, int], wanted: int | None, expected: int | None):
    header = MasterHeader("jpeg", size[0], size[1], 3, False, 1)
    limits = Limits()
    width = sitemap_width(header, limits, wanted)
    assert width == expected
    w = width or size[0]
    h = round(size[1] * w / size[0])
    assert w * h <= limits.max_output_pixels and max(w, h) <= limits.max_output_side


# Serving


class Client:
    """A tiny app with just the sitemap routes (and the app's problem handler), spoken to over ASGI."""

    def __init__(self, directory: Path):
        self.app = Starlette(routes=routes(directory), exception_handlers={Problem: on_problem})

    def request(self, method: str, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                return await client.request(method, path, headers=headers)

        return asyncio.run(send())

    def get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return self.request("GET", path, headers)

    def head(self, path: str) -> httpx.Response:
        return self.request("HEAD", path)


def test_served_sitemaps_have_the_right_type_etag_and_cache_control(tmp_path: Path):
    out = tmp_path / "out"
    build(out, pages(3))
    build(out / "gz", pages(3), gzip=True)
    xml_app = Client(out)
    gz_app = Client(out / "gz")

    for client, name, media in (
        (xml_app, "sitemap-00001.xml", "application/xml"),
        (xml_app, INDEX_NAME, "application/xml"),
        (gz_app, "sitemap-00001.xml.gz", "application/gzip"),
    ):
        response = client.get(f"/sitemaps/{name}")
        assert response.status_code == 200
        assert response.headers["content-type"] == media
        assert "content-encoding" not in response.headers
        assert response.headers["cache-control"] == "public, max-age=3600"
        assert response.content == (out / name if client is xml_app else out / "gz" / name).read_bytes()
        etag = response.headers["etag"]
        assert etag.startswith('"') and not etag.startswith("W/") and len(etag) == 34
        assert client.get(f"/sitemaps/{name}").headers["etag"] == etag

    index = xml_app.get(f"/sitemaps/{INDEX_NAME}")
    assert ET.fromstring(index.content).tag == f"{{{SITEMAP_NS}}}sitemapindex"


def test_if_none_match_gives_304_and_head_gives_headers_only(tmp_path: Path):
    out = tmp_path / "out"
    build(out, pages(3))
    client = Client(out)
    first = client.get("/sitemaps/sitemap-00001.xml")
    etag = first.headers["etag"]
    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = client.get("/sitemaps/sitemap-00001.xml", headers={"If-None-Match": header})
        assert again.status_code == 304 and again.content == b""
        assert again.headers["etag"] == etag and again.headers["cache-control"] == "public, max-age=3600"
    assert client.get("/sitemaps/sitemap-00001.xml", headers={"If-None-Match": '"other"'}).status_code == 200

    head = client.head("/sitemaps/sitemap-00001.xml")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(first.content))
    assert head.headers["etag"] == etag and head.headers["content-type"] == "application/xml"

    changed = pages(3)
    changed[0] = Page("https://shop.example/changed", changed[0].images, 2)
    build(out, changed)
    assert client.get("/sitemaps/sitemap-00001.xml", headers={"If-None-Match": etag}).status_code == 200
    assert client.get("/sitemaps/sitemap-00001.xml").headers["etag"] != etag


@pytest.mark.parametrize(
    "path",
    [
        "/sitemaps/sitemap-00009.xml",
        "/sitemaps/sitemap-00002.xml",
        "/sitemaps/sitemap-00001.xml.gz",  # built plain, not gzip
        "/sitemaps/../secret.txt",
        "/sitemaps/..%2Fsecret.txt",
        "/sitemaps/%2e%2e/secret.txt",
        "/sitemaps/sub/sitemap-00001.xml",
        "/sitemaps/sitemap-00001.xml/../../secret.txt",
        "/sitemaps/.sitemap-00001.xml.1.tmp",
        "/sitemaps/secret.txt",
        "/sitemaps/",
    ],
)
def test_unknown_names_and_path_traversal_are_404(tmp_path: Path, path: str):
    (tmp_path / "secret.txt").write_text("keys")
    out = tmp_path / "out"
    build(out, pages(3))
    (out / "sub").mkdir()
    shutil.copy(out / "sitemap-00001.xml", out / "sub" / "sitemap-00001.xml")
    (out / "sitemap-00002.xml").mkdir()  # not a file
    client = Client(out)
    response = client.get(path)
    assert response.status_code == 404
    assert b"keys" not in response.content and b"urlset" not in response.content


def test_a_symlinked_sitemap_is_not_followed(tmp_path: Path):
    (tmp_path / "secret.txt").write_text("keys")
    out = tmp_path / "out"
    out.mkdir()
    (out / "sitemap-00001.xml").symlink_to(tmp_path / "secret.txt")
    client = Client(out)
    response = client.get("/sitemaps/sitemap-00001.xml")
    assert response.status_code == 404 and response.headers["content-type"] == "application/problem+json"
