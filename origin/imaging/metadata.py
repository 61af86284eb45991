"""Strip a rendition's metadata down to who owns it and how it may be used.

Renditions keep copyright, artist and licence fields and lose everything else: camera details, GPS
position, dates, comments, ICC profiles (outputs are untagged sRGB). Each kept block is rebuilt from
scratch out of the few fields we allow, never passed through, so nothing unexpected can ride along:

- EXIF: IFD0 Artist and Copyright only, in a fresh little-endian TIFF structure;
- XMP: dc:rights/creator, xmpRights:UsageTerms/WebStatement/Marked/Owner, cc:license/
  attributionName, plus:Licensor/CopyrightOwner;
- IPTC: IIM 2:80 By-line, 2:110 Credit, 2:115 Source, 2:116 Copyright Notice (+ 1:90 charset).

The pure helpers take and return bytes and never raise on malformed input: they keep nothing then.
`keep_rights_only` must run after EXIF autorotation (libvips' `thumbnail` does it), since it drops
the `orientation` field along with the rest of the metadata.
"""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping

import pyvips

__all__ = [
    "build_exif",
    "carry_metadata",
    "declare_enhanced",
    "enhanced_xmp",
    "exif_rights",
    "filter_iptc",
    "filter_xmp",
    "keep_rights_only",
    "rights_of",
    "rights_in",
    "strip_all",
]

# ---------------------------------------------------------------------------------------- EXIF

EXIF_HEADER = b"Exif\0\0"
EXIF_TAGS = {0x013B: "Artist", 0x8298: "Copyright"}  # IFD0 tags we keep, by TIFF tag number
_ASCII = 2  # TIFF field type
MAX_TEXT = 4096  # bytes; longer is no name or notice, and the block must fit one JPEG APP1 segment


def exif_rights(blob: bytes) -> dict[str, str]:
    """Artist and Copyright from IFD0 of an EXIF blob (with or without the `Exif\\0\\0` prefix).

    Either byte order; a malformed blob gives {}. Copyright may hold "photographer\\0editor".
    """
    tiff = blob.removeprefix(EXIF_HEADER)
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None:
        return {}
    try:
        magic, ifd = struct.unpack_from(order + "HI", tiff, 2)
        if magic != 42:
            return {}
        (count,) = struct.unpack_from(order + "H", tiff, ifd)
        found = {}
        for i in range(count):
            tag, kind, size, inline = struct.unpack_from(order + "HHI4s", tiff, ifd + 2 + 12 * i)
            if tag in EXIF_TAGS and kind == _ASCII and size <= MAX_TEXT:
                text = _exif_text(tiff, order, size, inline)
                if text:
                    found[EXIF_TAGS[tag]] = text
        return found
    except struct.error:  # a count or offset pointing past the end
        return {}


def _exif_text(tiff: bytes, order: str, size: int, inline: bytes) -> str | None:
    """An ASCII value: stored in the entry itself when it fits in 4 bytes, else at an offset."""
    if size <= 4:
        raw = inline[:size]
    else:
        (offset,) = struct.unpack(order + "I", inline)
        if offset + size > len(tiff):
            return None
        raw = tiff[offset : offset + size]
    raw = raw.rstrip(b"\0")
    if not raw.strip():
        return None
    try:
        return raw.decode("utf-8")  # "ASCII" in the spec, UTF-8 in practice
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def build_exif(fields: Mapping[str, str]) -> bytes:
    """A minimal EXIF APP1 payload: `Exif\\0\\0`, little-endian TIFF header, one IFD0 of ASCII tags.

    `fields` maps "Artist" / "Copyright" to text; any other name is a KeyError.
    """
    tag_of = {name: tag for tag, name in EXIF_TAGS.items()}
    entries = sorted((tag_of[name], text.encode("utf-8") + b"\0") for name, text in fields.items())
    data_at = 8 + 2 + 12 * len(entries) + 4  # values longer than 4 bytes go after the IFD
    ifd, data = [struct.pack("<H", len(entries))], b""
    for tag, value in entries:  # TIFF wants IFD entries sorted by tag
        if len(value) <= 4:
            ifd.append(struct.pack("<HHI4s", tag, _ASCII, len(value), value))  # 4s pads with NUL
        else:
            ifd.append(struct.pack("<HHII", tag, _ASCII, len(value), data_at + len(data)))
            data += value + b"\0" * (len(value) % 2)  # keep offsets word-aligned
    tiff = b"II*\0" + struct.pack("<I", 8) + b"".join(ifd) + struct.pack("<I", 0) + data
    return EXIF_HEADER + tiff


