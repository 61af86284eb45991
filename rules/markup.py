"""Markup from a rule and a master: `<img>`, `<picture>`, preload hints, `Link` headers, JSON. Pure.

`build_markup(rule, master_path, header, version, sign, capacity)` plans the renditions
(rules.srcset), signs every URL with the `sign(path, options)` callable (edge's
`Signer.url_signer` makes one for a base URL) and returns a `Markup` that renders itself in each
form. Every URL carries the master's version (`v=`), so the markup may be cached as long as the
master does not change.

- `<img>`: one srcset in the negotiated format (`fm=auto`: the server picks AVIF/WebP/JPEG from
  `Accept` and answers `Vary: Accept`); the rule's per-format qualities need an explicit format,
  so these URLs use the server's configured quality per format. An `<img>` has one framing, the
  rule's own: art direction needs the `<picture>`.
- `<picture>`: a `<source type=...>` per format with `fm=` and the rule's `q=` in every URL, for
  CDNs that ignore `Vary: Accept`; art direction adds `<source media=...>` per breakpoint, widest
  first. `<source>` elements carry `width`/`height` too, so an art-directed aspect does not shift
  the layout either.
- LCP rules get `loading="eager"` and `fetchpriority="high"` (others `loading="lazy"`), and preload
  hints: `<link rel="preload" as="image" imagesrcset=... imagesizes=...>` without `href` (a
  browser that knew only `href` would fetch a second, wrong-sized image), and the same as a `Link`
  header value for a page server or CDN to send, also as `103 Early Hints`. For `<picture>` there
  is one hint per art-direction range, for the first (preferred) format with its `type`, so a
  browser that cannot show that format skips the hint instead of fetching twice.

Width/height attributes are the slot's widest CSS size at the output aspect (capped at the largest
candidate), so the browser reserves the right box before any byte arrives; a page's usual
`img { max-width: 100%; height: auto }` makes the box fluid.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Literal

from origin.core.master import MasterHeader
from origin.core.request import RenditionOptions
from rules.model import Rule
from rules.srcset import Capacity, SourcePlan, plan

Sign = Callable[[str, RenditionOptions], str]
Target = Literal["img", "picture"]
ALT_PLACEHOLDER = "TODO: describe this image"


@dataclass(frozen=True)
class SignedCandidate:
    url: str
    width: int
    height: int


@dataclass(frozen=True)
class SourceSet:
    """One srcset with signed URLs: a `<source>`, or the `<img>` of a `<picture>` or on its own."""

    format: str  # "auto" or the format every URL names
    type: str | None  # MIME type for `<source type>`; None for fm=auto
    media: str | None  # `<source media>`: from its breakpoint up
    preload_media: str | None  # for a preload: the same range with both bounds
    sizes: str
    width: int
    height: int
    src: str
    candidates: tuple[SignedCandidate, ...]

    @property
    def srcset(self) -> str:
        return ", ".join(f"{c.url} {c.width}w" for c in self.candidates)

    def to_json(self) -> dict[str, object]:
        return {
            "format": self.format,
            "type": self.type,
            "media": self.media,
            "srcset": self.srcset,
            "sizes": self.sizes,
            "width": self.width,
            "height": self.height,
            "src": self.src,
            "candidates": [{"url": c.url, "width": c.width, "height": c.height} for c in self.candidates],
        }


# HTML attribute names as React (and Preact, Solid's JSX) spell them as props; the others are the same.
REACT_NAMES = {
    "srcset": "srcSet",
    "fetchpriority": "fetchPriority",
    "imagesrcset": "imageSrcSet",
    "imagesizes": "imageSizes",
    "crossorigin": "crossOrigin",
    "class": "className",
}


def _source_attributes(s: SourceSet) -> dict[str, str]:
    attrs = {"type": s.type, "media": s.media, "srcset": s.srcset, "sizes": s.sizes}
    return {k: v for k, v in attrs.items() if v is not None} | {"width": str(s.width), "height": str(s.height)}


def react_props(attributes: dict[str, str]) -> dict[str, str]:
    """The same attributes with React's prop names (`srcSet`, `fetchPriority`), for `<img {...props}>`."""
    return {REACT_NAMES.get(name, name): value for name, value in attributes.items()}


@dataclass(frozen=True)
class Preload:
    """A preload hint for one srcset, as a `<link>` element or a `Link` header value."""

    srcset: str
    sizes: str
    src: str  # only for the `Link` header, whose syntax needs a target; never an `href`
    type: str | None = None
    media: str | None = None

    def attributes(self) -> dict[str, str]:
        attrs = {"rel": "preload", "as": "image", "imagesrcset": self.srcset, "imagesizes": self.sizes}
        if self.type:
            attrs["type"] = self.type
        if self.media:
            attrs["media"] = self.media
        attrs["fetchpriority"] = "high"
        return attrs

    def html(self) -> str:
        return f"<link {_attrs(self.attributes())}>"

    def link(self) -> str:
        """`<url>; rel=preload; as=image; imagesrcset="..."; imagesizes="..."; fetchpriority=high`."""
        parts = [f"<{self.src}>", "rel=preload", "as=image"]
        parts += [f"imagesrcset={_quoted(self.srcset)}", f"imagesizes={_quoted(self.sizes)}"]
        if self.type:
            parts.append(f"type={_quoted(self.type)}")
        if self.media:
            parts.append(f"media={_quoted(self.media)}")
        parts.append("fetchpriority=high")
        return "; ".join(parts)

    def to_json(self) -> dict[str, object]:
        return {"html": self.html(), "link": self.link(), **self.attributes(), "props": react_props(self.attributes())}


