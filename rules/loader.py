"""Load breakpoint rules from YAML files into a `RuleSet`, with errors a person can act on.

Every error names the file, the line, the key path and what was expected:

    rules/site.yaml:14 rules.hero.sizes.lg: expected a CSS length like 50vw, got "half"

The files are composed into YAML nodes (not plain Python values) so every value keeps its line,
duplicate keys are caught (PyYAML would silently keep the last one), and scalars are read as
written (`aspect: 16:9` is a YAML 1.1 base-60 integer to PyYAML; here it is the ratio 16:9).
All errors of all files are collected and reported together.

A directory's `*.yaml` / `*.yml` files form one rule set: breakpoints and settings may be declared
in any file (twice only with the same value), rule names are unique across files.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from fractions import Fraction
from pathlib import Path

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from origin.core.formats import FALLBACKS, FORMATS
from origin.core.request import AUTO, MAX_BYTES, MIN_BYTES, Crop
from origin.core.request import FITS as URL_FITS
from origin.core.request import GRAVITIES as URL_GRAVITIES
from origin.superres.policy import ENHANCE
from rules.globs import GlobError, compile_glob
from rules.lengths import CssLength, LengthError
from rules.model import (
    BASE,
    DEFAULT_BREAKPOINTS,
    DEFAULT_DPRS,
    DEFAULT_FORMATS,
    FITS,
    GRAVITIES,
    ArtDirection,
    Breakpoint,
    Framing,
    Location,
    Rule,
    RuleSet,
    Settings,
    Slot,
)

TOP_KEYS = ("breakpoints", "settings", "rules")
RULE_KEYS = (
    "description",
    "masters",
    "sizes",
    "aspect",
    "fit",
    "gravity",
    "focal",
    "crop",
    "dprs",
    "formats",
    "quality",
    "max_bytes",
    "lcp",
    "enhance",
    "art",
)
REQUIRED_RULE_KEYS = {
    "masters": 'which masters the rule applies to, e.g. masters: "photos/**/*.jpg"',
    "sizes": "the image's width per breakpoint, e.g. sizes: {default: 100vw, lg: 50vw}",
}
FRAMING_KEYS = ("aspect", "fit", "gravity", "focal", "crop")
SETTING_KEYS = tuple(f.name for f in fields(Settings))
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
BREAKPOINT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")
ASPECT = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(?:[:/]\s*([0-9]+(?:\.[0-9]+)?))?\s*")
YAML_MERGE = "tag:yaml.org,2002:merge"
YAML_STR = "tag:yaml.org,2002:str"
YAML_NULL = "tag:yaml.org,2002:null"
YAML_BOOL = "tag:yaml.org,2002:bool"
YAML_INT = "tag:yaml.org,2002:int"
YAML_FLOAT = "tag:yaml.org,2002:float"


@dataclass(frozen=True)
class RuleError:
    file: str
    line: int
    path: str  # key path: rules.hero.sizes.lg, rules.hero.masters[1]
    message: str

    def __str__(self) -> str:
        return (
            f"{self.file}:{self.line} {self.path}: {self.message}"
            if self.path
            else f"{self.file}:{self.line}: {self.message}"
        )


class RulesInvalid(Exception):
    def __init__(self, errors: list[RuleError]):
        super().__init__("\n".join(map(str, errors)))
        self.errors = errors


def load_rules(source: str | Path | Iterable[str | Path]) -> RuleSet:
    """The rule set of a directory (every *.yaml / *.yml in it), one file, or several files.
    Raises RulesInvalid with every error found."""
    ruleset, errors = check_rules(source)
    if errors:
        raise RulesInvalid(errors)
    assert ruleset is not None
    return ruleset


def rule_files(source: str | Path | Iterable[str | Path]) -> list[Path]:
    if isinstance(source, (str, Path)):
        path = Path(source)
        if path.is_dir():
            return sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
        return [path]
    return [Path(p) for p in source]


def check_rules(source: str | Path | Iterable[str | Path]) -> tuple[RuleSet | None, list[RuleError]]:
    """(rule set, []) when every file is valid, else (None, every error in file and line order)."""
    files = rule_files(source)
    if not files:
        return None, [RuleError(str(source), 0, "", "no *.yaml rule files here")]
    parsed = [_read(path) for path in files]
    errors = [e for f in parsed for e in f.errors]
    breakpoints, settings, shared_errors = _shared(parsed)
    errors += shared_errors + _drop_duplicate_rules(parsed)
    rules: list[Rule] = []
    for f in parsed:
        rules += f.build_rules(breakpoints, settings)
        errors += f.rule_errors
    if errors:
        order = {f.name: i for i, f in enumerate(parsed)}
        return None, sorted(errors, key=lambda e: (order.get(e.file, -1), e.line))
    ordered = tuple(Breakpoint(n, w) for n, w in sorted(breakpoints.items(), key=lambda item: item[1]))
    return RuleSet(ordered, tuple(rules), settings, tuple(f.name for f in parsed)), []


def _read(path: Path) -> _File:
    f = _File(str(path))
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        f.error_at(0, "", f"cannot read: {e}")
    else:
        f.parse(text)
    return f


def _shared(parsed: list[_File]) -> tuple[dict[str, int], Settings, list[RuleError]]:
    """Breakpoints and settings, shared by all files: a name given twice must have one value."""
    errors: list[RuleError] = []
    breakpoints: dict[str, tuple[int, Location]] = {}
    settings: dict[str, tuple[object, Location]] = {}
    for f in parsed:
        sections = (("breakpoints", breakpoints, f.breakpoints), ("settings", settings, f.settings))
        for section, merged, declared in sections:
            for name, (value, where) in declared.items():
                if name in merged and merged[name][0] != value:
                    other, first = merged[name]
                    message = f"is {value} here but {other} at {first}"
                    errors.append(RuleError(f.name, where.line, f"{section}.{name}", message))
                merged.setdefault(name, (value, where))  # type: ignore[arg-type]
    widths: dict[int, str] = {}
    for name, (value, where) in breakpoints.items():
        if value in widths:
            message = f"has the same width, {value}, as {widths[value]}"
            errors.append(RuleError(where.file, where.line, f"breakpoints.{name}", message))
        widths.setdefault(value, name)
    resolved = Settings(**{k: v for k, (v, _) in settings.items()})  # type: ignore[arg-type]
    if resolved.min_viewport >= resolved.max_viewport:
        where = (settings.get("min_viewport") or settings["max_viewport"])[1]
        errors.append(RuleError(where.file, where.line, "settings", "min_viewport must be below max_viewport"))
    named = {n: v for n, (v, _) in breakpoints.items()} or dict(DEFAULT_BREAKPOINTS)
    return named, resolved, errors


def _drop_duplicate_rules(parsed: list[_File]) -> list[RuleError]:
    """Rule names are unique across files: a second definition is an error and is not built."""
    errors = []
    defined: dict[str, Location] = {}
    for f in parsed:
        kept = []
        for name, key, node in f.rule_nodes:
            where = Location(f.name, key.start_mark.line + 1)
            if name in defined:
                message = f"rule {name!r} is already defined at {defined[name]}"
                errors.append(RuleError(f.name, where.line, f"rules.{name}", message))
                continue
            defined[name] = where
            kept.append((name, key, node))
        f.rule_nodes = kept
    return errors


# --- one file ----------------------------------------------------------------------------------


def _got(node: Node) -> str:
    """How a value is shown in `got ...`: strings quoted, numbers as written, lists and mappings named."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if node.tag == YAML_NULL:
        return "nothing"
    if node.tag == YAML_STR:
        return json.dumps(node.value)
    return str(node.value)


