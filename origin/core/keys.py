"""Names of renditions in the caches (and their ETags): one key per representation.

A key starts with the master's id, so every rendition of a master can be purged by prefix, and
hashes what makes the bytes: the pipeline version, the master's version, the rendering options
with the format, and a fingerprint of every setting that changes pixels or encoding (the encoder
settings, default qualities, output limits, and the super-resolution model that made the pixels).
"""

from __future__ import annotations

from dataclasses import replace

import blake3  # the project's one hash: versions, keys and cache checksums

from origin.core.request import RenditionOptions, shape_key

# Bump when the pipeline's output changes for the same inputs: every cached rendition and ETag moves.
# 3: keys name the super-resolution model and hash the encoder settings by name.
# 4: renditions keep the master's IPTC Digital Source Type, and model-made ones (which now keep the
#    rights too) declare algorithmicallyEnhanced with an xmpMM:History event.
PIPELINE_VERSION = "4"


def master_tag(master_path: str) -> str:
    """A master's id: what every rendition key of it starts with, and its CDN purge tag."""
    return blake3.blake3(master_path.encode()).hexdigest()[:16]


def master_id(master_path: str) -> str:
    """The prefix every rendition key of one master starts with, whatever its version: for purges."""
    return master_tag(master_path) + "-"


def tag_of(rendition_key: str) -> str:
    """The master_tag a rendition key starts with."""
    return rendition_key.partition("-")[0]


def rendition_key(master_path: str, version: str, opts: RenditionOptions, fmt: str, fingerprint: str) -> str:
    """Names one representation: master version + what shapes the pixels + format + settings."""
    material = "\n".join((PIPELINE_VERSION, version, shape_key(replace(opts, fm=fmt)), fingerprint))
    return master_id(master_path) + blake3.blake3(material.encode()).hexdigest()[:32]
