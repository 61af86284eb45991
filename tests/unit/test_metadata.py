"""Renditions keep copyright/artist/licence metadata only: no GPS, camera or personal fields."""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET

import pytest
import pyvips
from hypothesis import given, settings
from hypothesis import strategies as st

from origin.core.formats import EncodeSettings, FormatSettings
from origin.core.limits import Limits
from origin.core.request import RenditionOptions
from origin.imaging.metadata import (
    PHOTOSHOP,
    build_exif,
    enhanced_xmp,
    exif_rights,
    filter_iptc,
    filter_xmp,
    keep_rights_only,
)
from origin.imaging.probe import probe
from origin.pipeline import RenderTools, render
from origin.plan import plan_rendition
from tests.support.corpus import CORPUS

# Canon EOS 400D photo with GPS (48°51'24.12"N 2°17'40.2"E) in EXIF and XMP, Artist, dc:creator and
# a COM comment (from the shared corpus, tricky/gps_exif_xmp_1920x1280.jpg, GPL-2+).
PHOTO = CORPUS / "gps_exif_xmp_1920x1280.jpg"
PHOTO_ARTIST = "Test Person (artist tag, should be stripped)"
GPS_LATITUDE_EXIF = struct.pack("<6I", 48, 1, 51, 1, 603, 25)  # the GPSLatitude rationals
GPS_LATITUDE_XMP = b"48,51.402N"
# libvips renders EXIF fields as "value (value, type, n components, n bytes)".
PERSONAL_EXIF = ["Make", "Model", "MakerNote", "UserComment", "DateTime", "DateTimeOriginal"]

NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "xmpRights": "http://ns.adobe.com/xap/1.0/rights/",
    "cc": "http://creativecommons.org/ns#",
    "plus": "http://ns.useplus.org/ldf/xmp/1.0/",
    "photoshop": "http://ns.adobe.com/photoshop/1.0/",
    "exif": "http://ns.adobe.com/exif/1.0/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "Iptc4xmpExt": "http://iptc.org/std/Iptc4xmpExt/2008-02-29/",
    "xmpMM": "http://ns.adobe.com/xap/1.0/mm/",
}


# ------------------------------------------------------------------------------- input builders


def xmp_packet(body: str, about_attrs: str = "") -> bytes:
    """An XMP packet declaring every namespace in NS, with one rdf:Description holding `body`."""
    decls = " ".join(f'xmlns:{p}="{uri}"' for p, uri in NS.items() if p not in ("x", "rdf"))
    return (
        f'<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        f'<x:xmpmeta xmlns:x="{NS["x"]}"><rdf:RDF xmlns:rdf="{NS["rdf"]}">'
        f'<rdf:Description rdf:about="" {decls} {about_attrs}>{body}</rdf:Description>'
        f'</rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
    ).encode()


RIGHTS_BODY = (
    '<dc:rights><rdf:Alt><rdf:li xml:lang="x-default">(c) 2024 Jane Doe</rdf:li></rdf:Alt>'
    "</dc:rights>"
    "<dc:creator><rdf:Seq><rdf:li>Jane Doe</rdf:li></rdf:Seq></dc:creator>"
    '<xmpRights:UsageTerms><rdf:Alt><rdf:li xml:lang="x-default">CC BY 4.0</rdf:li></rdf:Alt>'
    "</xmpRights:UsageTerms>"
    '<cc:license rdf:resource="https://creativecommons.org/licenses/by/4.0/"/>'
)
PERSONAL_BODY = (
    "<photoshop:City>Paris</photoshop:City>"
    "<exif:GPSLatitude>48,51.402N</exif:GPSLatitude>"
    "<xmp:CreatorTool>Canon EOS 400D</xmp:CreatorTool>"
)


def dataset(record: int, number: int, value: bytes) -> bytes:
    return struct.pack(">BBBH", 0x1C, record, number, len(value)) + value


def resource(rid: int, data: bytes, name: bytes = b"") -> bytes:
    """One Photoshop image resource: Pascal name and data, each padded to an even length."""
    pascal = bytes([len(name)]) + name
    pascal += b"\0" * (len(pascal) % 2)
    return b"8BIM" + struct.pack(">H", rid) + pascal + struct.pack(">I", len(data)) + data + b"\0" * (len(data) % 2)


