"""Master-path globs, compiled to regular expressions with messages that say what is wrong."""

from __future__ import annotations

import re


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
