"""What a master path may look like: relative, plain names only (no way out of a store's root)."""

from __future__ import annotations


def is_safe_relative(path: str) -> bool:
    """A relative path of plain names: no '..', '.', empty or hidden segments, no NUL or backslash,
    and text a URL can spell (a file name that is not UTF-8 comes from os.walk with lone
    surrogates: no request names it, and it cannot be signed or printed)."""
    if not path or path.startswith("/") or "\x00" in path or "\\" in path:
        return False
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return all(seg and not seg.startswith(".") for seg in path.split("/"))