CHARSET = dataset(1, 90, b"\x1b%G")  # UTF-8
BYLINE = dataset(2, 80, b"Jane Doe")
CREDIT = dataset(2, 110, b"Agency")
SOURCE = dataset(2, 115, b"Studio")
COPYRIGHT = dataset(2, 116, "© 2024 Jane Doe".encode())
CITY = dataset(2, 90, b"Paris")
KEYWORDS = dataset(2, 25, b"holiday")
IIM = CHARSET + BYLINE + CITY + KEYWORDS + COPYRIGHT


def app13(*resources: bytes) -> bytes:
    return PHOTOSHOP + b"".join(resources)


def iim_of(blob: bytes) -> list[tuple[int, int, bytes]]:
    """(record, dataset, value) of the IPTC resource in an APP13 payload: the test's own reader."""
    assert blob.startswith(PHOTOSHOP + b"8BIM\x04\x04\0\0")
    (size,) = struct.unpack_from(">I", blob, len(PHOTOSHOP) + 8)
    iim, out = blob[len(PHOTOSHOP) + 12 :][:size], []
    while iim:
        _, record, number, n = struct.unpack_from(">BBBH", iim)
        out.append((record, number, iim[5 : 5 + n]))
        iim = iim[5 + n :]
    return out


def tiff(order: str, entries: list[tuple[int, int, bytes]], exif_prefix: bool = True) -> bytes:
    """An EXIF blob with IFD0 holding (tag, type, value) entries, long values after the IFD."""
    count_at = 8
    data_at = count_at + 2 + 12 * len(entries) + 4
    ifd, data = struct.pack(order + "H", len(entries)), b""
    for tag, kind, value in entries:
        if len(value) <= 4:
            ifd += struct.pack(order + "HHI", tag, kind, len(value)) + value.ljust(4, b"\0")
        else:
            ifd += struct.pack(order + "HHII", tag, kind, len(value), data_at + len(data))
            data += value
    head = (b"II" if order == "<" else b"MM") + struct.pack(order + "HI", 42, count_at)
    return (b"Exif\0\0" if exif_prefix else b"") + head + ifd + struct.pack(order + "I", 0) + data


ARTIST, COPYRIGHT_TAG, MAKE, ASCII, UNDEFINED = 0x013B, 0x8298, 0x010F, 2, 7


def photo_master() -> bytes:
    """The GPS photo plus a Copyright, rights+personal XMP and IPTC: a realistic master JPEG."""
    image = pyvips.Image.new_from_file(str(PHOTO)).copy()
    image.set_type(pyvips.GValue.gstr_type, "exif-ifd0-Copyright", "(c) 2024 Jane Doe")
    image.set_type(pyvips.GValue.blob_type, "xmp-data", xmp_packet(RIGHTS_BODY + PERSONAL_BODY))
    image.set_type(pyvips.GValue.blob_type, "iptc-data", app13(resource(0x0404, IIM)))
    return image.jpegsave_buffer(Q=90, keep="all")


@pytest.fixture(scope="module")
def master() -> bytes:
    return photo_master()


def rendition(master: bytes) -> tuple[pyvips.Image, str]:
    """What the pipeline does: thumbnail (autorotates, converts to sRGB), then strip."""
    image = pyvips.Image.thumbnail_buffer(master, 320, export_profile="srgb").copy_memory()
    assert image.get_typeof("icc-profile-data")  # thumbnail tagged it: must go too
    return keep_rights_only(image)


def fields(image: pyvips.Image) -> dict[str, object]:
    return {name: image.get(name) for name in image.get_fields()}


def xmp_properties(blob: bytes) -> set[str]:
    """The "prefix:name" of every property of every rdf:Description, in both forms."""
    prefix_of = {uri: prefix for prefix, uri in NS.items()}

    def short(name: str) -> str:
        uri, _, local = name[1:].partition("}")
        return f"{prefix_of[uri]}:{local}"

    names = set()
    for desc in ET.fromstring(blob).iter(f"{{{NS['rdf']}}}Description"):
        names |= {short(a) for a in desc.attrib if a != f"{{{NS['rdf']}}}about"}
        names |= {short(child.tag) for child in desc}
    return names


def assert_no_location_or_camera(data: bytes, image: pyvips.Image) -> None:
    names = image.get_fields()
    assert not [n for n in names if n.startswith("exif-ifd3-")], "GPS IFD fields"
    assert not [n for n in names if n.split("-")[-1] in PERSONAL_EXIF]
    assert b"GPS" not in data and GPS_LATITUDE_EXIF not in data and GPS_LATITUDE_XMP not in data
    assert b"Canon" not in data and b"strip me" not in data and b"Paris" not in data
    for blob_name in ("exif-data", "xmp-data", "iptc-data"):
        if image.get_typeof(blob_name):  # PNG deflates its XMP: look at the decoded blocks too
            blob = image.get(blob_name)
            assert b"GPS" not in blob and b"Paris" not in blob and b"Canon" not in blob


