"""C2PA Content Credentials for renditions, through the C2PA SDK (c2pa-python), never hand-made JUMBF.

A rendition of a master that carries a manifest gets a new manifest signed by the origin: the
master (with its manifest) as parent ingredient, and the steps that made the rendition as actions,
`c2pa.opened` (the parent), `c2pa.cropped`, `c2pa.edited` for super-resolution (digital source
type algorithmicallyEnhanced, the model as software agent), `c2pa.resized` and `c2pa.transcoded`.
Masters without one get a manifest only with `[provenance] unmanifested = true`. No thumbnail is
added (the rendition is its own), so the cost in bytes is the parent's manifest and a signature.

`read_credentials` tells what a file's manifest says and whether it validates (`edge provenance`).
The SDK is an optional dependency (`pip install 'edge-image-cdn[c2pa]'`).
"""

from __future__ import annotations

import functools
import hashlib
import io
import threading
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from origin.core.formats import FORMATS
from origin.core.provenance import ProvenanceSettings
from origin.core.software import VERSION


@functools.cache
def _sdk() -> ModuleType | None:
    """The C2PA SDK, imported when provenance first needs it (it adds 8 MB to every process that
    imports it), or None when the optional extra is not installed."""
    try:
        import c2pa
    except ImportError:
        return None
    return c2pa


def _needed() -> ModuleType:
    sdk = _sdk()
    if sdk is None:
        raise ValueError("c2pa = true needs the C2PA SDK: pip install 'edge-image-cdn[c2pa]' (c2pa-python)")
    return sdk


PARENT = "master"  # the parent ingredient's label, which `c2pa.opened` names
ENHANCED = "http://cv.iptc.org/newscodes/digitalsourcetype/algorithmicallyEnhanced"
# The master's loader (origin.imaging.probe) -> the MIME type the SDK reads it as.
MASTER_MIME = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "gif": "image/gif",
    "heif": "image/heif",
    "tiff": "image/tiff",
    "svg": "image/svg+xml",
}
# Renditions carry their own pixels: no thumbnail in their manifests.
BUILDER_SETTINGS = {"builder": {"thumbnail": {"enabled": False}}}


@dataclass(frozen=True)
class Steps:
    """What made a rendition from its master, for the manifest's actions."""

    title: str  # the master's file name
    master_format: str  # the loader's name (MASTER_MIME)
    format: str  # the rendition's (origin.core.formats)
    width: int
    height: int
    cropped: bool = False
    resized: bool = True
    model: str = ""  # the model that made missing pixels (label model@version); empty: none
    scale: int = 0


def actions(steps: Steps) -> list[dict[str, Any]]:
    """The C2PA actions of a rendition, in the order they happened. Pure."""
    made: list[dict[str, Any]] = [{"action": "c2pa.opened", "parameters": {"ingredientIds": [PARENT]}}]
    if steps.cropped:
        made.append({"action": "c2pa.cropped"})
    if steps.model:
        name, _, version = steps.model.partition("@")
        made.append(
            {
                "action": "c2pa.edited",
                "digitalSourceType": ENHANCED,
                "softwareAgent": {"name": name, "version": version or "unknown"},
                "parameters": {"description": f"super-resolution x{steps.scale}"},
            }
        )
    if steps.resized:
        made.append({"action": "c2pa.resized", "parameters": {"width": steps.width, "height": steps.height}})
    made.append({"action": "c2pa.transcoded", "parameters": {"format": FORMATS[steps.format].mime}})
    return made


