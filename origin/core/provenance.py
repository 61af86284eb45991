"""[provenance] in the configuration: what renditions say about where they came from.

IPTC Digital Source Type, XMP history and rights are written unless `metadata` is off
(origin.imaging.metadata); C2PA
Content Credentials (origin.imaging.credentials) are opt-in, because they need a signing
certificate and add the parent's manifest to every rendition.
"""

from __future__ import annotations

from dataclasses import dataclass

ALGORITHMS = ("es256", "es384", "es512", "ps256", "ps384", "ps512", "ed25519")


@dataclass(frozen=True)
class ProvenanceSettings:
    # Sign a C2PA manifest into every rendition of a master that has one, with the master's
    # manifest as its parent ingredient and the steps that made it as actions.
    c2pa: bool = False
    cert: str = ""  # PEM certificate chain: the signing certificate first, then intermediates
    key: str = ""  # PEM private key of the signing certificate
    alg: str = "es256"  # the key's signature algorithm
    tsa_url: str = ""  # an RFC 3161 time-stamp authority; empty: none (the signature time is unproven)
    # Also give renditions of masters without a manifest one, recording the origin's own steps.
    unmanifested: bool = False
    # Renditions keep the master's rights fields (EXIF, XMP, IPTC) and IPTC Digital Source Type,
    # and declare a model's enhancement (XMP history). Off: renditions carry no metadata at all.
    metadata: bool = True

    def __post_init__(self) -> None:
        if self.alg not in ALGORITHMS:
            raise ValueError(f"alg must be one of {', '.join(ALGORITHMS)}, got {self.alg!r}")
        if self.c2pa and not (self.cert and self.key):
            raise ValueError("cert and key must name the PEM files of the signing certificate when c2pa = true")