# ----------------------------------------------------------------------------------------- XMP

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
# XMP packets past this are not parsed (the rights in EXIF and IPTC are still kept). Masters with
# bigger ones are refused before decoding anyway (limits.max_metadata_bytes, origin.imaging.preflight);
# this covers containers preflight does not walk (TIFF, HEIF).
MAX_XMP_BYTES = 4 * 1024 * 1024
XMP_NS = {
    "x": "adobe:ns:meta/",
    "rdf": RDF,
    "dc": "http://purl.org/dc/elements/1.1/",
    "xmpRights": "http://ns.adobe.com/xap/1.0/rights/",
    "cc": "http://creativecommons.org/ns#",
    "plus": "http://ns.useplus.org/ldf/xmp/1.0/",
    "Iptc4xmpExt": "http://iptc.org/std/Iptc4xmpExt/2008-02-29/",
    "xmpMM": "http://ns.adobe.com/xap/1.0/mm/",
    "stEvt": "http://ns.adobe.com/xap/1.0/sType/ResourceEvent#",
}
XMP_KEEP = frozenset(
    f"{{{XMP_NS[prefix]}}}{name}"  # ElementTree's "{namespace}local" form: prefixes are arbitrary
    for prefix, names in {
        "dc": ("rights", "creator"),
        "xmpRights": ("UsageTerms", "WebStatement", "Marked", "Owner"),
        "cc": ("license", "attributionName"),
        "plus": ("Licensor", "CopyrightOwner"),
        # Provenance, not rights, but kept the same way: how the master's pixels were made.
        "Iptc4xmpExt": ("DigitalSourceType",),
    }.items()
    for name in names
)
# Namespaces allowed inside a kept value (rdf:Alt/li, xml:lang, plus:LicensorName...): a value
# cannot smuggle e.g. a photoshop:City in a nested structure.
_XML = "http://www.w3.org/XML/1998/namespace"  # xml:lang
_VALUE_NS = frozenset([_XML] + [XMP_NS[p] for p in ("rdf", "dc", "xmpRights", "cc", "plus", "Iptc4xmpExt")])

for _prefix, _uri in XMP_NS.items():  # so the output says dc:rights, not ns0:rights
    ET.register_namespace(_prefix, _uri)


def filter_xmp(blob: bytes) -> bytes | None:
    """A fresh XMP packet holding only the rights properties of `blob`, or None if there are none.

    Handles properties written as elements and as attributes of rdf:Description. A packet that is
    not UTF-8, not well-formed, or declares a DOCTYPE or entities (expansion attacks) gives None.
    """
    if len(blob) > MAX_XMP_BYTES:  # parsing it would hold the GIL for seconds: no rights from it
        return None
    root = _parse_xmp(blob)
    if root is None:
        return None
    kept = ET.Element(f"{{{RDF}}}Description", {f"{{{RDF}}}about": ""})
    seen: set[str] = set()  # a property once, whichever form and rdf:Description it came in
    try:
        for rdf in root.iter(f"{{{RDF}}}RDF"):
            for description in rdf.findall(f"{{{RDF}}}Description"):  # top level only
                for name, value in description.attrib.items():
                    if name in XMP_KEEP and name not in seen:
                        kept.set(name, value)
                        seen.add(name)
                for prop in description:
                    if prop.tag in XMP_KEEP and prop.tag not in seen:
                        kept.append(_clean(prop))
                        seen.add(prop.tag)
    except RecursionError:  # absurdly deep nesting
        return None
    if not seen:
        return None
    packet = ET.Element(f"{{{XMP_NS['x']}}}xmpmeta")
    ET.SubElement(packet, f"{{{RDF}}}RDF").append(kept)
    return ET.tostring(packet, encoding="unicode").encode("utf-8")


def _parse_xmp(blob: bytes) -> ET.Element | None:
    try:
        text = blob.decode("utf-8").strip("\0 \t\r\n\ufeff")  # XMP in JPEG/WebP/HEIF is UTF-8
    except UnicodeDecodeError:
        return None
    upper = text.upper()
    if "<!DOCTYPE" in upper or "<!ENTITY" in upper:  # no entity expansion, internal or external
        return None
    try:
        return ET.fromstring(text)
    except (ET.ParseError, ValueError, RecursionError):
        return None


def _clean(element: ET.Element) -> ET.Element:
    """A copy of a property value without foreign-namespace children or attributes."""
    out = ET.Element(element.tag, {k: v for k, v in element.attrib.items() if _ns(k) in _VALUE_NS})
    out.text = element.text
    for child in element:
        if _ns(child.tag) in _VALUE_NS:
            copy = _clean(child)
            copy.tail = child.tail
            out.append(copy)
    return out


