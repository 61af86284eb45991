"""Breakpoint rules, as frozen values: what the loader makes of the YAML files and what markup is built from.

A `RuleSet` holds the named breakpoints, the settings that shape candidate widths, and the rules.
A `Rule` says which masters it applies to (globs), how wide the image's slot is at each breakpoint
(CSS lengths), how the image is framed (aspect, fit, gravity or focal point, crop), which DPRs and
formats to cover, whether it is an LCP candidate, whether super-resolution may enlarge the master,
and optional art direction (another framing from a breakpoint up).

Everything is resolved at load time: breakpoint names become pixel widths, globs become regexes,
lengths become small expression trees, so building markup needs no lookups and cannot fail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING

from cachetools import LRUCache

from edge.options import Crop, RenditionOptions, canonical_query, validate
from edge.problems import Problem

if TYPE_CHECKING:
    from origin.probe import MasterHeader

DEFAULT_BREAKPOINTS = (("sm", 640), ("md", 768), ("lg", 1024), ("xl", 1280), ("2xl", 1536))
BASE = "default"  # the slot / framing below the smallest breakpoint named in a rule
FORMATS = ("avif", "webp", "jpeg", "png", "gif")
FALLBACK_FORMATS = ("jpeg", "png", "gif")  # every browser shows these: the <img> of a <picture>
DEFAULT_FORMATS = (("avif", 50), ("webp", 80), ("jpeg", 80))
DEFAULT_DPRS = (1.0, 2.0, 3.0)
FITS = ("cover", "fill")  # the two fits whose output has exactly the box's aspect: no layout shift
GRAVITIES = ("center", "n", "s", "e", "w", "ne", "nw", "se", "sw", "smart")
ENHANCE = ("auto", "never")
# Font-relative lengths in `sizes` use the initial font size.
FONT_PX = 16.0


# --- CSS lengths -------------------------------------------------------------------------------


class LengthError(ValueError):
    pass


_TOKEN = re.compile(
    r"\s*(?:(?P<num>[0-9]*\.?[0-9]+)(?P<unit>px|vw|rem|em)?|(?P<fn>calc|min|max|clamp)\(|(?P<op>[-+*/(),]))"
)
_UNITS = {"px": (1.0, 0.0), "em": (FONT_PX, 0.0), "rem": (FONT_PX, 0.0), "vw": (0.0, 0.01)}


def _tokens(text: str) -> list[tuple[str, str, str]]:
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].isspace():
            break
        m = _TOKEN.match(text, pos)
        if not m:
            raise LengthError(f"unexpected {text[pos:].strip()[:12]!r}")
        if m.group("num") is not None:
            out.append(("num", m.group("num"), m.group("unit") or ""))
        elif m.group("fn"):
            out.append(("fn", m.group("fn"), ""))
        else:
            out.append(("op", m.group("op"), ""))
        pos = m.end()
    return out


class _Parser:
    """Recursive descent over calc()/min()/max()/clamp() with px, vw, em and rem.

    Nodes are tuples: ("len", px, vw_fraction) for a length, ("num", n) for a plain number,
    (op, a, b) for + - * /, and ("min"|"max", args...), ("clamp", lo, v, hi).
    """

    def __init__(self, text: str):
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> tuple[str, str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, kind: str, value: str | None = None) -> tuple[str, str, str]:
        tok = self.peek()
        if tok is None or tok[0] != kind or (value is not None and tok[1] != value):
            raise LengthError(f"expected {value or kind}")
        self.i += 1
        return tok

    def top(self) -> tuple:
        tok = self.peek()
        if tok is None:
            raise LengthError("empty")
        node = self.function() if tok[0] == "fn" else self.dimension()
        if self.peek() is not None:
            raise LengthError("arithmetic needs calc()")
        return node

    def dimension(self) -> tuple:
        _, num, unit = self.take("num")
        if not unit:
            if float(num) != 0:
                raise LengthError("a length needs a unit")
            return ("len", 0.0, 0.0)
        px, vw = _UNITS[unit]
        return ("len", float(num) * px, float(num) * vw)

    def function(self) -> tuple:
        _, name, _ = self.take("fn")
        args = [self.sum()]
        while self.peek() == ("op", ",", ""):
            self.i += 1
            args.append(self.sum())
        self.take("op", ")")
        if name == "calc" and len(args) == 1:
            return args[0]
        if name in ("min", "max") and args:
            return (name, *args)
        if name == "clamp" and len(args) == 3:
            return ("clamp", *args)
        raise LengthError(f"wrong number of arguments to {name}()")

    def sum(self) -> tuple:
        node = self.product()
        while (tok := self.peek()) and tok[0] == "op" and tok[1] in "+-":
            self.i += 1
            node = (tok[1], node, self.product())
        return node

    def product(self) -> tuple:
        node = self.atom()
        while (tok := self.peek()) and tok[0] == "op" and tok[1] in "*/":
            self.i += 1
            node = (tok[1], node, self.atom())
        return node

    def atom(self) -> tuple:
        tok = self.peek()
        if tok is None:
            raise LengthError("unexpected end")
        if tok[0] == "fn":
            return self.function()
        if tok == ("op", "(", ""):
            self.i += 1
            node = self.sum()
            self.take("op", ")")
            return node
        if tok[0] == "num" and not tok[2]:
            self.i += 1
            return ("num", float(tok[1]))
        return self.dimension()


def _evaluate(node: tuple, viewport: float) -> tuple[float, bool]:
    """(value, is_length) of a node at a viewport width; LengthError on a type error."""
    kind = node[0]
    if kind == "len":
        return node[1] + node[2] * viewport, True
    if kind == "num":
        return node[1], False
    if kind in "+-":
        (a, la), (b, lb) = _evaluate(node[1], viewport), _evaluate(node[2], viewport)
        if la != lb:
            raise LengthError(f"cannot {'add' if kind == '+' else 'subtract'} a number and a length")
        return (a + b if kind == "+" else a - b), la
    if kind == "*":
        (a, la), (b, lb) = _evaluate(node[1], viewport), _evaluate(node[2], viewport)
        if la and lb:
            raise LengthError("cannot multiply two lengths")
        return a * b, la or lb
    if kind == "/":
        (a, la), (b, lb) = _evaluate(node[1], viewport), _evaluate(node[2], viewport)
        if lb:
            raise LengthError("cannot divide by a length")
        if b == 0:
            raise LengthError("division by zero")
        return a / b, la
    values = [_evaluate(arg, viewport) for arg in node[1:]]
    if not all(is_len for _, is_len in values):
        raise LengthError(f"every argument of {kind}() must be a length")
    nums = [v for v, _ in values]
    if kind == "min":
        return min(nums), True
    if kind == "max":
        return max(nums), True
    lo, v, hi = nums
    return max(lo, min(v, hi)), True


@dataclass(frozen=True)
class CssLength:
    """A `sizes` slot width: `100vw`, `320px`, `20rem`, `calc((100vw - 4rem) / 3)`, `min(100vw, 1200px)`."""

    text: str
    tree: tuple = field(repr=False, compare=False)

    @classmethod
    def parse(cls, text: str) -> CssLength:
        """Parse a length, or raise LengthError saying what is wrong."""
        normal = " ".join(text.split())
        tree = _Parser(normal).top()
        value, is_length = _evaluate(tree, 1000.0)
        if not is_length:
            raise LengthError("the result is a number, not a length")
        return cls(normal, tree)

    def px(self, viewport: float) -> float:
        """The slot width in CSS pixels at this viewport width."""
        return _evaluate(self.tree, viewport)[0]

    def __str__(self) -> str:
        return self.text


# --- globs -------------------------------------------------------------------------------------


class GlobError(ValueError):
    pass


def compile_glob(pattern: str) -> re.Pattern[str]:
    """A master-path glob: `*` and `?` within one path segment, `**` for any number of segments,
    `[abc]` / `[!abc]` classes and `{jpg,png}` alternatives. Paths are relative, with `/`."""
    if not pattern:
        raise GlobError("empty pattern")
    if pattern.startswith("/"):
        raise GlobError("master paths are relative: drop the leading '/'")
    if "\\" in pattern:
        raise GlobError("use '/' between folders, not '\\'")
    segments = pattern.split("/")
    if any(s in ("", ".", "..") for s in segments):
        raise GlobError("empty, '.' or '..' path segment")
    parts: list[str] = []
    offset = 0  # of the segment in the pattern, for positions in messages
    for n, seg in enumerate(segments):
        last = n == len(segments) - 1
        offset += len(segments[n - 1]) + 1 if n else 0
        if seg == "**":
            parts.append(".*" if last else "(?:[^/]+/)*")
            continue
        if "**" in seg:
            raise GlobError("'**' must be a whole path segment, as in 'photos/**/*.jpg'")
        parts.append(_segment_regex(seg, offset) + ("" if last else "/"))
    return re.compile("".join(parts))


def _segment_regex(seg: str, offset: int) -> str:
    out, i, in_braces = [], 0, False
    while i < len(seg):
        c = seg[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = seg.find("]", i + 2 if seg[i + 1 : i + 2] in ("!", "]") else i + 1)
            if end < 0:
                raise GlobError(f"'[' at position {offset + i + 1} is never closed")
            body = seg[i + 1 : end]
            negate = body.startswith("!")
            body = body[1:] if negate else body
            if not body:
                raise GlobError("empty character class '[]'")
            out.append("[" + ("^/" if negate else "") + body.replace("\\", "\\\\").replace("^", "\\^") + "]")
            i = end
        elif c == "]":
            raise GlobError(f"']' at position {offset + i + 1} has no '['")
        elif c == "{":
            if in_braces:
                raise GlobError("'{...}' alternatives cannot be nested")
            in_braces = True
            out.append("(?:")
        elif c == "}":
            if not in_braces:
                raise GlobError(f"'}}' at position {offset + i + 1} has no '{{'")
            in_braces = False
            out.append(")")
        elif c == "," and in_braces:
            out.append("|")
        else:
            out.append(re.escape(c))
        i += 1
    if in_braces:
        raise GlobError("'{' is never closed")
    return "".join(out)


# --- the model ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Location:
    """Where something was declared, for messages: `rules/site.yaml:14`."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Breakpoint:
    name: str
    min_width: int  # CSS pixels; the breakpoint applies from this viewport width up