# ----------------------------------------------------------------------- the real photo, per saver

# What each libvips 8.18 saver writes of the blocks named in `keep` (checked by experiment):
# jpeg: EXIF (APP1), XMP (APP1), IPTC (APP13, the blob verbatim); webp and heif/avif: EXIF and XMP
# chunks/items, no IPTC; png: eXIf chunk and XMP as a compressed iTXt, no IPTC; gif: nothing at all.
SAVERS = {
    "jpeg": (lambda im, keep: im.jpegsave_buffer(Q=80, keep=keep), {"exif", "xmp", "iptc"}),
    "webp": (lambda im, keep: im.webpsave_buffer(Q=80, keep=keep), {"exif", "xmp"}),
    "avif": (lambda im, keep: im.heifsave_buffer(compression="av1", keep=keep), {"exif", "xmp"}),
    "png": (lambda im, keep: im.pngsave_buffer(keep=keep), {"exif", "xmp"}),
    "gif": (lambda im, keep: im.gifsave_buffer(keep=keep), set()),
}


def test_real_photo_jpeg_keeps_artist_and_drops_gps_camera_and_comment() -> None:
    original = pyvips.Image.new_from_file(str(PHOTO))
    assert "exif-ifd3-GPSLatitude" in original.get_fields()  # the test is about something
    stripped, keep = keep_rights_only(original)
    assert keep == "exif:xmp"  # Artist in EXIF, dc:creator in XMP
    data = stripped.jpegsave_buffer(Q=80, keep=keep)
    out = pyvips.Image.new_from_buffer(data, "")
    assert_no_location_or_camera(data, out)
    assert exif_rights(out.get("exif-data")) == {"Artist": PHOTO_ARTIST}
    assert out.get("exif-ifd0-Artist").startswith(PHOTO_ARTIST + " (")
    assert "exif-ifd0-Copyright" not in out.get_fields()  # the photo has none
    assert xmp_properties(out.get("xmp-data")) == {"dc:creator"}
    assert "exif-ifd3-GPSLatitude" in original.get_fields()  # input left as it was


@pytest.mark.parametrize("fmt", SAVERS)
def test_master_rendition_per_saver(master: bytes, fmt: str) -> None:
    stripped, keep = rendition(master)
    assert keep == "exif:xmp:iptc"
    save, writes = SAVERS[fmt]
    data = save(stripped, keep)
    out = pyvips.Image.new_from_buffer(data, "")
    assert (out.width, out.height) == (320, 213)
    assert_no_location_or_camera(data, out)
    assert not out.get_typeof("icc-profile-data")  # untagged sRGB
    present = {b for b in ("exif", "xmp", "iptc") if out.get_typeof(f"{b}-data")}
    assert present == writes
    if "exif" in writes:
        rights = {"Artist": PHOTO_ARTIST, "Copyright": "(c) 2024 Jane Doe"}
        assert exif_rights(out.get("exif-data")) == rights
    if "xmp" in writes:
        expected = {"dc:rights", "dc:creator", "xmpRights:UsageTerms", "cc:license"}
        assert xmp_properties(out.get("xmp-data")) == expected
    if "iptc" in writes:
        assert iim_of(out.get("iptc-data")) == [
            (1, 90, b"\x1b%G"),
            (2, 80, b"Jane Doe"),
            (2, 116, "© 2024 Jane Doe".encode()),
        ]


def test_master_really_carries_what_is_stripped(master: bytes) -> None:
    image = pyvips.Image.new_from_buffer(master, "")
    names = image.get_fields()
    assert {"exif-ifd3-GPSLatitude", "exif-ifd0-Make", "exif-ifd0-Copyright"} <= set(names)
    assert b"Paris" in image.get("xmp-data") and b"Paris" in image.get("iptc-data")


