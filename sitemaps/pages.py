"""Pages manifests: which page shows which masters, read as a stream of pages.

A manifest is CSV (header `page,master`, optional `rule` and `lastmod` columns), JSON Lines, a
JSON array, or YAML. JSON and YAML rows are `{page, master}` or `{page, masters: [...]}`, each with
an optional `rule` and `lastmod` (a W3C datetime: `2026-11-30` or `2026-11-30T08:15:00+01:00`).

    page,master,rule,lastmod
    https://shop.example/boots,products/boot-1.jpg,product,2026-11-30
    https://shop.example/boots,products/boot-2.jpg,product,2026-11-30

Rows are yielded as `Page`s in input order, adjacent rows of one page merged into one (duplicates
dropped). A page whose rows are not adjacent comes out once per run of rows: merging those would
mean remembering every page of the manifest, so keep a page's rows together (sort by page).

CSV, JSON Lines and JSON arrays are streamed: memory holds one page, whatever the manifest's size.
YAML is parsed whole (PyYAML has no streaming constructor), so it suits manifests of up to about a
hundred thousand rows; use CSV or JSON Lines beyond that.

Every error names the file and line: `pages.csv:12: master is empty`. An error in one row (a
page that is not an absolute URL, a row with no master, a JSON Lines line that does not parse) is
a `RowError`: with `on_bad_row`, the row is handed to it and skipped, so one bad row does not stop
a build; without, it is raised like an error in the file itself (a bad header, broken JSON or
YAML), which always is.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO
from urllib.parse import quote, urlsplit

import yaml

from origin.core.paths import is_safe_relative

MAX_URL_CHARS = 2047  # the sitemap protocol: a <loc> is "less than 2,048 characters"
CSV_COLUMNS = ("page", "master", "rule", "lastmod")
ROW_KEYS = ("page", "master", "masters", "rule", "lastmod")
JSON_CHUNK = 1 << 16
MAX_JSON_ROW_CHARS = 16 << 20  # a row bigger than this is taken to be malformed, not read on forever
SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".yaml": "yaml", ".yml": "yaml"}
_WHITESPACE = re.compile(r"[ \t\r\n]*")
_BAD_URL_CHAR = re.compile(r"[\x00-\x1f\x7f]")  # control characters (a tab or line break in a URL)
# Characters RFC 3986 allows nowhere in a URI, percent-encoded in <loc>; `%` stays (already encoded).
_NOT_IN_URI = re.compile(r"[^A-Za-z0-9\-._~:/?#\[\]@!$&\'()*+,;=%]")
# W3C datetime (the sitemap protocol's <lastmod>): a date, or a date and time with a time zone.
_W3C_DATETIME = re.compile(r"\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?)?)?")


class PagesError(ValueError):
    """A manifest that cannot be read; the message starts with `file:line:`."""


class RowError(PagesError):
    """One row that cannot be used; the rest of the manifest can."""


OnBadRow = Callable[[RowError], None] | None


@dataclass(frozen=True)
class ImageRef:
    master: str  # relative to the masters directory
    rule: str | None = None  # the rule that shows it on this page, if the manifest says


@dataclass(frozen=True)
class Page:
    loc: str  # absolute URL, non-ASCII characters percent-encoded
    images: tuple[ImageRef, ...]
    line: int  # where the page's first row is in the manifest
    lastmod: str | None = None  # W3C datetime, from the manifest (the first row of the page that has one)


@dataclass(frozen=True)
class Row:
    line: int
    page: str
    masters: tuple[str, ...]
    rule: str | None
    lastmod: str | None = None


def absolute_url(raw: str, what: str = "page") -> str:
    """`raw` as an absolute http(s) URI, or ValueError saying what is wrong.

    Non-ASCII characters are percent-encoded as UTF-8 and an internationalised host goes to IDNA
    (the IRI-to-URI mapping of RFC 3987, which the sitemap protocol asks for).
    """
    if not raw:
        raise ValueError(f"{what} is empty")
    if _BAD_URL_CHAR.search(raw):
        raise ValueError(f"{what} contains a control character (a tab or line break?): {raw!r}")
    parts = urlsplit(raw)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{what} must be an absolute http(s) URL, got {raw!r}")
    url = raw
    if _NOT_IN_URI.search(raw):
        netloc = parts.netloc
        if not netloc.isascii():
            userinfo, at, hostport = netloc.rpartition("@")
            host, colon, port = hostport.partition(":")
            try:
                host = host.encode("idna").decode("ascii")
            except UnicodeError:
                raise ValueError(f"{what} has a host name that is not valid IDNA: {raw!r}") from None
            netloc = f"{userinfo}{at}{host}{colon}{port}"
        rest = raw[len(parts.scheme) + 3 + len(parts.netloc) :]
        url = f"{parts.scheme}://{netloc}" + uri_escape(rest)
    if len(url) > MAX_URL_CHARS:
        raise ValueError(f"{what} URL is {len(url)} characters; sitemaps allow at most {MAX_URL_CHARS}")
    return url


def uri_escape(text: str) -> str:
    """`text` with every character RFC 3986 allows nowhere in a URI percent-encoded (UTF-8);
    `%` and the reserved characters are kept, so a URI comes back unchanged."""
    return _NOT_IN_URI.sub(lambda m: quote(m.group(), safe=""), text)


def master_path(raw: str) -> str:
    if not raw:
        raise ValueError("master is empty")
    if not is_safe_relative(raw):
        raise ValueError(
            f"master must be a path relative to the masters directory (no leading '/', "
            f"no '.', '..' or hidden parts), got {raw!r}"
        )
    return raw


def make_row(
    name: str, line: int, page: object, masters: Iterable[object], rule: object, lastmod: object = None
) -> Row:
    """A validated row; every error is a RowError starting with `name:line:`."""
    try:
        if not isinstance(page, str):
            raise ValueError(f"page must be a string, got {type(page).__name__}")
        loc = absolute_url(page.strip())
        paths = []
        for master in masters:
            if not isinstance(master, str):
                raise ValueError(f"master must be a string, got {type(master).__name__}")
            paths.append(master_path(master.strip()))
        if rule is not None and not isinstance(rule, str):
            raise ValueError(f"rule must be a string, got {type(rule).__name__}")
        if lastmod is not None and not isinstance(lastmod, str):
            # YAML reads an unquoted 2026-11-30 as a date: take it as the date it is.
            lastmod = lastmod.isoformat() if hasattr(lastmod, "isoformat") else lastmod
            if not isinstance(lastmod, str):
                raise ValueError(f"lastmod must be a string, got {type(lastmod).__name__}")
        lastmod = (lastmod or "").strip() or None
        if lastmod is not None and not _W3C_DATETIME.fullmatch(lastmod):
            raise ValueError(f"lastmod must be a W3C datetime (2026-11-30 or 2026-11-30T08:15:00Z), got {lastmod!r}")
    except ValueError as e:
        raise RowError(f"{name}:{line}: {e}") from None
    return Row(line, loc, tuple(paths), (rule or "").strip() or None, lastmod)


def _checked(on_bad_row: OnBadRow, make: Callable[..., Row], *args: object) -> Row | None:
    """`make(*args)`, or None after handing its RowError to `on_bad_row` (raised without one)."""
    try:
        return make(*args)
    except RowError as e:
        if on_bad_row is None:
            raise
        on_bad_row(e)
        return None


def group_pages(rows: Iterable[Row]) -> Iterator[Page]:
    """Adjacent rows of one page merged into one Page, its images in order without duplicates."""
    loc: str | None = None
    line = 0
    lastmod: str | None = None
    images: dict[ImageRef, None] = {}
    for row in rows:
        if row.page != loc:
            if loc is not None:
                yield Page(loc, tuple(images), line, lastmod)
            loc, line, images, lastmod = row.page, row.line, {}, None
        lastmod = lastmod or row.lastmod
        for master in row.masters:
            images[ImageRef(master, row.rule)] = None
    if loc is not None:
        yield Page(loc, tuple(images), line, lastmod)


# CSV


def csv_rows(lines: Iterable[str], name: str, on_bad_row: OnBadRow = None) -> Iterator[Row]:
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None:
        raise PagesError(f"{name}:1: empty file; expected a header line 'page,master' (and optionally ',rule')")
    columns = [c.strip().lower() for c in header]
    unknown = [c for c in columns if c not in CSV_COLUMNS]
    if unknown or "page" not in columns or "master" not in columns or len(set(columns)) != len(columns):
        raise PagesError(
            f"{name}:1: the header must name the columns page and master, and optionally rule and lastmod; "
            f"got {','.join(header)!r}"
        )
    try:
        for cells in reader:
            if not cells or cells == [""]:
                continue  # a blank line
            row = _checked(on_bad_row, _csv_row, name, reader.line_num, columns, cells)
            if row is not None:
                yield row
    except csv.Error as e:
        raise PagesError(f"{name}:{reader.line_num}: not valid CSV: {e}") from None


def _csv_row(name: str, line: int, columns: list[str], cells: list[str]) -> Row:
    optional = [c for c in columns if c in ("rule", "lastmod")]
    if len(columns) - len(optional) <= len(cells) < len(columns) and all(
        columns.index(c) >= len(columns) - len(optional) for c in optional
    ):
        cells = cells + [""] * (len(columns) - len(cells))  # optional columns left off the end of the line
    if len(cells) != len(columns):
        raise RowError(f"{name}:{line}: expected {len(columns)} fields ({','.join(columns)}), got {len(cells)}")
    value = dict(zip(columns, cells, strict=True))
    return make_row(name, line, value["page"], [value["master"]], value.get("rule"), value.get("lastmod"))


# JSON and YAML rows: {page, master} or {page, masters: [...]}, with an optional rule and lastmod


def mapping_row(name: str, line: int, item: object) -> Row:
    where = f"{name}:{line}"
    if not isinstance(item, dict):
        raise RowError(f"{where}: expected a row like {{page: ..., master: ...}}, got {type(item).__name__}")
    unknown = sorted(str(k) for k in item if k not in ROW_KEYS)
    if unknown:
        raise RowError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(ROW_KEYS)})")
    if "page" not in item:
        raise RowError(f"{where}: page is missing")
    if ("master" in item) == ("masters" in item):
        raise RowError(f"{where}: give either master (one path) or masters (a list of paths)")
    if "masters" in item:
        masters = item["masters"]
        if not isinstance(masters, list) or not masters:
            raise RowError(f"{where}: masters must be a non-empty list of paths")
    else:
        masters = [item["master"]]
    return make_row(name, line, item["page"], masters, item.get("rule"), item.get("lastmod"))


def jsonl_rows(lines: Iterable[str], name: str, on_bad_row: OnBadRow = None) -> Iterator[Row]:
    for number, text in enumerate(lines, start=1):
        if text.strip():
            row = _checked(on_bad_row, _jsonl_row, name, number, text)
            if row is not None:
                yield row


def _jsonl_row(name: str, number: int, text: str) -> Row:
    try:
        item = json.loads(text)
    except json.JSONDecodeError as e:
        raise RowError(f"{name}:{number}: not valid JSON: {e.msg} (column {e.colno})") from None
    return mapping_row(name, number, item)


class _JsonArray:
    """The items of a top-level JSON array, decoded one at a time from a text stream, with their lines."""

    def __init__(self, stream: TextIO, name: str):
        self.stream, self.name = stream, name
        self.decoder = json.JSONDecoder()
        self.buf, self.pos, self.line = "", 0, 1

    def _fill(self) -> bool:
        chunk = self.stream.read(JSON_CHUNK)
        if not chunk:
            return False
        self.buf = self.buf[self.pos :] + chunk
        self.pos = 0
        return True

    def _peek(self) -> str:
        """The next character that is not whitespace, or '' at the end of the input."""
        while True:
            end = _WHITESPACE.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            self.line += self.buf.count("\n", self.pos, end)
            self.pos = end
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._fill():
                return ""

    def _error(self, what: str, at: int | None = None) -> PagesError:
        line = self.line + self.buf.count("\n", self.pos, at) if at is not None else self.line
        return PagesError(f"{self.name}:{line}: {what}")

    def _value(self) -> object:
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buf, self.pos)
                break
            except json.JSONDecodeError as e:
                # The item may go on in the next chunk; only at the end of the input is it an error.
                if len(self.buf) - self.pos > MAX_JSON_ROW_CHARS or not self._fill():
                    raise self._error(f"not valid JSON: {e.msg}", e.pos) from None
        self.line += self.buf.count("\n", self.pos, end)
        self.pos = end
        return value

    def items(self) -> Iterator[tuple[int, object]]:
        if self._peek() != "[":
            raise self._error("expected a JSON array of rows, or JSON Lines (one row object per line)")
        self.pos += 1
        if self._peek() == "]":
            self.pos += 1
        else:
            while True:
                self._peek()
                line = self.line
                yield line, self._value()
                after = self._peek()
                self.pos += 1
                if after == "]":
                    break
                if after != ",":
                    raise self._error(f"expected ',' or ']' after a row, got {after or 'the end of the file'!r}")
        if self._peek():
            raise self._error("unexpected data after the array of rows")


def json_rows(stream: TextIO, name: str, on_bad_row: OnBadRow = None) -> Iterator[Row]:
    """A `.json` manifest: a JSON array of rows, or JSON Lines when it starts with `{`."""
    first = stream.read(JSON_CHUNK)
    stream.seek(0)
    if first.lstrip().startswith("{"):
        yield from jsonl_rows(stream, name, on_bad_row)
        return
    for line, item in _JsonArray(stream, name).items():
        row = _checked(on_bad_row, mapping_row, name, line, item)
        if row is not None:
            yield row


def yaml_rows(stream: TextIO, name: str, on_bad_row: OnBadRow = None) -> Iterator[Row]:
    """A YAML list of rows. Parsed whole (see the module docstring); rows keep their line numbers."""
    loader = yaml.SafeLoader(stream)
    try:
        node = loader.get_single_node()
        if node is None:
            return
        if not isinstance(node, yaml.SequenceNode):
            raise PagesError(f"{name}:{node.start_mark.line + 1}: expected a list of rows ({{page, master}} each)")
        items = [(child.start_mark.line + 1, loader.construct_document(child)) for child in node.value]
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise PagesError(f"{name}:{line}: not valid YAML: {getattr(e, 'problem', None) or e}") from None
    finally:
        loader.dispose()
    for line, item in items:
        row = _checked(on_bad_row, mapping_row, name, line, item)
        if row is not None:
            yield row


def read_pages(path: str | Path, on_bad_row: OnBadRow = None) -> Iterator[Page]:
    """The pages of a manifest file, by its suffix (.csv, .jsonl/.ndjson, .json, .yaml/.yml); rows
    in error go to `on_bad_row` and are skipped, or are raised without it."""
    path = Path(path)
    name = str(path)
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise PagesError(f"{name}: unknown manifest type; use .csv, .jsonl, .json or .yaml")
    try:
        stream = open(path, encoding="utf-8-sig", newline="" if kind == "csv" else None)
    except OSError as e:
        raise PagesError(f"{name}: cannot read: {e.strerror}") from None
    return _pages(stream, name, kind, on_bad_row)


def _pages(stream: TextIO, name: str, kind: str, on_bad_row: OnBadRow) -> Iterator[Page]:
    readers = {"csv": csv_rows, "jsonl": jsonl_rows, "json": json_rows, "yaml": yaml_rows}
    with stream:
        rows = readers[kind](stream, name, on_bad_row)
        try:
            yield from group_pages(rows)
        except UnicodeDecodeError:
            raise PagesError(f"{name}: not UTF-8 text") from None