@dataclass(frozen=True)
class Markup:
    rule: str
    master: str
    version: str
    lcp: bool
    alt: str
    img: SourceSet  # the plain <img>
    sources: tuple[SourceSet, ...]  # the <picture>'s <source>s, in order
    picture_img: SourceSet  # the <picture>'s <img>
    style: str | None = None  # e.g. a placeholder painted behind the image until it loads

    def img_attributes(self, image: SourceSet | None = None) -> dict[str, str]:
        image = image or self.img
        attrs = {
            "src": image.src,
            "srcset": image.srcset,
            "sizes": image.sizes,
            "width": str(image.width),
            "height": str(image.height),
            "alt": self.alt,
            "loading": "eager" if self.lcp else "lazy",
            "decoding": "async",
        }
        if self.lcp:
            attrs["fetchpriority"] = "high"
        if self.style:
            attrs["style"] = self.style
        return attrs

    def img_html(self) -> str:
        return f"<img {_attrs(self.img_attributes())}>"

    def picture_html(self) -> str:
        lines = ["<picture>"]
        for s in self.sources:
            lines.append(f"  <source {_attrs(_source_attributes(s))}>")
        lines.append(f"  <img {_attrs(self.img_attributes(self.picture_img))}>")
        lines.append("</picture>")
        return "\n".join(lines)

    @property
    def default_target(self) -> Target:
        """The markup a page should use, and so what its preload must describe: `<picture>` when the
        rule art-directs (an `<img>` cannot switch crops), else the negotiated `<img>`."""
        return "picture" if any(s.media for s in self.sources) else "img"

    def preloads(self, target: Target = "img") -> tuple[Preload, ...]:
        """Preload hints matching the `<img>` or the `<picture>` markup; none unless the rule is LCP."""
        if not self.lcp:
            return ()
        if target == "img":
            return (Preload(self.img.srcset, self.img.sizes, self.img.src),)
        # The first source of each viewport range is the one a browser that shows its type picks.
        first: dict[str | None, SourceSet] = {}
        for s in (*self.sources, self.picture_img):
            first.setdefault(s.preload_media, s)
        return tuple(Preload(s.srcset, s.sizes, s.src, s.type, s.preload_media) for s in first.values())

    def preload_html(self, target: Target = "img") -> str:
        return "\n".join(p.html() for p in self.preloads(target))

    def link_header(self, target: Target = "img") -> str:
        """The `Link` header value (several hints comma-separated); empty when there is none."""
        return ", ".join(p.link() for p in self.preloads(target))

    def preload_json(self, target: Target = "img") -> dict[str, object]:
        """The preload hints in every form: `html` (`<link>` elements), `link` (the header value), `hints`."""
        return {
            "rule": self.rule,
            "master": self.master,
            "version": self.version,
            "lcp": self.lcp,
            "for": target,
            "html": self.preload_html(target),
            "link": self.link_header(target),
            "hints": [p.to_json() for p in self.preloads(target)],
        }

    def to_json(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "master": self.master,
            "version": self.version,
            "lcp": self.lcp,
            "sizes": self.img.sizes,
            "width": self.img.width,
            "height": self.img.height,
            "img": {
                "html": self.img_html(),
                "attributes": self.img_attributes(),
                "props": react_props(self.img_attributes()),
                **self.img.to_json(),
            },
            "picture": {
                "html": self.picture_html(),
                "sources": [{**s.to_json(), "props": react_props(_source_attributes(s))} for s in self.sources],
                "img": {
                    "attributes": self.img_attributes(self.picture_img),
                    "props": react_props(self.img_attributes(self.picture_img)),
                    **self.picture_img.to_json(),
                },
            },
            "preload": {
                "img": {k: v for k, v in self.preload_json("img").items() if k in ("html", "link", "hints")},
                "picture": {k: v for k, v in self.preload_json("picture").items() if k in ("html", "link", "hints")},
            },
        }

    def json(self) -> str:
        return json.dumps(self.to_json(), indent=2)


def build_markup(
    rule: Rule,
    master_path: str,
    header: MasterHeader,
    version: str,
    sign: Sign,
    capacity: Capacity,
    *,
    alt: str = ALT_PLACEHOLDER,
    style: str | None = None,
) -> Markup:
    """All markup for one rule and one master. Raises a 400 Problem only if the rule's crop lies
    outside this master; check `rule.matches(master_path)` before calling."""
    p = plan(rule, header, capacity)

    def signed(source: SourcePlan) -> SourceSet:
        def url(opts: RenditionOptions) -> str:
            return sign(master_path, replace(opts, v=version))

        return SourceSet(
            format=source.format,
            type=source.mime,
            media=source.media,
            preload_media=source.preload_media,
            sizes=p.sizes,
            width=source.width,
            height=source.height,
            src=url(source.fallback.options),
            candidates=tuple(SignedCandidate(url(c.options), c.width, c.height) for c in source.candidates),
        )

    return Markup(
        rule=rule.name,
        master=master_path,
        version=version,
        lcp=rule.lcp,
        alt=alt,
        img=signed(p.img),
        sources=tuple(signed(s) for s in p.sources),
        picture_img=signed(p.picture_img),
        style=style,
    )


def _attrs(attrs: Mapping[str, str | None]) -> str:
    return " ".join(f'{k}="{html.escape(v, quote=True)}"' for k, v in attrs.items() if v is not None)


def _quoted(value: str) -> str:
    """An RFC 9110 quoted-string."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