def test_thumbnail_icc_and_every_other_field_removed() -> None:
    image = pyvips.Image.thumbnail(str(PHOTO), 64, export_profile="srgb").copy()
    for name in ("jpeg-comment", "png-comment-0-Title", "gif-comment"):
        image.set_type(pyvips.GValue.gstr_type, name, "Jane's holiday in Paris")
    image.set_type(pyvips.GValue.gint_type, "heif-primary", 0)
    image.set_type(pyvips.GValue.gint_type, "orientation", 6)
    stripped, _ = keep_rights_only(image)
    names = set(stripped.get_fields())
    assert not names & {
        "icc-profile-data",
        "jpeg-comment",
        "png-comment-0-Title",
        "gif-comment",
        "heif-primary",
    }
    assert "orientation" not in names and "resolution-unit" not in names
    metadata = {n for n in names if n.startswith(("exif-", "xmp", "iptc"))}
    # libvips parses the fresh EXIF blob into exif-ifd* fields when it is set: only ours show up
    assert {n for n in metadata if n.startswith("exif-ifd") and "Artist" not in n} <= {
        "exif-ifd0-XResolution",
        "exif-ifd0-YResolution",
        "exif-ifd0-ResolutionUnit",
        "exif-ifd2-ExifVersion",
        "exif-ifd2-FlashpixVersion",
        "exif-ifd2-ColorSpace",
    }
    data = stripped.jpegsave_buffer(keep="icc:exif:xmp")  # even asked to, there is none to write
    assert not pyvips.Image.new_from_buffer(data, "").get_typeof("icc-profile-data")


def test_nothing_to_keep_gives_none() -> None:
    image = pyvips.Image.black(8, 8).copy()
    image.set_type(pyvips.GValue.blob_type, "exif-data", tiff("<", [(MAKE, ASCII, b"Canon\0")]))
    image.set_type(pyvips.GValue.blob_type, "xmp-data", xmp_packet(PERSONAL_BODY))
    image.set_type(pyvips.GValue.blob_type, "iptc-data", app13(resource(0x0404, CITY + KEYWORDS)))
    stripped, keep = keep_rights_only(image)
    assert keep == "none"
    assert not [n for n in stripped.get_fields() if n.endswith("-data")]
    assert pyvips.Image.new_from_buffer(stripped.pngsave_buffer(keep=keep), "").get_fields()


def test_animation_fields_survive_and_save_as_animated_webp() -> None:
    frame = pyvips.Image.new_from_file(str(PHOTO)).resize(64 / 1920, vscale=40 / 1280)
    assert (frame.width, frame.height) == (64, 40)
    image = pyvips.Image.arrayjoin([frame, frame.flip("horizontal"), frame.invert()], across=1).copy()
    image.set_type(pyvips.GValue.gint_type, "page-height", 40)
    image.set_type(pyvips.GValue.array_int_type, "delay", [80, 80, 80])
    image.set_type(pyvips.GValue.gint_type, "loop", 0)
    assert "exif-ifd3-GPSLatitude" in image.get_fields()  # arrayjoin took frame 1's metadata
    stripped, keep = keep_rights_only(image)
    assert (stripped.get("page-height"), stripped.get("delay"), stripped.get("loop")) == (
        40,
        [80] * 3,
        0,
    )
    data = stripped.webpsave_buffer(keep=keep)
    out = pyvips.Image.new_from_buffer(data, "", n=-1)
    assert (out.get("n-pages"), out.get("page-height"), out.get("delay")) == (3, 40, [80] * 3)
    assert out.get("loop") == 0
    assert_no_location_or_camera(data, out)
    gif = pyvips.Image.new_from_buffer(stripped.gifsave_buffer(keep=keep), "", n=-1)
    assert (gif.get("n-pages"), gif.get("delay")) == (3, [80] * 3)


# ------------------------------------------------------------------------------------------- EXIF

LONG_ARTIST = b"Jane Doe\0"
LONG_COPYRIGHT = b"(c) 2024 Jane Doe\0"