def _ns(name: str) -> str:
    return name[1:].partition("}")[0] if name.startswith("{") else ""


# ---------------------------------------------------------------------------------------- IPTC

# The APP13 payload prefix: libvips' jpegload keeps it in iptc-data, and jpegsave needs it there.
PHOTOSHOP = b"Photoshop 3.0\0"
_IPTC_RESOURCE = 0x0404  # Photoshop image resource holding the IIM datasets
IIM_CHARSET = (1, 90)
IIM_KEEP = frozenset({(2, 80), (2, 110), (2, 115), (2, 116)})  # By-line, Credit, Source, Copyright


def filter_iptc(blob: bytes) -> bytes | None:
    """The rights datasets of an IPTC blob, or None if there are none or the blob is malformed.

    Accepts the three forms libvips loaders produce: the JPEG APP13 payload ("Photoshop 3.0\\0" then
    8BIM resources), bare 8BIM resources, or raw IIM (TIFF). Always returns the APP13 form, as
    jpegsave writes the blob verbatim and is the only rendition saver that writes IPTC at all.
    """
    try:
        if blob.startswith(PHOTOSHOP):
            iim = b"".join(_iim_resources(blob[len(PHOTOSHOP) :]))
        elif blob.startswith(b"8BIM"):
            iim = b"".join(_iim_resources(blob))
        else:
            iim = blob
        kept = _filter_iim(iim)
    except (struct.error, ValueError):
        return None
    if kept is None:
        return None
    pad = b"\0" * (len(kept) % 2)
    resource = b"8BIM" + struct.pack(">H2sI", _IPTC_RESOURCE, b"", len(kept)) + kept + pad
    return PHOTOSHOP + resource


def _iim_resources(data: bytes) -> Iterator[bytes]:
    """The data of each IPTC resource in a run of Photoshop image resources."""
    pos = 0
    while pos < len(data) and not _nul_padding(data, pos):
        signature, resource, name_len = struct.unpack_from(">4sHB", data, pos)
        pos += 6 + ((name_len + 2) & ~1)  # Pascal name, length byte included, padded to even
        (size,) = struct.unpack_from(">I", data, pos)
        pos += 4
        if pos + size > len(data):
            raise ValueError("truncated image resource")
        if signature == b"8BIM" and resource == _IPTC_RESOURCE:
            yield data[pos : pos + size]
        pos += size + size % 2


def _nul_padding(data: bytes, pos: int) -> bool:
    """Whether only NULs are left: some writers pad the segment (look at the tail once only)."""
    return data[pos] == 0 and not data[pos:].strip(b"\0")


def _filter_iim(iim: bytes) -> bytes | None:
    datasets = list(_iim_datasets(iim))
    kept = [raw for key, raw, _ in datasets if key in IIM_KEEP]
    if not kept:
        return None
    charset = [raw for key, raw, _ in datasets if key == IIM_CHARSET][:1]
    return b"".join(charset + kept)  # record 1 before record 2, as IIM requires


def _iim_datasets(iim: bytes) -> Iterator[tuple[tuple[int, int], bytes, bytes]]:
    """(record, dataset), the raw bytes (header included) and the value of each IIM dataset."""
    pos = 0
    while pos < len(iim) and not _nul_padding(iim, pos):
        start = pos
        marker, record, number, size = struct.unpack_from(">BBBH", iim, pos)
        pos += 5
        if marker != 0x1C:
            raise ValueError("not an IIM dataset")
        if size & 0x8000:  # extended dataset: the low bits are the length of the length
            width = size & 0x7FFF
            if not 0 < width <= 4 or pos + width > len(iim):
                raise ValueError("bad extended length")
            size = int.from_bytes(iim[pos : pos + width], "big")
            pos += width
        if pos + size > len(iim):
            raise ValueError("truncated dataset")
        pos += size
        yield (record, number), iim[start:pos], iim[pos - size : pos]


# ------------------------------------------------------------------------------------ the image

# Image properties rather than metadata: listed by get_fields(), but not removable.
_CORE = frozenset(
    {"width", "height", "bands", "format", "coding", "interpretation"}
    | {"xoffset", "yoffset", "xres", "yres", "filename"}
)
# Fields savers need to write frames and palettes the way they were; none say anything about people.
_STRUCTURAL = frozenset({"page-height", "n-pages", "delay", "loop", "background", "palette", "bits-per-sample"})


