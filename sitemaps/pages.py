"""Pages manifests: which page shows which masters, read as a stream of pages.

A manifest is CSV (header `page,master`, optional `rule` column), JSON Lines, a JSON array, or YAML.
JSON and YAML rows are `{page, master}` or `{page, masters: [...]}`, each with an optional `rule`.

    page,master,rule
    https://shop.example/boots,products/boot-1.jpg,product
    https://shop.example/boots,products/boot-2.jpg,product

Rows are yielded as `Page`s in input order, adjacent rows of one page merged into one (duplicates
dropped). A page whose rows are not adjacent comes out once per run of rows: merging those would
mean remembering every page of the manifest, so keep a page's rows together (sort by page).

CSV, JSON Lines and JSON arrays are streamed: memory holds one page, whatever the manifest's size.
YAML is parsed whole (PyYAML has no streaming constructor), so it suits manifests of up to about a
hundred thousand rows; use CSV or JSON Lines beyond that.

Every error names the file and line: `pages.csv:12: master is empty`.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO
from urllib.parse import quote, urlsplit

import yaml

from origin.core.paths import is_safe_relative

MAX_URL_CHARS = 2047  # the sitemap protocol: a <loc> is "less than 2,048 characters"
CSV_COLUMNS = ("page", "master", "rule")
ROW_KEYS = ("page", "master", "masters", "rule")
JSON_CHUNK = 1 << 16
MAX_JSON_ROW_CHARS = 16 << 20  # a row bigger than this is taken to be malformed, not read on forever
SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".yaml": "yaml", ".yml": "yaml"}
_WHITESPACE = re.compile(r"[ \t\r\n]*")
_BAD_URL_CHAR = re.compile(r"[\s\x00-\x1f\x7f]")  # whitespace (Unicode's too) and control characters


class PagesError(ValueError):
    """A manifest that cannot be read; the message starts with `file:line:`."""


@dataclass(frozen=True)
class ImageRef:
    master: str  # relative to the masters directory
    rule: str | None = None  # the rule that shows it on this page, if the manifest says


@dataclass(frozen=True)
class Page:
    loc: str  # absolute URL, non-ASCII characters percent-encoded
    images: tuple[ImageRef, ...]
    line: int  # where the page's first row is in the manifest


@dataclass(frozen=True)
class Row:
    line: int
    page: str
    masters: tuple[str, ...]
    rule: str | None


def absolute_url(raw: str, what: str = "page") -> str:
    """`raw` as an absolute http(s) URI, or ValueError saying what is wrong.

    Non-ASCII characters are percent-encoded as UTF-8 and an internationalised host goes to IDNA
    (the IRI-to-URI mapping of RFC 3987, which the sitemap protocol asks for).
    """
    if not raw:
        raise ValueError(f"{what} is empty")
    if _BAD_URL_CHAR.search(raw):
        raise ValueError(f"{what} contains whitespace or a control character: {raw!r}")
    parts = urlsplit(raw)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{what} must be an absolute http(s) URL, got {raw!r}")
    url = raw
    if not raw.isascii():
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
        url = f"{parts.scheme}://{netloc}" + "".join(c if c.isascii() else quote(c) for c in rest)
    if len(url) > MAX_URL_CHARS:
        raise ValueError(f"{what} URL is {len(url)} characters; sitemaps allow at most {MAX_URL_CHARS}")
    return url


def master_path(raw: str) -> str:
    if not raw:
        raise ValueError("master is empty")
    if not is_safe_relative(raw):
        raise ValueError(
            f"master must be a path relative to the masters directory (no leading '/', "
            f"no '.', '..' or hidden parts), got {raw!r}"
        )
    return raw


def make_row(name: str, line: int, page: object, masters: Iterable[object], rule: object) -> Row:
    """A validated row; every error is a PagesError starting with `name:line:`."""
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
    except ValueError as e:
        raise PagesError(f"{name}:{line}: {e}") from None
    return Row(line, loc, tuple(paths), (rule or "").strip() or None)


def group_pages(rows: Iterable[Row]) -> Iterator[Page]:
    """Adjacent rows of one page merged into one Page, its images in order without duplicates."""
    loc: str | None = None
    line = 0
    images: dict[ImageRef, None] = {}
    for row in rows:
        if row.page != loc:
            if loc is not None:
                yield Page(loc, tuple(images), line)
            loc, line, images = row.page, row.line, {}
        for master in row.masters:
            images[ImageRef(master, row.rule)] = None
    if loc is not None:
        yield Page(loc, tuple(images), line)


# CSV


def csv_rows(lines: Iterable[str], name: str) -> Iterator[Row]:
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None:
        raise PagesError(f"{name}:1: empty file; expected a header line 'page,master' (and optionally ',rule')")
    columns = [c.strip().lower() for c in header]
    unknown = [c for c in columns if c not in CSV_COLUMNS]
    if unknown or "page" not in columns or "master" not in columns or len(set(columns)) != len(columns):
        raise PagesError(
            f"{name}:1: the header must name the columns page and master, and optionally rule; got {','.join(header)!r}"
        )
    page_at, master_at = columns.index("page"), columns.index("master")
    rule_at = columns.index("rule") if "rule" in columns else None
    try:
        for cells in reader:
            if not cells or cells == [""]:
                continue  # a blank line
            if rule_at == len(columns) - 1 and len(cells) == rule_at:
                cells.append("")  # the optional rule left off the end of the line
            if len(cells) != len(columns):
                raise PagesError(
                    f"{name}:{reader.line_num}: expected {len(columns)} fields ({','.join(columns)}), got {len(cells)}"
                )
            rule = cells[rule_at] if rule_at is not None else None
            yield make_row(name, reader.line_num, cells[page_at], [cells[master_at]], rule)
    except csv.Error as e:
        raise PagesError(f"{name}:{reader.line_num}: not valid CSV: {e}") from None


# JSON and YAML rows: {page, master} or {page, masters: [...]}, with an optional rule


def mapping_row(name: str, line: int, item: object) -> Row:
    where = f"{name}:{line}"
    if not isinstance(item, dict):
        raise PagesError(f"{where}: expected a row like {{page: ..., master: ...}}, got {type(item).__name__}")
    unknown = sorted(str(k) for k in item if k not in ROW_KEYS)
    if unknown:
        raise PagesError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(ROW_KEYS)})")
    if "page" not in item:
        raise PagesError(f"{where}: page is missing")
    if ("master" in item) == ("masters" in item):
        raise PagesError(f"{where}: give either master (one path) or masters (a list of paths)")
    if "masters" in item:
        masters = item["masters"]
        if not isinstance(masters, list) or not masters:
            raise PagesError(f"{where}: masters must be a non-empty list of paths")
    else:
        masters = [item["master"]]
    return make_row(name, line, item["page"], masters, item.get("rule"))


def jsonl_rows(lines: Iterable[str], name: str) -> Iterator[Row]:
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            item = json.loads(text)
        except json.JSONDecodeError as e:
            raise PagesError(f"{name}:{number}: not valid JSON: {e.msg} (column {e.colno})") from None
        yield mapping_row(name, number, item)


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


def json_rows(stream: TextIO, name: str) -> Iterator[Row]:
    """A `.json` manifest: a JSON array of rows, or JSON Lines when it starts with `{`."""
    first = stream.read(JSON_CHUNK)
    stream.seek(0)
    if first.lstrip().startswith("{"):
        yield from jsonl_rows(stream, name)
        return
    for line, item in _JsonArray(stream, name).items():
        yield mapping_row(name, line, item)


def yaml_rows(stream: TextIO, name: str) -> Iterator[Row]:
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
        yield mapping_row(name, line, item)


def read_pages(path: str | Path) -> Iterator[Page]:
    """The pages of a manifest file, by its suffix (.csv, .jsonl/.ndjson, .json, .yaml/.yml)."""
    path = Path(path)
    name = str(path)
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise PagesError(f"{name}: unknown manifest type; use .csv, .jsonl, .json or .yaml")
    try:
        stream = open(path, encoding="utf-8-sig", newline="" if kind == "csv" else None)
    except OSError as e:
        raise PagesError(f"{name}: cannot read: {e.strerror}") from None
    return _pages(stream, name, kind)


def _pages(stream: TextIO, name: str, kind: str) -> Iterator[Page]:
    with stream:
        if kind == "csv":
            rows = csv_rows(stream, name)
        elif kind == "jsonl":
            rows = jsonl_rows(stream, name)
        elif kind == "json":
            rows = json_rows(stream, name)
        else:
            rows = yaml_rows(stream, name)
        try:
            yield from group_pages(rows)
        except UnicodeDecodeError:
            raise PagesError(f"{name}: not UTF-8 text") from None