@pytest.mark.parametrize(
    ("blob", "expected"),
    [
        pytest.param(
            tiff(
                "<",
                [
                    (MAKE, ASCII, b"Canon\0"),
                    (ARTIST, ASCII, LONG_ARTIST),
                    (COPYRIGHT_TAG, ASCII, LONG_COPYRIGHT),
                ],
            ),
            {"Artist": "Jane Doe", "Copyright": "(c) 2024 Jane Doe"},
            id="little-endian",
        ),
        pytest.param(
            tiff(
                ">",
                [
                    (MAKE, ASCII, b"Canon\0"),
                    (ARTIST, ASCII, LONG_ARTIST),
                    (COPYRIGHT_TAG, ASCII, LONG_COPYRIGHT),
                ],
            ),
            {"Artist": "Jane Doe", "Copyright": "(c) 2024 Jane Doe"},
            id="big-endian",
        ),
        pytest.param(tiff(">", [(ARTIST, ASCII, b"Jo\0")]), {"Artist": "Jo"}, id="inline-value-be"),
        pytest.param(
            tiff("<", [(ARTIST, ASCII, b"Jane\0")], exif_prefix=False),
            {"Artist": "Jane"},
            id="no-exif-prefix",
        ),
        pytest.param(tiff("<", [(ARTIST, ASCII, "Zoë\0".encode())]), {"Artist": "Zoë"}, id="utf8"),
        pytest.param(
            tiff("<", [(ARTIST, ASCII, "Zoë Ä\0".encode("latin-1"))]),
            {"Artist": "Zoë Ä"},
            id="latin1",
        ),
        pytest.param(
            tiff("<", [(COPYRIGHT_TAG, ASCII, b"Photographer\0Editor\0")]),
            {"Copyright": "Photographer\0Editor"},
            id="copyright-with-editor-part",
        ),
        pytest.param(tiff("<", [(ARTIST, UNDEFINED, LONG_ARTIST)]), {}, id="artist-not-ascii"),
        pytest.param(tiff("<", [(ARTIST, ASCII, b"  \0\0")]), {}, id="blank-artist"),
        pytest.param(tiff("<", [(MAKE, ASCII, b"Canon\0")]), {}, id="camera-only"),
        pytest.param(tiff("<", []), {}, id="empty-ifd"),
        pytest.param(b"", {}, id="empty"),
        pytest.param(b"Exif\0\0", {}, id="prefix-only"),
        pytest.param(b"Exif\0\0XX*\0\x08\0\0\0", {}, id="bad-byte-order"),
        pytest.param(b"Exif\0\0II+\0\x08\0\0\0\0\0\0\0", {}, id="bad-magic"),
    ],
)
def test_exif_rights(blob: bytes, expected: dict[str, str]) -> None:
    assert exif_rights(blob) == expected


def test_exif_offsets_outside_the_blob() -> None:
    good = tiff("<", [(ARTIST, ASCII, LONG_ARTIST), (COPYRIGHT_TAG, ASCII, LONG_COPYRIGHT)])
    value_outside = bytearray(good)  # first entry's value offset -> far away
    struct.pack_into("<I", value_outside, 6 + 8 + 2 + 8, 0xFFFFFFF0)
    assert exif_rights(bytes(value_outside)) == {"Copyright": "(c) 2024 Jane Doe"}
    ifd_outside = bytearray(good)
    struct.pack_into("<I", ifd_outside, 6 + 4, 0x7FFFFFFF)
    assert exif_rights(bytes(ifd_outside)) == {}
    too_many_entries = bytearray(good)
    struct.pack_into("<H", too_many_entries, 6 + 8, 0xFFFF)
    assert exif_rights(bytes(too_many_entries)) == {}
    big_endian_outside = tiff(">", [(ARTIST, ASCII, b"x" * 4000 + b"\0")])[:200]
    assert exif_rights(big_endian_outside) == {}


@pytest.mark.parametrize("order", ["<", ">"])
def test_exif_truncated_at_every_length(order: str) -> None:
    blob = tiff(order, [(ARTIST, ASCII, LONG_ARTIST), (COPYRIGHT_TAG, ASCII, LONG_COPYRIGHT)])
    for n in range(len(blob)):
        assert exif_rights(blob[:n]) in ({}, {"Artist": "Jane Doe"}), n
    assert len(exif_rights(blob)) == 2


def test_exif_real_camera_blob() -> None:
    blob = pyvips.Image.new_from_file(str(PHOTO)).get("exif-data")
    assert exif_rights(blob) == {"Artist": PHOTO_ARTIST}


@pytest.mark.parametrize(
    "fields",
    [
        {"Artist": "Jane Doe"},
        {"Copyright": "(c) 2024 Jane Doe"},
        {"Artist": "Jo", "Copyright": "C"},  # values stored inside the entry
        {"Artist": "Zoë Éloïse", "Copyright": "Photographer\0Editor"},
        {"Copyright": "odd", "Artist": "even"},
    ],
)
def test_build_exif_round_trips_and_libvips_reads_it(fields: dict[str, str]) -> None:
    blob = build_exif(fields)
    assert blob.startswith(b"Exif\0\0II*\0\x08\0\0\0")
    assert exif_rights(blob) == fields
    tags = [struct.unpack_from("<H", blob, 6 + 10 + 12 * i)[0] for i in range(len(fields))]
    assert tags == sorted(tags)  # TIFF requires ascending tags
    image = pyvips.Image.black(4, 4).copy()
    image.set_type(pyvips.GValue.blob_type, "exif-data", blob)
    out = pyvips.Image.new_from_buffer(image.jpegsave_buffer(keep="exif"), "")
    assert exif_rights(out.get("exif-data")) == fields
    assert all(f"exif-ifd0-{name}" in out.get_fields() for name in fields)