def _is_structural(name: str) -> bool:
    if name in _CORE or name in _STRUCTURAL or name.startswith("vips-"):  # vips-*: internal
        return True
    return name.startswith("gif-") and "comment" not in name  # gif-delay, gif-loop, gif-palette


def _blob(image: pyvips.Image, name: str) -> bytes:
    if not image.get_typeof(name):
        return b""
    value = image.get(name)
    return value if isinstance(value, bytes) else b""


# IPTC Digital Source Type (https://cv.iptc.org/newscodes/digitalsourcetype/): what a rendition
# whose pixels a super-resolution model made declares, unless the master's type says more.
SOURCE_TYPES = "http://cv.iptc.org/newscodes/digitalsourcetype/"
ENHANCED = SOURCE_TYPES + "algorithmicallyEnhanced"
# Types an enhancement must not weaken: the master's pixels were already made, wholly or in part,
# by a model, a program or a hand; "enhanced" would claim a capture underneath.
NOT_WEAKENED = frozenset(
    SOURCE_TYPES + name
    for name in (
        "trainedAlgorithmicMedia",
        "compositeWithTrainedAlgorithmicMedia",
        "algorithmicMedia",
        "compositeSynthetic",
        "digitalArt",
        "dataDrivenMedia",
        "virtualRecording",
    )
)
_DST = f"{{{XMP_NS['Iptc4xmpExt']}}}DigitalSourceType"


def enhanced_xmp(xmp: bytes | None, agent: str, parameters: str) -> bytes:
    """`xmp` (a packet filter_xmp made, or None) declaring that a model made the pixels: the
    Digital Source Type algorithmicallyEnhanced (or the master's, when it is one of NOT_WEAKENED)
    and an xmpMM:History "edited" event naming the software `agent` and the `parameters`."""
    root = _parse_xmp(xmp) if xmp else None
    description = root.find(f"{{{RDF}}}RDF/{{{RDF}}}Description") if root is not None else None
    if root is None or description is None:
        root = ET.Element(f"{{{XMP_NS['x']}}}xmpmeta")
        description = ET.SubElement(
            ET.SubElement(root, f"{{{RDF}}}RDF"), f"{{{RDF}}}Description", {f"{{{RDF}}}about": ""}
        )
    declared = description.attrib.pop(_DST, None)
    for element in description.findall(_DST):
        declared = declared or (element.text or "").strip()
        description.remove(element)
    ET.SubElement(description, _DST).text = declared if declared in NOT_WEAKENED else ENHANCED
    mm, ev = XMP_NS["xmpMM"], XMP_NS["stEvt"]
    event = ET.SubElement(
        ET.SubElement(ET.SubElement(description, f"{{{mm}}}History"), f"{{{RDF}}}Seq"),
        f"{{{RDF}}}li",
        {f"{{{RDF}}}parseType": "Resource"},
    )
    for name, text in (("action", "edited"), ("softwareAgent", agent), ("parameters", parameters), ("changed", "/")):
        ET.SubElement(event, f"{{{ev}}}{name}").text = text
    return ET.tostring(root, encoding="unicode").encode("utf-8")


def declare_enhanced(image: pyvips.Image, keep: str, agent: str, parameters: str) -> tuple[pyvips.Image, str]:
    """A stripped rendition (keep_rights_only's result) whose pixels a model made, with the XMP
    of enhanced_xmp, and the `keep` that writes it."""
    out = image.copy()
    out.set_type(pyvips.GValue.blob_type, "xmp-data", enhanced_xmp(_blob(image, "xmp-data") or None, agent, parameters))
    blocks = [b for b in keep.split(":") if b not in ("none", "xmp")]
    return out, ":".join([*blocks, "xmp"])


BLOCKS = ("exif-data", "xmp-data", "iptc-data")  # where the rights live (keep_rights_only filters them)


def carry_metadata(source: pyvips.Image, made: pyvips.Image) -> pyvips.Image:
    """`made` (new pixels, e.g. a model's, which carry no fields) with `source`'s metadata blocks,
    so keep_rights_only finds the same rights in it as in any other rendition of the master."""
    out = made.copy()
    for name in BLOCKS:
        data = _blob(source, name)
        if data:
            out.set_type(pyvips.GValue.blob_type, name, data)
    return out