@dataclass(frozen=True)
class Slot:
    """The image's displayed width from a breakpoint up (until the next slot's breakpoint)."""

    breakpoint: str  # a breakpoint name, or BASE
    min_width: int  # 0 for BASE
    length: CssLength


@dataclass(frozen=True)
class Framing:
    """How the master is cut: an aspect (width / height) with fit and gravity or focal point, a crop."""

    aspect: Fraction | None = None  # None: the master's own (or its crop's) aspect
    fit: str = "cover"
    gravity: str = "center"  # or "focal" with `focal`
    focal: tuple[float, float] | None = None
    crop: Crop | None = None

    def rendition(self, width: int, height: int | None) -> RenditionOptions:
        """Options for one candidate (dpr 1: `w` is in device pixels), before format and version."""
        if self.aspect is None:
            return RenditionOptions(w=width, crop=self.crop)
        fx, fy = self.focal if self.focal else (None, None)
        return RenditionOptions(w=width, h=height, fit=self.fit, g=self.gravity, fx=fx, fy=fy, crop=self.crop)


@dataclass(frozen=True)
class ArtDirection:
    """Another framing from a breakpoint up: a `<source media="(min-width: ...)">` of its own."""

    breakpoint: str
    min_width: int
    framing: Framing


@dataclass(frozen=True)
class Settings:
    """How candidate widths are chosen; the same for every rule of a rule set."""

    merge_step: float = 0.10  # candidates closer than this (relative) are merged into the larger one
    min_viewport: int = 320  # narrowest viewport considered (CSS px)
    max_viewport: int = 1920  # widest viewport considered
    max_width: int = 3840  # no candidate is wider than this (device px)
    # DPRs above 2 only count for viewports up to this width: no screen wider than a phone has 3x pixels.
    high_dpr_max_viewport: int = 768


