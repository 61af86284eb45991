"""Super-resolution models and their runtime: the registry, the sessions, the pixels (CPU here)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import pyvips

from origin.core.errors import Cancelled
from origin.superres.registry import (
    ModelSpec,
    RegistryError,
    available_models,
    choose_model,
    load_registry,
    plan_scales,
)
from origin.superres.runtime import Upscaler, aligned_upscale
from tests.support.corpus import CORPUS
from tests.support.images import lanczos3_enlarge


def photo(name: str, left: int, top: int, width: int, height: int) -> pyvips.Image:
    return pyvips.Image.new_from_file(str(CORPUS / name)).crop(left, top, width, height).copy_memory()


def y_psnr(a: np.ndarray, b: np.ndarray, border: int = 8) -> float:
    def luma(rgb: np.ndarray) -> np.ndarray:
        rgb = rgb.astype(np.float64)
        return (65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]) / 255

    d = (luma(a) - luma(b))[border:-border, border:-border]
    return 10 * math.log10(255**2 / float((d**2).mean()))


@pytest.fixture(scope="module")
def models() -> list[ModelSpec]:
    return available_models()


@pytest.fixture(scope="module")
def upscaler(models: list[ModelSpec]) -> Upscaler:
    return Upscaler(models, threads=2)


# ------------------------------------------------------------------ registry
def test_the_built_in_registry_lists_an_intact_x2_model_with_its_provenance(models):
    x2 = choose_model(models, 2, "cpu")
    assert x2 is not None and x2.path.is_file() and x2.intact()
    assert x2.input_range == (0.0, 1.0) and x2.colour_order == "RGB" and x2.channels == 3
    assert x2.overlap >= 6 and x2.tile >= 64
    assert x2.label == f"{x2.name}@{x2.version}"
    assert x2.path.stat().st_size < 1_000_000  # small enough to commit
    data = x2.training["data"]
    assert data and all({"package", "file", "registry"} <= set(d) for d in data)
    # the evaluation photos were found among the candidates and left out of training
    excluded = {Path(e["matches"]).name for e in x2.training["excluded"]}
    assert {"flower_640x427.jpg", "chelsea_cat_451x300.png"} <= excluded


def test_the_fp16_copy_for_gpus_computes_what_the_fp32_model_does(models):
    # CUDA runs the float16 file; it must be the same network. The CPU runs float16 too (slowly),
    # so the check needs no GPU: a real photo, values within 2/255.
    crop = photo("flower_640x427.jpg", 200, 100, 96, 64).numpy().transpose(2, 0, 1)[None] / 255
    for spec in models:
        assert spec.fp16_on_cuda and spec.path_fp16 is not None and spec.path_fp16.is_file(), spec.label
        full = ort.InferenceSession(str(spec.path), providers=["CPUExecutionProvider"])
        half = ort.InferenceSession(str(spec.path_fp16), providers=["CPUExecutionProvider"])
        expected = full.run(None, {spec.input_name: crop.astype(np.float32)})[0]
        got = half.run(None, {spec.input_name: crop.astype(np.float16)})[0].astype(np.float32)
        assert np.abs(got - expected).max() * 255 < 2, spec.label


def test_a_registry_entry_with_a_bad_field_is_refused_with_its_name(tmp_path):
    (tmp_path / "registry.json").write_text(
        json.dumps(
            {"models": [{"name": "m", "version": "1", "file": "m.onnx", "scale": 2, "input": {"colour_order": "YUV"}}]}
        )
    )
    with pytest.raises(RegistryError, match="colour_order"):
        load_registry(tmp_path)


def test_a_missing_or_altered_model_file_is_not_available(tmp_path):
    entry = {"name": "ghost", "version": "1", "file": "ghost.onnx", "scale": 2}
    (tmp_path / "registry.json").write_text(json.dumps({"models": [entry]}))
    assert "ghost" not in {m.name for m in available_models([tmp_path])}
    (tmp_path / "ghost.onnx").write_bytes(b"not this")
    entry["sha256"] = "0" * 64
    (tmp_path / "registry.json").write_text(json.dumps({"models": [entry]}))
    assert "ghost" not in {m.name for m in available_models([tmp_path])}


def test_a_model_preferred_on_gpu_wins_there_and_not_on_cpu(models):
    own = choose_model(models, 2, "cpu")
    gpu_pack = ModelSpec(
        name="span-x2", version="1", path=Path("span.onnx"), scale=2, preferred_on=("cuda",), priority=10
    )
    assert choose_model([own, gpu_pack], 2, "cuda") is gpu_pack
    assert choose_model([own, gpu_pack], 2, "cpu") is own


def test_x4_is_one_x4_model_or_x2_twice():
    x2 = ModelSpec(name="a", version="1", path=Path("a"), scale=2)
    x4 = ModelSpec(name="b", version="1", path=Path("b"), scale=4)
    assert plan_scales([x2], 4) == [2, 2]
    assert plan_scales([x2, x4], 4) == [4]
    assert plan_scales([x2], 3) == []


# ------------------------------------------------------------------ sessions
def test_providers_reported_are_the_ones_the_session_really_got(upscaler):
    got = upscaler.providers(2)
    assert got and set(got) <= set(ort.get_available_providers())
    session = upscaler._load(upscaler.models_for(2)[0]).session
    assert got == session.get_providers()
    assert upscaler.device == ("cuda" if "CUDAExecutionProvider" in got else "cpu")


# ------------------------------------------------------------------ pixels
def test_output_is_exactly_scale_times_the_input_odd_sizes_included(upscaler):
    image = photo("flower_640x427.jpg", 101, 57, 97, 61)
    for scale in (2, 4):
        out = upscaler.upscale(image, scale)
        assert (out.width, out.height, out.bands, out.format) == (97 * scale, 61 * scale, 3, "uchar")
        assert out.interpretation == "srgb"


def test_tiles_join_without_seams(models):
    image = photo("flower_640x427.jpg", 200, 100, 160, 120)
    whole = Upscaler(models, threads=2, tile=512).upscale(image, 2).numpy().astype(int)
    tiled = Upscaler(models, threads=2, tile=40).upscale(image, 2).numpy().astype(int)  # 4 x 3 tiles
    diff = np.abs(whole - tiled)
    assert diff.max() <= 1 and diff.mean() < 0.01  # float rounding at most, nothing along tile edges


def test_alpha_is_kept_and_transparent_colour_does_not_bleed(upscaler):
    # the left edge of the soft ellipse: alpha from 0 (hidden magenta) to 255 within the crop
    rgba = pyvips.Image.new_from_file(str(CORPUS / "rgba_alpha_1600x1000.webp")).crop(150, 440, 160, 120).copy_memory()
    out = upscaler.upscale(rgba, 2)
    assert (out.width, out.height, out.bands) == (320, 240, 4)
    expected = aligned_upscale(rgba.extract_band(3), 2).numpy()
    assert np.array_equal(out.extract_band(3).numpy(), expected)
    # where the upscaled image is opaque, its colour is close to an upscale of the flattened image
    flat = upscaler.upscale(rgba.flatten(background=[0, 0, 0]), 2).numpy().astype(int)
    mask = expected > 250
    premult = (out.numpy()[..., :3].astype(int) * (expected[..., None] / 255)).astype(int)
    assert mask.sum() > 1000
    assert np.abs(premult - flat)[mask].mean() < 2


def test_grey_in_grey_out(upscaler):
    grey = photo("flower_640x427.jpg", 0, 0, 80, 60).colourspace("b-w")
    out = upscaler.upscale(grey, 2)
    assert (out.width, out.height, out.bands, out.interpretation) == (160, 120, 1, "b-w")
    with_alpha = grey.bandjoin(255)
    assert upscaler.upscale(with_alpha, 2).bands == 2


@pytest.mark.parametrize(
    "name, box", [("flower_640x427.jpg", (0, 0, 640, 426)), ("chelsea_cat_451x300.png", (0, 0, 450, 300))]
)
def test_the_model_beats_lanczos_on_a_held_out_photo(upscaler, name, box):
    truth = photo(name, *box)
    small = truth.resize(0.5, kernel="lanczos3").crop(0, 0, truth.width // 2, truth.height // 2)
    ours = y_psnr(upscaler.upscale(small, 2).numpy(), truth.numpy())
    lanczos = y_psnr(lanczos3_enlarge(small, 2), truth.numpy())
    assert ours - lanczos > 0.5, f"{name}: model {ours:.2f} dB, Lanczos3 {lanczos:.2f} dB"
    assert lanczos > y_psnr(small.resize(2, kernel="lanczos3").numpy(), truth.numpy())  # the fair baseline


def test_x4_works_and_is_sharper_than_lanczos(upscaler):
    truth = photo("flower_640x427.jpg", 160, 100, 320, 224)
    small = truth.resize(0.25, kernel="lanczos3").crop(0, 0, 80, 56)
    out = upscaler.upscale(small, 4)
    assert (out.width, out.height) == (320, 224)
    assert y_psnr(out.numpy(), truth.numpy()) > y_psnr(lanczos3_enlarge(small, 4), truth.numpy()) + 0.3


def test_an_upscale_stops_between_tiles_when_cancelled(models):
    with pytest.raises(Cancelled):
        Upscaler(models, threads=2, tile=32).upscale(
            photo("flower_640x427.jpg", 0, 0, 96, 64), 2, cancelled=lambda: True
        )


def test_unsupported_input_and_scales_are_refused(upscaler):
    with pytest.raises(ValueError, match="x3"):
        upscaler.upscale(photo("flower_640x427.jpg", 0, 0, 16, 16), 3)
    with pytest.raises(ValueError, match="8-bit"):
        upscaler.upscale(photo("flower_640x427.jpg", 0, 0, 16, 16).cast("ushort"), 2)


# ------------------------------------------------------------------ time
def test_estimate_grows_with_pixels_and_scale(upscaler):
    small, big = upscaler.estimate_seconds(200, 150, 2), upscaler.estimate_seconds(1000, 750, 2)
    assert 0 < small < big < 60
    assert upscaler.estimate_seconds(1000, 750, 4) > big
    assert upscaler.estimate_seconds(100, 100, 3) == math.inf
    assert 15 < big / small < 35  # proportional to pixels, give or take the measurement