def _decimals(value: float) -> int:
    text = repr(float(value))
    return 0 if "e" in text else len(text.partition(".")[2].rstrip("0"))


@dataclass
class _File:
    name: str
    errors: list[RuleError] = field(default_factory=list)
    rule_errors: list[RuleError] = field(default_factory=list)
    breakpoints: dict[str, tuple[int, Location]] = field(default_factory=dict)
    settings: dict[str, tuple[object, Location]] = field(default_factory=dict)
    rule_nodes: list[tuple[str, Node, Node]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._constructor = SafeConstructor()
        self._sink = self.errors

    # -- errors and node access --

    def error_at(self, line: int, path: str, message: str) -> None:
        self._sink.append(RuleError(self.name, line, path, message))

    def error(self, node: Node, path: str, message: str) -> None:
        self.error_at(node.start_mark.line + 1, path, message)

    def expected(self, node: Node, path: str, what: str) -> None:
        self.error(node, path, f"expected {what}, got {_got(node)}")

    def value(self, node: Node) -> object:
        if not isinstance(node, ScalarNode):
            return node
        try:
            return self._constructor.construct_object(node)
        except (ConstructorError, ValueError):
            return node.value

    def mapping(self, node: Node, path: str, what: str) -> dict[str, tuple[Node, Node]] | None:
        """The keys of a mapping node with their key and value nodes: duplicate keys are errors,
        `<<: *anchor` merges are applied (explicit keys win)."""
        if not isinstance(node, MappingNode):
            self.expected(node, path, what)
            return None
        merged: dict[str, tuple[Node, Node]] = {}
        explicit: dict[str, tuple[Node, Node]] = {}
        for key, value in node.value:
            if key.tag == YAML_MERGE:
                for source in value.value if isinstance(value, SequenceNode) else [value]:
                    merged |= self.mapping(source, path, "a mapping to merge (<<: *anchor)") or {}
                continue
            if not isinstance(key, ScalarNode):
                self.error(key, path, "keys must be plain names, not lists or mappings")
                continue
            name = str(key.value)
            sub = f"{path}.{name}" if path else name
            if name in explicit:
                self.error(key, sub, f"duplicate key (first at line {explicit[name][0].start_mark.line + 1})")
                continue
            explicit[name] = (key, value)
        return merged | explicit

    def known_keys(self, items: dict[str, tuple[Node, Node]], path: str, known: tuple[str, ...]) -> None:
        for name, (key, _) in items.items():
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                hint = f'did you mean "{close[0]}"? ' if close else ""
                sub = f"{path}.{name}" if path else name
                self.error(key, sub, f"unknown key ({hint}expected one of: {', '.join(known)})")

    def integer(self, node: Node, path: str, lo: int, hi: int, what: str) -> int | None:
        v = self.value(node)
        if node.tag != YAML_INT or not isinstance(v, int) or not lo <= v <= hi:
            self.expected(node, path, what)
            return None
        return v

    def number(self, node: Node, path: str, lo: float, hi: float, places: int, what: str) -> float | None:
        v = self.value(node)
        numeric = node.tag in (YAML_INT, YAML_FLOAT) and isinstance(v, (int, float)) and not isinstance(v, bool)
        if not numeric or not isinstance(v, (int, float)) or not lo <= v <= hi or _decimals(v) > places:
            self.expected(node, path, what)
            return None
        return float(v)

    def string(self, node: Node, path: str, what: str) -> str | None:
        if not isinstance(node, ScalarNode) or node.tag != YAML_STR:
            self.expected(node, path, what)
            return None
        return node.value

    def choice(self, node: Node, path: str, choices: tuple[str, ...]) -> str | None:
        text = ", ".join(choices)
        if not isinstance(node, ScalarNode) or node.tag != YAML_STR or node.value not in choices:
            self.expected(node, path, f"one of {text}")
            return None
        return node.value

    # -- the file --

    def parse(self, text: str) -> None:
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            line = mark.line + 1 if mark else 0
            self.error_at(line, "", f"not valid YAML: {e.problem or e.context}")
            return
        except yaml.YAMLError as e:
            self.error_at(0, "", f"not valid YAML: {e}")
            return
        if root is None:
            return  # an empty file declares nothing
        top = self.mapping(root, "", "a mapping with breakpoints, settings and rules")
        if top is None:
            return
        self.known_keys(top, "", TOP_KEYS)
        if "breakpoints" in top:
            self.parse_breakpoints(top["breakpoints"][1])
        if "settings" in top:
            self.parse_settings(top["settings"][1])
        if "rules" in top:
            rules = self.mapping(top["rules"][1], "rules", "a mapping of rule names to rules")
            for name, (key, value) in (rules or {}).items():
                if not NAME.fullmatch(name):
                    self.error(
                        key, f"rules.{name}", "a rule name is letters, digits, '-', '_' and '.' (it appears in URLs)"
                    )
                    continue
                self.rule_nodes.append((name, key, value))

    def parse_breakpoints(self, node: Node) -> None:
        items = self.mapping(node, "breakpoints", "a mapping of names to widths, e.g. {sm: 640, md: 768}")
        for name, (key, value) in (items or {}).items():
            path = f"breakpoints.{name}"
            if name == BASE:
                self.error(key, path, f'"{BASE}" is the slot below the smallest breakpoint: choose another name')
            elif not BREAKPOINT_NAME.fullmatch(name):
                self.error(key, path, "a breakpoint name is letters, digits, '-' and '_'")
            elif (width := self.integer(value, path, 1, 8192, "a viewport width in CSS pixels like 768")) is not None:
                self.breakpoints[name] = (width, Location(self.name, value.start_mark.line + 1))

    def parse_settings(self, node: Node) -> None:
        items = self.mapping(node, "settings", "a mapping of settings")
        if items is None:
            return
        self.known_keys(items, "settings", SETTING_KEYS)
        for name, (_, value) in items.items():
            path = f"settings.{name}"
            parsed: object = None
            if name == "merge_step":
                parsed = self.number(value, path, 0, 0.5, 3, "a fraction 0..0.5 like 0.1 (10 %)")
            elif name in SETTING_KEYS:
                parsed = self.integer(value, path, 1, 8192, "a width in pixels 1..8192")
            if parsed is not None:
                self.settings[name] = (parsed, Location(self.name, value.start_mark.line + 1))

    # -- rules --

    def build_rules(self, breakpoints: dict[str, int], settings: Settings) -> list[Rule]:
        self._sink = self.rule_errors
        rules = []
        for name, key, node in self.rule_nodes:
            before = len(self.rule_errors)
            rule = self.parse_rule(name, key, node, breakpoints, settings)
            if rule is not None and len(self.rule_errors) == before:
                rules.append(rule)
        self._sink = self.errors
        return rules

    def parse_rule(
        self, name: str, key: Node, node: Node, breakpoints: dict[str, int], settings: Settings
    ) -> Rule | None:
        path = f"rules.{name}"
        items = self.mapping(node, path, "a mapping with masters, sizes and more")
        if items is None:
            return None
        self.known_keys(items, path, RULE_KEYS)
        for required, example in REQUIRED_RULE_KEYS.items():
            if required not in items:
                self.error(key, path, f'missing required key "{required}" ({example})')

        def val(k: str) -> Node | None:
            return items[k][1] if k in items else None

        description = ""
        if (n := val("description")) is not None:
            description = self.string(n, f"{path}.description", "a text") or ""
        masters = self.parse_masters(val("masters"), f"{path}.masters")
        sizes = self.parse_sizes(val("sizes"), f"{path}.sizes", breakpoints)
        framing = self.parse_framing(items, path)
        dprs = self.parse_dprs(val("dprs"), f"{path}.dprs")
        rule_quality = self.parse_quality(val("quality"), f"{path}.quality")
        formats = self.parse_formats(val("formats"), f"{path}.formats", rule_quality)
        max_bytes = None
        if (n := val("max_bytes")) is not None:
            max_bytes = self.integer(
                n, f"{path}.max_bytes", MIN_BYTES, MAX_BYTES, f"a size in bytes, {MIN_BYTES}..{MAX_BYTES}"
            )
        lcp = False
        if (n := val("lcp")) is not None:
            if n.tag != YAML_BOOL:
                self.expected(n, f"{path}.lcp", "true or false")
            else:
                lcp = bool(self.value(n))
        enhance = "auto"
        if (n := val("enhance")) is not None:
            enhance = self.choice(n, f"{path}.enhance", ENHANCE) or enhance
        art = self.parse_art(val("art"), f"{path}.art", breakpoints)
        if masters is None or sizes is None or framing is None or art is None:
            return None
        return Rule(
            name=name,
            masters=masters,
            sizes=sizes,
            framing=framing,
            dprs=dprs,
            formats=formats,
            quality=rule_quality,
            max_bytes=max_bytes,
            lcp=lcp,
            enhance=enhance,
            art=art,
            description=description,
            settings=settings,
            breakpoints=tuple(sorted(breakpoints.values())),
            source=Location(self.name, key.start_mark.line + 1),
        )

    def parse_masters(self, node: Node | None, path: str) -> tuple[str, ...] | None:
        if node is None:
            return None
        what = 'a glob like "photos/**/*.jpg" or a list of them'
        if isinstance(node, SequenceNode):
            items = [(f"{path}[{i}]", n) for i, n in enumerate(node.value)]
            if not items:
                self.expected(node, path, what)
                return None
        else:
            items = [(path, node)]
        globs = []
        for sub, n in items:
            pattern = self.string(n, sub, what)
            if pattern is None:
                continue
            try:
                compile_glob(pattern)
            except GlobError as e:
                self.error(n, sub, f"invalid glob {json.dumps(pattern)}: {e}")
                continue
            globs.append(pattern)
        return tuple(globs) if len(globs) == len(items) else None

    def length(self, node: Node, path: str) -> CssLength | None:
        what = "a CSS length like 50vw, 320px or calc(100vw - 2rem)"
        if not isinstance(node, ScalarNode) or node.tag not in (YAML_STR, YAML_INT):
            self.expected(node, path, what)
            return None
        try:
            return CssLength.parse(str(node.value))
        except LengthError as e:
            self.error(node, path, f"expected {what}, got {_got(node)} ({e})")
            return None

    def parse_sizes(self, node: Node | None, path: str, breakpoints: dict[str, int]) -> tuple[Slot, ...] | None:
        if node is None:
            return None
        if isinstance(node, ScalarNode):
            length = self.length(node, path)
            return (Slot(BASE, 0, length),) if length else None
        items = self.mapping(node, path, "a CSS length, or a mapping of breakpoints to CSS lengths")
        if items is None:
            return None
        slots, ok = [], True
        for name, (key, value) in items.items():
            sub = f"{path}.{name}"
            if name != BASE and name not in breakpoints:
                self.error(key, sub, self.unknown_breakpoint(name, breakpoints, with_base=True))
                ok = False
                continue
            length = self.length(value, sub)
            if length is None:
                ok = False
                continue
            slots.append(Slot(name, breakpoints.get(name, 0), length))
        if BASE not in items:
            self.error(node, path, f'missing required key "{BASE}" (the width below the smallest breakpoint given)')
            return None
        return tuple(sorted(slots, key=lambda s: s.min_width)) if ok else None

    def unknown_breakpoint(self, name: str, breakpoints: dict[str, int], with_base: bool) -> str:
        known = ", ".join(([BASE] if with_base else []) + sorted(breakpoints, key=breakpoints.__getitem__))
        return f"unknown breakpoint {json.dumps(name)} (known: {known})"

    def parse_framing(self, items: dict[str, tuple[Node, Node]], path: str) -> Framing | None:
        ok = True
        aspect = fit = gravity = focal = crop = None
        if "aspect" in items:
            aspect = self.parse_aspect(items["aspect"][1], f"{path}.aspect")
            ok &= aspect is not None
        if "fit" in items:
            node = items["fit"][1]
            if isinstance(node, ScalarNode) and node.value in URL_FITS and node.value not in FITS:
                why = "cover crops to the aspect, fill stretches to it; other fits give another shape than the markup"
                self.error(node, f"{path}.fit", f"expected one of {', '.join(FITS)} ({why}), got {_got(node)}")
                ok = False
            else:
                fit = self.choice(node, f"{path}.fit", FITS)
                ok &= fit is not None
        if "gravity" in items:
            choices = (*GRAVITIES, "focal")
            gravity = self.choice(items["gravity"][1], f"{path}.gravity", choices)
            ok &= gravity is not None
        if "focal" in items:
            focal = self.parse_focal(items["focal"][1], f"{path}.focal")
            ok &= focal is not None
            if gravity not in (None, "focal"):
                self.error(
                    items["focal"][0], f"{path}.focal", f"give either gravity ({gravity}) or a focal point, not both"
                )
                ok = False
        elif gravity == "focal":
            self.error(items["gravity"][1], f"{path}.gravity", "gravity focal needs a focal point: focal: [0.5, 0.3]")
            ok = False
        if "crop" in items:
            crop = self.parse_crop(items["crop"][1], f"{path}.crop")
            ok &= crop is not None
        if aspect is None and "aspect" not in items:
            for k in ("fit", "gravity", "focal"):
                if k in items:
                    self.error(
                        items[k][0], f"{path}.{k}", "only matters with an aspect: without one the image keeps its shape"
                    )
                    ok = False
        if not ok:
            return None
        assert gravity is None or gravity in URL_GRAVITIES
        return Framing(aspect, fit or "cover", "focal" if focal else gravity or "center", focal, crop)

    def parse_aspect(self, node: Node, path: str) -> Fraction | None:
        what = 'an aspect ratio like "16:9", "4/3" or 1.5'
        # Read as written: PyYAML would make an unquoted 16:9 the base-60 integer 969.
        m = ASPECT.fullmatch(str(node.value)) if isinstance(node, ScalarNode) and node.tag != YAML_NULL else None
        if not m:
            self.expected(node, path, what)
            return None
        num, den = Fraction(m.group(1)), Fraction(m.group(2) or 1)
        if den == 0 or not Fraction(1, 10) <= num / den <= 10:
            self.error(node, path, f"expected {what} between 1:10 and 10:1, got {_got(node)}")
            return None
        return (num / den).limit_denominator(10000)

    def parse_focal(self, node: Node, path: str) -> tuple[float, float] | None:
        what = "a focal point [x, y], fractions of width and height 0..1"
        if not isinstance(node, SequenceNode) or len(node.value) != 2:
            self.expected(node, path, what)
            return None
        x, y = (
            self.number(n, f"{path}[{i}]", 0, 1, 4, "a fraction 0..1 with at most 4 decimals")
            for i, n in enumerate(node.value)
        )
        return (x, y) if x is not None and y is not None else None

    def parse_crop(self, node: Node, path: str) -> Crop | None:
        what = "a region [x, y, width, height] in master pixels"
        if not isinstance(node, SequenceNode) or len(node.value) != 4:
            self.expected(node, path, what)
            return None
        names = ("x", "y", "width", "height")
        values = [
            self.integer(
                n, f"{path}[{i}]", 0 if i < 2 else 1, 10**6, f"{names[i]}: an integer {0 if i < 2 else 1} or more"
            )
            for i, n in enumerate(node.value)
        ]
        if any(v is None for v in values):
            return None
        return Crop(*values)  # type: ignore[arg-type]

    def parse_dprs(self, node: Node | None, path: str) -> tuple[float, ...]:
        if node is None:
            return DEFAULT_DPRS
        if not isinstance(node, SequenceNode) or not node.value:
            self.expected(node, path, "a list of device pixel ratios like [1, 2, 3]")
            return DEFAULT_DPRS
        dprs: list[float] = []
        for i, n in enumerate(node.value):
            d = self.number(n, f"{path}[{i}]", 1, 4, 2, "a device pixel ratio 1..4 with at most 2 decimals")
            if d is not None and d in dprs:
                self.error(n, f"{path}[{i}]", f"{d:g} is listed twice")
            elif d is not None:
                dprs.append(d)
        return tuple(sorted(dprs)) or DEFAULT_DPRS

    def parse_quality(self, node: Node | None, path: str) -> int | str | None:
        """A quality: `auto` (the SSIMULACRA2 target the server is configured with) or 1..100."""
        if node is None or node.tag == YAML_NULL:
            return None
        if node.tag == YAML_STR and node.value == AUTO:
            return AUTO
        return self.integer(node, path, 1, 100, "auto or a quality 1..100")

    def parse_formats(
        self, node: Node | None, path: str, rule_quality: int | str | None = None
    ) -> tuple[tuple[str, int | str], ...]:
        """(format, quality) pairs: a list takes each format's default quality (or the rule's
        `quality`), a mapping names one per format; lossless formats carry 0."""
        if node is None:
            return _with_quality(DEFAULT_FORMATS, rule_quality)
        formats: list[tuple[str, int | str]] = []
        what = "formats, preferred first: a list like [avif, webp, jpeg] or a mapping of format to quality"
        if isinstance(node, SequenceNode):
            entries = [(f"{path}[{i}]", n, None) for i, n in enumerate(node.value)]
        elif isinstance(node, MappingNode):
            items = self.mapping(node, path, what) or {}
            entries = [(f"{path}.{name}", key, value) for name, (key, value) in items.items()]
        else:
            self.expected(node, path, what)
            return _with_quality(DEFAULT_FORMATS, rule_quality)
        if not entries:
            self.expected(node, path, what)
            return _with_quality(DEFAULT_FORMATS, rule_quality)
        seen: set[str] = set()
        for sub, name_node, q_node in entries:
            fmt = self.choice(name_node, sub, tuple(FORMATS))
            if fmt is None:
                continue
            if fmt in seen:
                self.error(name_node, sub, f"{fmt} is listed twice")
                continue
            seen.add(fmt)
            row = FORMATS[fmt]
            quality: int | str | None = (rule_quality or row.default_quality) if row.lossy else None
            if q_node is not None and q_node.tag != YAML_NULL:
                if not row.lossy:
                    self.error(q_node, sub, f"{fmt} is lossless: it takes no quality (write {fmt}: null)")
                    continue
                quality = self.parse_quality(q_node, sub)
                if quality is None:
                    continue
            formats.append((fmt, quality or 0))
        if formats and formats[-1][0] not in FALLBACKS:
            sub, last, _ = entries[-1]
            choices = ", ".join(FALLBACKS)
            self.error(
                last,
                sub,
                f"the last format is the <img> fallback every browser must show: one of {choices}, "
                f"got {formats[-1][0]}",
            )
        return tuple(formats) or _with_quality(DEFAULT_FORMATS, rule_quality)

    def parse_art(self, node: Node | None, path: str, breakpoints: dict[str, int]) -> tuple[ArtDirection, ...] | None:
        if node is None:
            return ()
        items = self.mapping(node, path, "a mapping of breakpoints to framings, e.g. {md: {aspect: '16:9'}}")
        if items is None:
            return None
        art, ok = [], True
        for name, (key, value) in items.items():
            sub = f"{path}.{name}"
            if name == BASE:
                self.error(
                    key,
                    sub,
                    "the rule's own aspect/fit/gravity is the default framing: art direction starts at a breakpoint",
                )
                ok = False
                continue
            if name not in breakpoints:
                self.error(key, sub, self.unknown_breakpoint(name, breakpoints, with_base=False))
                ok = False
                continue
            framing_items = self.mapping(value, sub, f"a framing: a mapping of {', '.join(FRAMING_KEYS)}")
            if framing_items is None:
                ok = False
                continue
            self.known_keys(framing_items, sub, FRAMING_KEYS)
            framing = self.parse_framing(framing_items, sub)
            if framing is None:
                ok = False
                continue
            art.append(ArtDirection(name, breakpoints[name], framing))
        return tuple(sorted(art, key=lambda a: a.min_width)) if ok else None


def _with_quality(
    formats: tuple[tuple[str, int | str], ...], quality: int | str | None
) -> tuple[tuple[str, int | str], ...]:
    """The formats with the rule's quality for every lossy one (when the rule gives one)."""
    if quality is None:
        return formats
    return tuple((fmt, quality if FORMATS[fmt].lossy else q) for fmt, q in formats)