@dataclass(frozen=True)
class Rule:
    name: str
    masters: tuple[str, ...]  # globs, as written
    sizes: tuple[Slot, ...]  # ascending by min_width, starting with BASE
    framing: Framing = Framing()
    dprs: tuple[float, ...] = DEFAULT_DPRS
    formats: tuple[tuple[str, int], ...] = DEFAULT_FORMATS  # (format, quality), preferred first
    lcp: bool = False
    enhance: str = "auto"  # "auto": super-resolution may double the master's width; "never": it may not
    art: tuple[ArtDirection, ...] = ()  # ascending by min_width
    description: str = ""
    settings: Settings = Settings()
    breakpoints: tuple[int, ...] = tuple(w for _, w in DEFAULT_BREAKPOINTS)  # all of the rule set's, in px
    source: Location | None = field(default=None, compare=False)
    _patterns: tuple[re.Pattern[str], ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self._patterns:
            object.__setattr__(self, "_patterns", tuple(compile_glob(g) for g in self.masters))

    def matches(self, master_path: str) -> bool:
        return any(p.fullmatch(master_path) for p in self._patterns)

    @property
    def fallback_format(self) -> str:
        return self.formats[-1][0]


@dataclass(frozen=True)
class RuleSet:
    breakpoints: tuple[Breakpoint, ...] = tuple(Breakpoint(n, w) for n, w in DEFAULT_BREAKPOINTS)
    rules: tuple[Rule, ...] = ()
    settings: Settings = Settings()
    files: tuple[str, ...] = ()
    # (rule name, master header) -> the canonical keys of every rendition the rule declares for it.
    _declared: LRUCache[tuple[str, MasterHeader], frozenset[str]] = field(
        default_factory=lambda: LRUCache(10_000), init=False, repr=False, compare=False
    )

    def rule(self, name: str) -> Rule | None:
        return next((r for r in self.rules if r.name == name), None)

    def rules_for(self, master_path: str) -> list[Rule]:
        return [r for r in self.rules if r.matches(master_path)]

    def named(self, name: str) -> Rule:
        """The named rule, or a 404 Problem that lists the known ones."""
        rule = self.rule(name)
        if rule is None:
            known = ", ".join(r.name for r in self.rules) or "none"
            raise Problem(404, f"no rule named {name!r} (rules: {known})", {"rule": name})
        return rule

    def rule_for(self, name: str, master_path: str) -> Rule:
        """The named rule, checked to apply to this master: a 404 Problem for an unknown rule,
        a 400 when its globs do not match the master."""
        rule = self.named(name)
        if not rule.matches(master_path):
            globs = ", ".join(rule.masters)
            raise Problem(
                400, f"rule {name!r} does not apply to {master_path!r} (its masters: {globs})", {"rule": name}
            )
        return rule

    def allows(self, master_path: str, opts: RenditionOptions, header: MasterHeader) -> bool:
        """Closed-world mode: whether some rule matching this master declares exactly this rendition.

        Renditions compare by their canonical rendering options (`w`, `h`, `fit`, `g`, `fx`, `fy`,
        `crop`, `q`, `fm`, `dpr`); `v`, `exp` and `kid` are ignored. The master's header is needed
        because the largest candidate of a rule is capped at what this master can give. Answers
        are remembered per rule and master header, so a request pays for one set lookup.
        """
        from rules.srcset import declared_renditions

        wanted = rendition_key(opts)
        for rule in self.rules_for(master_path):
            key = (rule.name, header)
            declared = self._declared.get(key)
            if declared is None:
                declared = self._declared[key] = declared_renditions(rule, header)
            if wanted in declared:
                return True
        return False


def rendition_key(opts: RenditionOptions) -> str:
    """The canonical rendering part of options: equal keys mean the same pixels."""
    return canonical_query(validate(opts), rendering_only=True)