def keep_rights_only(image: pyvips.Image) -> tuple[pyvips.Image, str]:
    """Return a copy of `image` carrying only the rights metadata, and the savers' `keep` value.

    The copy keeps the structural fields (page-height, n-pages, delay, loop, palettes) and gets
    freshly built exif-data / xmp-data / iptc-data blobs holding only rights fields; every other
    field goes, ICC profile and orientation included (call this after autorotation). `keep` names
    the blocks attached, like "exif:xmp" (pyvips parses ForeignKeep flags from such a string), or
    "none": pass it to the saver so it writes exactly those.
    """
    exif = exif_rights(_blob(image, "exif-data"))
    blocks = {
        "exif": build_exif(exif) if exif else None,
        "xmp": filter_xmp(_blob(image, "xmp-data")),
        "iptc": filter_iptc(_blob(image, "iptc-data")),
    }
    out, _ = strip_all(image)
    keep = []
    for block, data in blocks.items():
        if data:
            out.set_type(pyvips.GValue.blob_type, f"{block}-data", data)
            keep.append(block)
    return out, ":".join(keep) or "none"


def strip_all(image: pyvips.Image) -> tuple[pyvips.Image, str]:
    """A copy of `image` with its structural fields only (no EXIF, XMP, IPTC, ICC), and "none"."""
    out = image.copy()
    for name in image.get_fields():
        if not _is_structural(name):
            out.remove(name)
    return out, "none"


IIM_NAMES = {(2, 80): "By-line", (2, 110): "Credit", (2, 115): "Source", (2, 116): "CopyrightNotice"}
_PREFIXES = {uri: prefix for prefix, uri in XMP_NS.items()}


def rights_of(image: pyvips.Image) -> dict[str, str]:
    """The rights fields a rendition keeps, as text, named by block: `exif:Copyright`,
    `dc:rights`, `xmpRights:WebStatement`, `iptc:CopyrightNotice`... (for /info)."""
    found = {f"exif:{name}": text for name, text in exif_rights(_blob(image, "exif-data")).items()}
    xmp = filter_xmp(_blob(image, "xmp-data"))
    root = _parse_xmp(xmp) if xmp else None
    for element in root.iter() if root is not None else ():
        if element.tag in XMP_KEEP:
            uri, _, local = element.tag[1:].partition("}")
            words = [t.strip() for t in element.itertext() if t.strip()]
            value = "; ".join(words) or next(iter(element.attrib.values()), "")
            if value:
                found[f"{_PREFIXES.get(uri, uri)}:{local}"] = value[:MAX_TEXT]
    iptc = filter_iptc(_blob(image, "iptc-data"))
    if iptc:
        try:
            for key, _raw, data in _iim_datasets(b"".join(_iim_resources(iptc[len(PHOTOSHOP) :]))):
                if key in IIM_NAMES:
                    found[f"iptc:{IIM_NAMES[key]}"] = data.decode("utf-8", "replace")[:MAX_TEXT]
        except (struct.error, ValueError):
            pass
    return found


def rights_in(data: bytes) -> dict[str, str]:
    """`rights_of` a master's bytes: reads the header and metadata, decodes no pixels."""
    try:
        return rights_of(pyvips.Image.new_from_buffer(data, "", access="sequential"))
    except pyvips.Error:
        return {}


def history_of(xmp: bytes) -> list[dict[str, str]]:
    """The xmpMM:History events of an XMP packet (action, softwareAgent, parameters, ...)."""
    root = _parse_xmp(xmp) if xmp and len(xmp) <= MAX_XMP_BYTES else None
    if root is None:
        return []
    mm, ev = XMP_NS["xmpMM"], XMP_NS["stEvt"]
    events = []
    for item in root.iterfind(f".//{{{mm}}}History/{{{RDF}}}Seq/{{{RDF}}}li"):
        event = {child.tag.partition("}")[2]: (child.text or "").strip()[:MAX_TEXT] for child in item}
        event.update({k.partition("}")[2]: v[:MAX_TEXT] for k, v in item.attrib.items() if k.startswith(f"{{{ev}}}")})
        events.append(event)
    return events


def provenance_in(data: bytes) -> dict[str, object]:
    """What an image says about where it came from (for `edge provenance`): format and size, its
    IPTC Digital Source Type, its XMP history, and the rights fields a rendition keeps."""
    try:
        image = pyvips.Image.new_from_buffer(data, "", access="sequential")
    except pyvips.Error as e:
        raise ValueError(f"not an image libvips can read: {str(e).splitlines()[0]}") from None
    rights = rights_of(image)
    loader = image.get("vips-loader") if image.get_typeof("vips-loader") else "unknown"
    return {
        "format": str(loader).removesuffix("_buffer").removesuffix("load"),
        "width": image.width,
        "height": image.height,
        "bytes": len(data),
        "source_type": rights.pop("Iptc4xmpExt:DigitalSourceType", None),
        "history": history_of(_blob(image, "xmp-data")),
        "rights": rights,
    }