def test_build_exif_refuses_other_tags() -> None:
    with pytest.raises(KeyError):
        build_exif({"Make": "Canon"})


# -------------------------------------------------------------------------------------------- XMP


@pytest.mark.parametrize(
    ("blob", "expected"),
    [
        pytest.param(
            xmp_packet(RIGHTS_BODY + PERSONAL_BODY),
            {"dc:rights", "dc:creator", "xmpRights:UsageTerms", "cc:license"},
            id="elements",
        ),
        pytest.param(
            xmp_packet(
                "",
                'xmpRights:Marked="True" xmpRights:WebStatement="https://example.com/terms" '
                'cc:attributionName="Jane Doe" photoshop:City="Paris" '
                'exif:GPSLatitude="48,51.402N" xmp:CreatorTool="Canon"',
            ),
            {"xmpRights:Marked", "xmpRights:WebStatement", "cc:attributionName"},
            id="attributes",
        ),
        pytest.param(
            xmp_packet(
                "<xmpRights:Owner><rdf:Bag><rdf:li>Jane Doe</rdf:li></rdf:Bag></xmpRights:Owner>"
                '<plus:Licensor><rdf:Seq><rdf:li rdf:parseType="Resource"><plus:LicensorName>Agency'
                "</plus:LicensorName></rdf:li></rdf:Seq></plus:Licensor>"
                "<plus:CopyrightOwner><rdf:Seq><rdf:li>Jane</rdf:li></rdf:Seq></plus:CopyrightOwner>"
            ),
            {"xmpRights:Owner", "plus:Licensor", "plus:CopyrightOwner"},
            id="owner-and-plus",
        ),
        pytest.param(xmp_packet(PERSONAL_BODY), None, id="personal-only"),
        pytest.param(xmp_packet(""), None, id="empty-description"),
    ],
)
def test_filter_xmp_keeps_rights_properties(blob: bytes, expected: set[str] | None) -> None:
    out = filter_xmp(blob)
    if expected is None:
        assert out is None
        return
    assert out is not None and out.startswith(b"<x:xmpmeta xmlns:")
    assert xmp_properties(out) == expected
    assert b"Paris" not in out and b"GPS" not in out and b"Canon" not in out
    assert filter_xmp(out) == out  # a fresh packet is already minimal


def test_filter_xmp_values_survive_intact() -> None:
    out = filter_xmp(xmp_packet(RIGHTS_BODY))
    assert out is not None
    root = ET.fromstring(out)
    li = root.find(".//dc:rights/rdf:Alt/rdf:li", NS)
    assert li is not None and li.text == "(c) 2024 Jane Doe"
    assert li.get("{http://www.w3.org/XML/1998/namespace}lang") == "x-default"
    lic = root.find(".//cc:license", NS)
    assert lic is not None and lic.get(f"{{{NS['rdf']}}}resource").endswith("/by/4.0/")


def test_filter_xmp_merges_descriptions_and_ignores_prefix_names() -> None:
    blob = (
        f'<x:xmpmeta xmlns:x="{NS["x"]}"><rdf:RDF xmlns:rdf="{NS["rdf"]}">'
        f'<rdf:Description rdf:about="" xmlns:d="{NS["dc"]}">'
        "<d:rights>(c) Jane</d:rights></rdf:Description>"
        f'<rdf:Description rdf:about="" xmlns:r="{NS["xmpRights"]}" r:Marked="True"'
        f' xmlns:d="{NS["dc"]}"><d:rights>duplicate</d:rights></rdf:Description>'
        "</rdf:RDF></x:xmpmeta>"
    ).encode()
    out = filter_xmp(blob)
    assert out is not None
    assert xmp_properties(out) == {"dc:rights", "xmpRights:Marked"}
    assert b"duplicate" not in out  # a property once


