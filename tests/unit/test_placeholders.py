"""Placeholders: deterministic per image, the ThumbHash decodes back to the image's colours, the
data URI is a real image under 1 KB."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pytest
import pyvips

from origin.imaging.placeholders import MAX_DATA_URI, _rgba, make_placeholder, thumbhash

CORPUS = Path(__file__).resolve().parent.parent / "corpus"


def small_rgba(name: str) -> np.ndarray:
    image = _rgba(pyvips.Image.new_from_file(str(CORPUS / name)).thumbnail_image(100, height=100))
    return np.ndarray(buffer=image.write_to_memory(), dtype=np.uint8, shape=(image.height, image.width, 4))


def average_from_hash(hashed: bytes) -> tuple[float, float, float, float]:
    """ThumbHash's own thumbHashToAverageRGBA (the reference decoder's first step)."""
    header = hashed[0] | hashed[1] << 8 | hashed[2] << 16
    lum, p, q = (header & 63) / 63, ((header >> 6) & 63) / 31.5 - 1, ((header >> 12) & 63) / 31.5 - 1
    alpha = (hashed[5] & 15) / 15 if header >> 23 else 1.0
    b = lum - 2 / 3 * p
    r = (3 * lum - b + q) / 2
    return (r, r - q, b, alpha)


def test_the_thumbhash_of_a_known_photo_is_what_the_reference_port_gives():
    # Cross-checked once against the PyPI `thumbhash` 0.1.2 port (right for opaque images).
    assert base64.b64encode(thumbhash(small_rgba("rocket_640x427.jpg"))).decode() == "EOcFFYItd2ZwiZd1h4iIdnZwbgbn"


@pytest.mark.parametrize(
    "name", ["rocket_640x427.jpg", "flower_640x427.jpg", "chelsea_cat_451x300.png", "rgba_alpha_1600x1000.webp"]
)
def test_a_thumbhash_decodes_to_the_images_average_colour_and_alpha(name: str):
    px = small_rgba(name)
    hashed = thumbhash(px)
    r, g, b, a = average_from_hash(hashed)
    alpha = px[..., 3] / 255
    mean = (px[..., :3] / 255 * alpha[..., None]).sum(axis=(0, 1)) / alpha.sum()
    assert np.allclose((r, g, b), mean, atol=0.05), (name, (r, g, b), mean)
    assert (a < 1) == bool((px[..., 3] < 255).any())  # the alpha bit, and an alpha DC when it is set
    assert 5 <= len(hashed) <= 40


@pytest.mark.parametrize(
    "name", ["rocket_640x427.jpg", "gray16_264x198.png", "rgba_alpha_1600x1000.webp", "tiny_1x1.jpg"]
)
def test_placeholders_are_deterministic_small_and_decodable(name: str):
    image = pyvips.Image.new_from_file(str(CORPUS / name))
    first, again = make_placeholder(image), make_placeholder(image)
    assert first == again
    assert re.fullmatch(r"#[0-9a-f]{6}", first.color)
    assert len(first.data_uri) <= MAX_DATA_URI and first.data_uri.startswith("data:image/webp;base64,")
    tiny = pyvips.Image.new_from_buffer(base64.b64decode(first.data_uri.split(",", 1)[1]), "")
    assert tiny.width <= 24 and abs(tiny.width / tiny.height - image.width / image.height) < 0.5
    assert first.css().startswith(f"background: {first.color} url(data:image/webp;base64,")


def test_the_dominant_colour_is_the_most_common_not_the_mean():
    # Three quarters red, one quarter blue: the mean would be purple.
    px = np.zeros((8, 8, 4), dtype=np.uint8)
    px[..., 3] = 255
    px[:6, :, 0] = 200
    px[6:, :, 2] = 200
    image = pyvips.Image.new_from_memory(px.tobytes(), 8, 8, 4, "uchar").copy(interpretation="srgb")
    assert make_placeholder(image).color == "#c80000"
