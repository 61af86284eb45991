"""Upscaled intermediates kept for other widths and formats of the same master."""

from __future__ import annotations

import pyvips

from origin.imaging.intermediates import IntermediateCache
from tests.support.corpus import CORPUS


def test_round_trip_keeps_pixels_and_colour_space():
    cache = IntermediateCache(10 * 1024 * 1024)
    image = pyvips.Image.new_from_file(str(CORPUS / "flower_640x427.jpg")).copy_memory()
    cache.put("k", image)
    back = cache.get("k")
    assert back is not None
    assert (back.width, back.height, back.bands, back.interpretation) == (640, 427, 3, "srgb")
    assert (back - image).abs().max() == 0


def test_bounded_in_bytes():
    image = pyvips.Image.new_from_file(str(CORPUS / "flower_640x427.jpg")).copy_memory()
    cache = IntermediateCache(2 * 640 * 427 * 3)  # room for two
    for key in ("a", "b", "c"):
        cache.put(key, image)
    assert cache.get("a") is None and cache.get("c") is not None