def test_filter_xmp_drops_foreign_fields_nested_in_a_kept_value() -> None:
    blob = xmp_packet(
        "<dc:rights><rdf:Alt><rdf:li xml:lang='x-default' photoshop:City='Lyon'>(c) Jane</rdf:li>"
        "<photoshop:City>Paris</photoshop:City></rdf:Alt></dc:rights>"
    )
    out = filter_xmp(blob)
    assert out is not None and b"(c) Jane" in out
    assert b"Paris" not in out and b"Lyon" not in out and b"photoshop" not in out


@pytest.mark.parametrize(
    "blob",
    [
        pytest.param(
            b'<?xml version="1.0"?>'
            b'<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
            + xmp_packet("<dc:rights>&b;</dc:rights>").split(b"?>", 1)[1],
            id="doctype-entities",
        ),
        pytest.param(
            b'<!doctype x SYSTEM "file:///etc/passwd">' + xmp_packet(RIGHTS_BODY),
            id="doctype-lowercase",
        ),
        pytest.param(b"not xml at all", id="garbage"),
        pytest.param(b"\xff\xfe\x00<\x00x", id="not-utf8"),
        pytest.param(xmp_packet(RIGHTS_BODY).decode().encode("utf-16"), id="utf16"),
        pytest.param(xmp_packet(RIGHTS_BODY)[:-60], id="truncated"),
        pytest.param(b"<a>" * 100_000, id="deep-unclosed"),
        pytest.param(b"", id="empty"),
    ],
)
def test_filter_xmp_drops_unsafe_or_malformed(blob: bytes) -> None:
    assert filter_xmp(blob) is None


def test_filter_xmp_tolerates_padding() -> None:
    assert filter_xmp(xmp_packet(RIGHTS_BODY) + b" " * 2048 + b"\0\0") is not None


# ------------------------------------------------------------------------------------------- IPTC


@pytest.mark.parametrize(
    ("blob", "expected"),
    [
        pytest.param(app13(resource(0x0404, IIM)), [CHARSET, BYLINE, COPYRIGHT], id="app13"),
        pytest.param(
            app13(
                resource(0x03ED, b"\0" * 16),
                resource(0x0404, IIM, name=b"odd"),
                resource(0x0425, b"d" * 16),
            ),
            [CHARSET, BYLINE, COPYRIGHT],
            id="app13-among-other-resources",
        ),
        pytest.param(resource(0x0404, IIM), [CHARSET, BYLINE, COPYRIGHT], id="bare-8bim"),
        pytest.param(IIM, [CHARSET, BYLINE, COPYRIGHT], id="raw-iim"),
        pytest.param(app13(resource(0x0404, BYLINE + CITY)), [BYLINE], id="no-charset"),
        pytest.param(
            app13(resource(0x0404, CHARSET + CREDIT + SOURCE)),
            [CHARSET, CREDIT, SOURCE],
            id="credit-source",
        ),
        pytest.param(app13(resource(0x0404, IIM + b"\0\0")), [CHARSET, BYLINE, COPYRIGHT], id="nul-padding"),
        pytest.param(
            app13(resource(0x0404, b"\x1c\x02\x74\x80\x02\x00\x05(c) J" + CITY)),
            [b"\x1c\x02\x74\x80\x02\x00\x05(c) J"],
            id="extended-length",
        ),
        pytest.param(app13(resource(0x0404, CHARSET + CITY + KEYWORDS)), None, id="charset-alone"),
        pytest.param(app13(resource(0x03ED, b"\0" * 16)), None, id="no-iptc-resource"),
        pytest.param(app13(), None, id="no-resources"),
        pytest.param(b"", None, id="empty"),
        pytest.param(b"garbage that is no iptc", None, id="garbage"),
        pytest.param(app13(resource(0x0404, IIM))[:-10], None, id="truncated-resource"),
        pytest.param(app13(resource(0x0404, BYLINE + COPYRIGHT[:-3])), None, id="truncated-dataset"),
        pytest.param(app13(resource(0x0404, BYLINE + b"\x1d\x02\x74\0\0")), None, id="bad-marker"),
    ],
)
def test_filter_iptc(blob: bytes, expected: list[bytes] | None) -> None:
    out = filter_iptc(blob)
    if expected is None:
        assert out is None
        return
    iim = b"".join(expected)
    assert out == PHOTOSHOP + resource(0x0404, iim)
    assert filter_iptc(out) == out


def test_filter_iptc_truncated_at_every_length() -> None:
    blob = app13(resource(0x0404, IIM))
    for n in range(len(blob)):
        out = filter_iptc(blob[:n])
        assert out is None or out.startswith(PHOTOSHOP), n


