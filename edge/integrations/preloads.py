"""The page's image markup, and the preload hints of its LCP images collected for `<head>`.

A template prints `<head>` before the images below it are known, so `edge_preloads()` prints a
marker while a page is being collected (`collecting()`), and the marker is replaced by the hints
once the whole page is rendered (`Preloads.insert`); the same hints are the page's `Link` header
value, which a server may also send as 103 Early Hints. Outside a collection `edge_preloads()`
prints nothing. One hint per rendition set, whichever image asked first.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Literal

from edge.library import EdgeImages
from rules.markup import ALT_PLACEHOLDER, Markup, Preload

MARKER = "<!--edge-image-cdn:preloads-->"
Form = Literal["img", "picture"]


@dataclass
class Preloads:
    hints: list[Preload] = field(default_factory=list)

    def add(self, markup: Markup, target: Form) -> None:
        for hint in markup.preloads(target):
            if hint not in self.hints:
                self.hints.append(hint)

    def html(self) -> str:
        return "\n".join(hint.html() for hint in self.hints)

    def link_header(self) -> str:
        return ", ".join(hint.link() for hint in self.hints)

    def insert(self, page: str) -> str:
        """The page with the marker replaced by the `<link rel=preload>` elements."""
        return page.replace(MARKER, self.html())


_COLLECTING: ContextVar[Preloads | None] = ContextVar("edge_preloads", default=None)


@contextmanager
def collecting() -> Iterator[Preloads]:
    """Collect the hints of every LCP image rendered inside (one page)."""
    preloads = Preloads()
    token = _COLLECTING.set(preloads)
    try:
        yield preloads
    finally:
        _COLLECTING.reset(token)


def preloads_marker() -> str:
    """What `edge_preloads()` prints: the marker while collecting, else nothing."""
    return MARKER if _COLLECTING.get() is not None else ""


def image_html(
    images: EdgeImages,
    rule: str,
    master: str,
    *,
    alt: str = ALT_PLACEHOLDER,
    form: Form = "img",
    placeholder: bool = False,
) -> str:
    """`edge srcset RULE MASTER --alt ALT [--format picture] [--placeholder]`, as a string; an
    LCP rule's preload hints (for this form) join the page's collection."""
    if form not in ("img", "picture"):
        raise ValueError(f"form must be img or picture, got {form!r}")
    markup = images.markup(rule, master, alt=alt, placeholder=placeholder)
    collected = _COLLECTING.get()
    if collected is not None:
        collected.add(markup, form)
    return markup.picture_html() if form == "picture" else markup.img_html()