class Credentials:
    """Signs renditions' manifests with one certificate; safe to share between render threads."""

    def __init__(self, settings: ProvenanceSettings):
        _needed()
        self.settings = settings
        self._cert = _read(settings.cert, "cert")
        self._key = _read(settings.key, "key")
        # Changes whenever the manifests written change: part of every rendition key.
        digest = hashlib.sha256(self._cert).hexdigest()[:16]
        self.fingerprint = f"c2pa={digest},{settings.alg},unmanifested={settings.unmanifested}"
        self._local = threading.local()
        self._signer()  # a bad certificate or key fails at start-up, not on the first miss

    def sign(self, body: bytes, master: bytes, steps: Steps) -> bytes | None:
        """The rendition with its manifest, or None when the master has none and
        `unmanifested` is off (the body is then served as it is)."""
        master_mime = MASTER_MIME.get(steps.master_format, "application/octet-stream")
        if not self.settings.unmanifested and not has_manifest(master, master_mime):
            return None
        mime = FORMATS[steps.format].mime
        manifest = {
            "claim_generator_info": [{"name": "edge-image-cdn", "version": VERSION}],
            "title": steps.title,
            "format": mime,
            "assertions": [{"label": "c2pa.actions", "data": {"actions": actions(steps)}}],
        }
        c2pa = _needed()
        context = c2pa.Context.from_dict(BUILDER_SETTINGS)
        with c2pa.Builder(manifest, context=context) as builder:
            parent = {"title": steps.title, "relationship": "parentOf", "label": PARENT}
            builder.add_ingredient(parent, master_mime, io.BytesIO(master))
            out = io.BytesIO()
            builder.sign(self._signer(), mime, io.BytesIO(body), out)
        return out.getvalue()

    def _signer(self) -> Any:
        signer = getattr(self._local, "signer", None)
        if signer is None:
            c2pa = _needed()
            info = c2pa.C2paSignerInfo(
                self.settings.alg.encode(), self._cert, self._key, self.settings.tsa_url.encode() or None
            )
            try:
                signer = self._local.signer = c2pa.Signer.from_info(info)
            except c2pa.C2paError as e:
                raise ValueError(f"cert/key: the C2PA SDK refuses them: {e}") from None
        return signer


def has_manifest(data: bytes, mime: str) -> bool:
    """Whether the bytes carry a C2PA manifest store the SDK can read (valid or not)."""
    c2pa = _needed()
    try:
        reader = c2pa.Reader.try_create(mime, io.BytesIO(data))
    except c2pa.C2paError:
        return False
    if reader is None:
        return False
    reader.close()
    return True


def read_credentials(data: bytes, mime: str, trust_anchors: str = "") -> dict[str, Any] | None:
    """What a file's C2PA manifest says: {"state", "failures", "generator", "signer", "actions",
    "ingredients"}, or None without one (or without the SDK). `state` is the SDK's: Trusted
    (valid, signed by one of `trust_anchors`, PEM), Valid (valid, signer not trusted here) or
    Invalid (a changed byte, a bad signature...)."""
    c2pa = _sdk()
    if c2pa is None:
        return None
    settings: dict[str, Any] = {"verify": {"verify_trust": bool(trust_anchors)}}
    if trust_anchors:
        settings["trust"] = {"trust_anchors": trust_anchors}
    try:
        reader = c2pa.Reader.try_create(mime, io.BytesIO(data), context=c2pa.Context.from_dict(settings))
    except c2pa.C2paError as e:
        return {"state": "Invalid", "failures": [str(e)]}
    if reader is None:
        return None
    with reader:
        manifest = reader.get_active_manifest() or {}
        results = reader.get_validation_results() or {}
        state = reader.get_validation_state()
    active = results.get("activeManifest", {})
    found = [
        a
        for x in manifest.get("assertions", [])
        if x.get("label", "").startswith("c2pa.actions")
        for a in x["data"]["actions"]
    ]
    return {
        "state": state,
        "failures": [f["code"] for f in active.get("failure", [])],
        "generator": [f"{g.get('name')}/{g.get('version')}" for g in manifest.get("claim_generator_info", [])],
        "signer": (manifest.get("signature_info") or {}).get("issuer", ""),
        "actions": [
            a["action"] + (f" ({a['digitalSourceType'].rsplit('/', 1)[-1]})" if "digitalSourceType" in a else "")
            for a in found
        ],
        "ingredients": [
            {"title": i.get("title"), "relationship": i.get("relationship"), "manifest": bool(i.get("active_manifest"))}
            for i in manifest.get("ingredients", [])
        ],
    }


def _read(path: str, name: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise ValueError(f"{name}: cannot read {path}: {e.strerror}") from None


__all__ = ["Credentials", "Steps", "actions", "has_manifest", "read_credentials"]
