"""What comes out looks like the master should: upright, in sRGB, without personal metadata."""

from __future__ import annotations

import httpx
import pytest

from tests.support.app import InProcess
from tests.support.images import decode, mean_abs_diff, sniff

ORIENTED = [f"exif_orientation_{n}_640x360.jpg" for n in (2, 3, 4, 5, 6, 8)] + [
    "exif_orientation_6_640x360.png",
    "exif_orientation_6_640x360.webp",
]


def png(server: InProcess, http: httpx.Client, path: str, **opts: object):
    r = http.get(server.url(path, fm="png", **opts))
    assert r.status_code == 200, r.text
    return decode(r.content)


@pytest.mark.parametrize("path", ORIENTED)
def test_every_exif_orientation_comes_out_upright(server: InProcess, http: httpx.Client, path: str):
    reference = png(server, http, "exif_orientation_1_640x360.jpg", w=320)
    out = png(server, http, path, w=320)
    assert (out.width, out.height) == (320, 180)
    # Same picture: JPEG generations differ a little, a wrong rotation or mirror differs a lot.
    assert mean_abs_diff(out, reference) < 6, path
    assert mean_abs_diff(out, reference.flip("horizontal")) > 2 * mean_abs_diff(out, reference)


# sRGB -> CMYK clips the gamut, so even libvips' own icc_transform round trip of this file is
# 6.1 off the reference; a CMYK master shown as a negative or without conversion is far worse.
@pytest.mark.parametrize(
    "path, tolerance", [("cmyk_640x400.jpg", 7), ("display_p3_640x400.jpg", 1.5), ("adobergb_640x400.jpg", 1.5)]
)
def test_wide_gamut_and_cmyk_masters_come_out_close_to_the_srgb_reference(
    server: InProcess, http: httpx.Client, path: str, tolerance: float
):
    reference = png(server, http, "srgb_reference_640x400.jpg", w=320)
    out = png(server, http, path, w=320)
    assert out.interpretation == "srgb" and out.bands == 3
    assert mean_abs_diff(out, reference) < tolerance, path
    assert mean_abs_diff(out, reference.invert()) > 50
    assert "icc-profile-data" not in out.get_fields()  # sRGB is what browsers assume untagged


@pytest.mark.parametrize("path", ["display_p3_640x400.jpg", "adobergb_640x400.jpg"])
def test_ignoring_the_profile_would_have_been_caught(server: InProcess, path: str):
    # The check above has teeth: wide-gamut pixels read as if sRGB are far off (3.9 and 5.3).
    import pyvips

    raw = pyvips.Image.new_from_file(str(server.masters / path)).copy_memory()
    raw.remove("icc-profile-data")
    reference = pyvips.Image.new_from_file(str(server.masters / "srgb_reference_640x400.jpg"))
    assert mean_abs_diff(raw, reference) > 3


def test_16_bit_and_grey_masters_become_8_bit(server: InProcess, http: httpx.Client):
    out = png(server, http, "gray16_264x198.png", w=100)
    assert out.format == "uchar"


def test_resizing_keeps_the_colours(server: InProcess, http: httpx.Client):
    master = decode((server.masters / "flower_640x427.jpg").read_bytes())
    for fm in ("jpeg", "webp", "avif"):
        r = http.get(server.url("flower_640x427.jpg", w=320, fm=fm))
        assert sniff(r.content) == fm
        assert mean_abs_diff(decode(r.content), master.resize(0.5)) < 6, fm


def test_location_and_camera_data_are_stripped_but_rights_kept(server: InProcess, http: httpx.Client):
    for fm in ("jpeg", "webp", "avif", "png"):
        r = http.get(server.url("gps_exif_xmp_1920x1280.jpg", w=400, fm=fm))
        assert b"GPS" not in r.content and b"Canon" not in r.content, fm
        fields = decode(r.content).get_fields()
        assert not [f for f in fields if f.startswith("exif-ifd3-")], fm
        if fm != "png":
            assert "exif-ifd0-Artist" in fields, fm


def test_alpha_edges_have_no_hidden_colour_fringes(server: InProcess, http: httpx.Client):
    # Transparent pixels hide magenta; a resize without premultiplied alpha bleeds it into the edge.
    out = png(server, http, "rgba_alpha_1600x1000.webp", w=400)
    assert out.bands == 4
    opaque_enough = out[3] > 200
    rgb = out.extract_band(0, n=3)
    red, green, blue = rgb[0], rgb[1], rgb[2]
    magenta = (red > 200) & (blue > 200) & (green < 60) & opaque_enough
    assert magenta.avg() < 0.5  # fraction x 255 of visible magenta pixels
