"""Resampling to an exact size: right size, pixel centres where they belong, photos that come back."""

from __future__ import annotations

import math

import numpy as np
import pytest
import pyvips

from origin.imaging.resample import enlarge, resize_exact
from tests.support.corpus import CORPUS
from tests.support.images import lanczos3_enlarge


def _column_image(width: int, height: int, column: int) -> pyvips.Image:
    a = np.zeros((height, width), dtype=np.uint8)
    a[:, column] = 255
    return pyvips.Image.new_from_array(a)


def _centroid_x(image: pyvips.Image) -> float:
    row = image.numpy().astype(np.float64)[image.height // 2].reshape(-1)
    return float((row * np.arange(row.size)).sum() / row.sum())


@pytest.mark.parametrize("scale", [2, 3, 1.5, 2.37])
def test_enlarged_pixel_centres_are_aligned(scale: float):
    # Input pixel i covers [i, i + 1); its centre i + 0.5 maps to (i + 0.5) * scale in output
    # coordinates, i.e. output pixel index (i + 0.5) * scale - 0.5. libvips' resize() puts it half
    # an output pixel away.
    image = _column_image(40, 8, 10)
    out = resize_exact(image, round(40 * scale), 8)
    assert out.width == round(40 * scale)
    assert _centroid_x(out) == pytest.approx(10.5 * out.width / 40 - 0.5, abs=0.02)
    assert abs(_centroid_x(image.resize(scale, kernel="lanczos3")) - (10.5 * scale - 0.5)) > 0.2  # the defect


def _y_psnr(a: np.ndarray, b: np.ndarray) -> float:
    w = np.array([65.481, 128.553, 24.966]) / 255
    d = (a[8:-8, 8:-8, :3].astype(np.float64) - b[8:-8, 8:-8, :3]) @ w
    return 10 * math.log10(255**2 / float((d**2).mean()))


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_integer_enlargement_is_a_true_lanczos3(scale: int):
    photo = pyvips.Image.new_from_file(str(CORPUS / "rocket_640x427.jpg")).crop(200, 100, 120, 90).copy_memory()
    ours = resize_exact(photo, 120 * scale, 90 * scale).numpy().astype(int)
    assert np.abs(ours - lanczos3_enlarge(photo, scale).astype(int)).max() <= 1


def test_photo_reduced_and_enlarged_back_is_close_to_the_original():
    photo = pyvips.Image.new_from_file(str(CORPUS / "rocket_640x427.jpg")).colourspace("srgb")
    photo = photo.crop(0, 0, 640, 426).copy_memory()
    small = photo.resize(0.5, kernel="lanczos3").crop(0, 0, 320, 213).copy_memory()
    ours = _y_psnr(resize_exact(small, 640, 426).numpy(), photo.numpy())
    libvips_resize = _y_psnr(small.resize(2, kernel="lanczos3").numpy()[:426], photo.numpy())
    assert ours > 32.8  # measured 32.90, as a true Lanczos3; libvips' resize() 31.55
    assert ours > libvips_resize + 1.2


def test_sharp_edges_clamp_instead_of_wrapping():
    # Lanczos lobes overshoot at a black/white edge: the result must clamp to 0..255, not wrap.
    a = np.zeros((20, 20, 3), dtype=np.uint8)
    a[:, 10:] = 255
    out = resize_exact(pyvips.Image.new_from_array(a, interpretation="srgb"), 50, 50).numpy()
    assert out[:, 28:].min() >= 230 and out[:, :22].max() <= 25  # ringing of a few %, no wrap to 0 or 255


@pytest.mark.parametrize(
    ("size", "target"),
    [((640, 427), (320, 213)), ((640, 427), (1281, 853)), ((640, 427), (600, 500)), ((640, 427), (700, 400))],
)
def test_exact_size_whichever_way_each_axis_goes(size: tuple[int, int], target: tuple[int, int]):
    photo = pyvips.Image.new_from_file(str(CORPUS / "rocket_640x427.jpg"))
    assert (photo.width, photo.height) == size
    out = resize_exact(photo, *target).copy_memory()
    assert (out.width, out.height, out.bands, out.format) == (*target, 3, "uchar")
    # Same picture, just resampled: compare against a plain resize of the original.
    reference = photo.resize(target[0] / photo.width, vscale=target[1] / photo.height, kernel="lanczos3")
    diff = (out.cast("float") - reference.crop(0, 0, *target).cast("float")).abs().avg()
    assert diff < 8
    # Each band is still the same band (a libvips bandunfold bug once swapped them in stripes).
    for band in range(3):
        assert abs(out[band].avg() - photo[band].avg()) < 1.5


def test_enlarging_with_alpha_does_not_bleed_hidden_colour():
    # Opaque grey on the left, fully transparent magenta on the right.
    rgba = np.zeros((16, 16, 4), dtype=np.uint8)
    rgba[:, :8] = (128, 128, 128, 255)
    rgba[:, 8:] = (255, 0, 255, 0)
    out = enlarge(pyvips.Image.new_from_array(rgba, interpretation="srgb"), 48, 48).numpy()
    visible = out[..., 3] > 16
    assert out.shape == (48, 48, 4)
    assert np.abs(out[visible][:, :3].astype(int) - 128).max() <= 2


def test_huge_factors_enlarge_in_steps_and_stay_a_lanczos_up_to_its_rounding():
    # x8 is one polyphase pass, so a true Lanczos3 (the reference), as for x2..x4.
    photo = pyvips.Image.new_from_file(str(CORPUS / "rocket_640x427.jpg")).crop(300, 150, 20, 15).copy_memory()
    ours = resize_exact(photo, 160, 120).numpy().astype(int)
    assert np.abs(ours - lanczos3_enlarge(photo, 8).astype(int)).max() <= 1
    # A 1x1 master asked at 1280 px: passes of x8 (not 1280 phases at once), one flat colour out.
    dot = pyvips.Image.black(1, 1, bands=3).new_from_image([200, 120, 40]).cast("uchar")
    big = resize_exact(dot, 1280, 960)
    assert (big.width, big.height, big.bands) == (1280, 960, 3)
    assert {tuple(p) for p in big.numpy().reshape(-1, 3)[::997]} == {(200, 120, 40)}
    # x40 along one axis (x8, then x5): a ramp stays a ramp.
    ramp = pyvips.Image.new_from_array(np.linspace(0, 255, 12, dtype=np.uint8).reshape(1, 12)).copy_memory()
    stepped = resize_exact(ramp, 480, 1).numpy().astype(int).reshape(-1)
    assert np.all(np.diff(stepped[40:-40]) >= 0)  # no ringing on a ramp
