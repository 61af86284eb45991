"""CSS lengths for `sizes` slots: `100vw`, `320px`, `20rem`, `calc((100vw - 4rem) / 3)`, `min(...)`.

Parsed once into a small expression tree, evaluated at any viewport width. Font-relative lengths
use the initial font size.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

FONT_PX = 16.0


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
