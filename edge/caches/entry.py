"""The stored form of a rendition (disk and S3 tiers): a header, a checksum, the body.

A damaged or partial entry decodes to None, so it is a miss and is rendered again, never served.
"""

from __future__ import annotations

import json

import blake3

from origin.core.rendition import Rendition

MAGIC = b"EDGE-RENDITION-1\n"


def encode_entry(rendition: Rendition) -> bytes:
    meta = {
        "format": rendition.format,
        "width": rendition.width,
        "height": rendition.height,
        "upscale": rendition.upscale,
        "provisional": rendition.provisional,
        "length": len(rendition.body),
        "blake3": blake3.blake3(rendition.body).hexdigest(),
    }
    return MAGIC + json.dumps(meta, sort_keys=True).encode() + b"\n" + rendition.body


def decode_entry(raw: bytes, verify: bool = True) -> Rendition | None:
    """The rendition in a disk entry, or None when the entry is not whole and intact. `verify`
    False skips the checksum (the caller has checked these very bytes before), not the length."""
    if not raw.startswith(MAGIC):
        return None
    head, sep, body = raw[len(MAGIC) :].partition(b"\n")
    try:
        meta = json.loads(head)
        if not sep or len(body) != meta["length"] or (verify and blake3.blake3(body).hexdigest() != meta["blake3"]):
            return None
        provisional = bool(meta.get("provisional", False))  # entries written before upgrades existed: final
        return Rendition(body, meta["format"], meta["width"], meta["height"], meta["upscale"], provisional)
    except (ValueError, KeyError, TypeError):
        return None