def test_filter_iptc_is_linear_in_the_number_of_datasets() -> None:
    many = dataset(2, 25, b"") * 200_000 + COPYRIGHT  # 1 MB: quadratic scanning would hang here
    assert filter_iptc(many) == PHOTOSHOP + resource(0x0404, COPYRIGHT)


def test_filter_iptc_output_is_what_jpegload_reads_back() -> None:
    image = pyvips.Image.black(4, 4).copy()
    image.set_type(pyvips.GValue.blob_type, "iptc-data", filter_iptc(IIM))  # raw IIM in, APP13 out
    out = pyvips.Image.new_from_buffer(image.jpegsave_buffer(keep="iptc"), "")
    assert [(r, n) for r, n, _ in iim_of(out.get("iptc-data"))] == [(1, 90), (2, 80), (2, 116)]


# ------------------------------------------------------------------------------ never crash (fuzz)

NO_DB = settings(database=None, max_examples=300, deadline=None)


@NO_DB
@given(st.binary(max_size=512))
def test_helpers_never_raise_on_random_bytes(blob: bytes) -> None:
    assert isinstance(exif_rights(blob), dict)
    assert isinstance(exif_rights(b"Exif\0\0II*\0" + blob), dict)
    assert isinstance(exif_rights(b"MM\0*" + blob), dict)
    assert filter_xmp(blob) is None or filter_xmp(blob).startswith(b"<x:xmpmeta")
    for prefix in (b"", PHOTOSHOP, PHOTOSHOP + b"8BIM\x04\x04\0\0", b"\x1c\x02\x74"):
        out = filter_iptc(prefix + blob)
        assert out is None or out.startswith(PHOTOSHOP)


@NO_DB
@given(st.integers(0, 200), st.binary(min_size=1, max_size=8))
def test_exif_reader_survives_corrupted_bytes(at: int, junk: bytes) -> None:
    blob = bytearray(tiff(">", [(MAKE, ASCII, b"Canon\0"), (ARTIST, ASCII, LONG_ARTIST)]))
    at %= len(blob)
    blob[at : at + len(junk)] = junk
    assert isinstance(exif_rights(bytes(blob)), dict)


@pytest.mark.parametrize(
    ("declared", "expected"),
    [
        (None, "algorithmicallyEnhanced"),
        ("digitalCapture", "algorithmicallyEnhanced"),
        ("minorHumanEdits", "algorithmicallyEnhanced"),
        ("trainedAlgorithmicMedia", "trainedAlgorithmicMedia"),
        ("compositeSynthetic", "compositeSynthetic"),
    ],
)
def test_a_model_enhancement_declares_itself_without_weakening_the_masters_type(declared, expected) -> None:
    types = "http://cv.iptc.org/newscodes/digitalsourcetype/"
    # The master's type written as an attribute (the compact form), beside a right: both kept.
    body = '<dc:rights><rdf:Alt><rdf:li xml:lang="x-default">(c) Jane</rdf:li></rdf:Alt></dc:rights>'
    attrs = f'Iptc4xmpExt:DigitalSourceType="{types}{declared}"' if declared else ""
    kept = filter_xmp(xmp_packet(body, attrs))
    out = enhanced_xmp(kept, "edge-image-cdn/1.0 edgesr-x4@1.0", "super-resolution x4")
    assert xmp_properties(out) >= {"dc:rights", "Iptc4xmpExt:DigitalSourceType", "xmpMM:History"}
    assert out.count(b"DigitalSourceType") == 2  # one element, opened and closed: never two values
    assert f"{types}{expected}".encode() in out and b"edge-image-cdn/1.0 edgesr-x4@1.0" in out
    assert len(out) < 1200


def test_with_metadata_off_a_rendition_carries_none(master: bytes) -> None:
    """[provenance] metadata = false: no rights, no source type, nothing (the pipeline's switch)."""
    header = probe(master, Limits())
    plan = plan_rendition(RenditionOptions(w=320, fm="jpeg"), header, "jpeg", Limits(), FormatSettings())
    kept, _ = render(master, plan, RenderTools(EncodeSettings()))
    bare, _ = render(master, plan, RenderTools(EncodeSettings(), metadata=False))
    assert pyvips.Image.new_from_buffer(kept.body, "").get_typeof("exif-data")  # the test is about something
    out = pyvips.Image.new_from_buffer(bare.body, "")
    assert not any(out.get_typeof(f"{block}-data") for block in ("exif", "xmp", "iptc", "icc-profile"))
    assert len(bare.body) < len(kept.body)
