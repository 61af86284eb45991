"""Run super-resolution models with onnxruntime: one session per model, tiles, alpha, speed.

    upscaler = Upscaler(available_models(), threads=2)
    upscaler.warm_up()                      # optional, at start-up: sessions + measured speed
    if upscaler.can_upscale(2) and upscaler.estimate_seconds(w, h, 2) < budget:
        big = upscaler.upscale(image, 2)    # exactly 2w x 2h, same bands as the input
        header = upscaler.label(2)          # "edgesr-x2@2.0", for X-Upscale

The device is CUDA when onnxruntime lists the CUDA provider *and* a session really gets it
(onnxruntime-gpu on a machine without a usable GPU lists CUDA but runs on the CPU): `device` and
`providers()` report what the sessions really got, not what was asked for.

Pixels: 8-bit sRGB in and out. RGB goes through the model in overlapping tiles (each tile carries
`overlap` extra input pixels on every side, cut off afterwards, so tiles join without seams); the
image border is extended by copying edge pixels, like libvips does. Alpha is upscaled by libvips
and the colour is premultiplied by it on the way through, so hidden colour under transparent
pixels cannot bleed into visible ones. Scales the registry has no model for are made by chaining
(x4 = x2 twice when there is no x4 model).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort
import pyvips

from origin.core.concurrency import cpu_count
from origin.core.errors import Cancelled
from origin.imaging.resample import enlarge
from origin.superres.registry import ModelSpec, choose_model, plan_chain

log = logging.getLogger(__name__)

CUDA, CPU = "CUDAExecutionProvider", "CPUExecutionProvider"
CUDA_TILE = 512  # input pixels; a GPU wants big tiles, a CPU cache-sized ones (the model's `tile`)
SPEED_SAMPLE = (384, 288)  # input size of the one-off speed measurement
MIN_REFINE_PIXELS = 250_000  # output pixels a real run needs to refine the measured speed


def onnxruntime_version() -> str:
    return str(ort.__version__)


@dataclass
class _Loaded:
    spec: ModelSpec
    session: ort.InferenceSession
    providers: list[str]
    dtype: type
    speed: float | None = None  # output megapixels per second, measured here


def _tiles(length: int, tile: int) -> list[tuple[int, int]]:
    """[start, end) spans of near-equal size, none longer than `tile` (no thin last strip)."""
    count = max(1, math.ceil(length / tile))
    edges = [round(i * length / count) for i in range(count + 1)]
    return list(zip(edges[:-1], edges[1:], strict=True))


class Upscaler:
    """Super-resolution with the registered models; thread-safe, one session per model."""

    def __init__(
        self,
        models: Sequence[ModelSpec],
        *,
        threads: int | None = None,
        use_cuda: bool = True,
        tile: int | None = None,
        on_load: Callable[[str, str], None] | None = None,
    ):
        self.models = list(models)
        self.threads = threads or cpu_count()
        self.tile = tile
        self.on_load = on_load  # (model label, provider it really got): for metrics
        wanted_cuda = use_cuda and CUDA in ort.get_available_providers()
        if wanted_cuda and hasattr(ort, "preload_dlls"):
            # onnxruntime-gpu[cuda,cudnn] brings CUDA and cuDNN as NVIDIA's wheels: load them from
            # there before the first session (a CUDA base image has them on the library path anyway).
            ort.preload_dlls()
        self._requested = [CUDA, CPU] if wanted_cuda else [CPU]
        self._device: str | None = None if wanted_cuda else "cpu"  # CUDA is confirmed by a session
        self._loaded: dict[str, _Loaded] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ what runs where
    @property
    def device(self) -> str:
        """'cuda' or 'cpu': what the sessions really run on (opens one session to find out)."""
        if self._device is None:
            first = choose_model(self.models, self._any_scale(), "cuda")
            if first is None:
                self._device = "cpu"
            else:
                self._load(first)  # sets _device from the session's providers
        return self._device or "cpu"

    def settle_device(self) -> str:
        """Decide the device now, not at the first request: where onnxruntime lists CUDA, this opens
        one session to see whether it really gets it (the models picked depend on the device)."""
        return self.device

    def providers(self, scale: int = 2) -> list[str]:
        """The execution providers the session(s) for `scale` really got, in onnxruntime's names."""
        seen: list[str] = []
        for spec in self._chain(scale):
            for p in self._load(spec).providers:
                if p not in seen:
                    seen.append(p)
        return seen

    def can_upscale(self, scale: int) -> bool:
        return bool(self._chain(scale))

    def models_for(self, scale: int) -> list[ModelSpec]:
        """The models one upscale by `scale` runs, in order (one, or a chain)."""
        return self._chain(scale)

    def label(self, scale: int) -> str:
        """For X-Upscale: `name@version`, or the chain joined with '+' (`edgesr-x2@2.0+edgesr-x2@2.0`)."""
        return "+".join(spec.label for spec in self._chain(scale))

    # ------------------------------------------------------------------ time
    def warm_up(self, scales: Sequence[int] = (2, 4)) -> None:
        """Open the sessions and measure their speed now rather than in the first request."""
        for scale in scales:
            for spec in self._chain(scale):
                self._speed(self._load(spec))

    def estimate_seconds(self, width: int, height: int, scale: int) -> float:
        """Seconds `upscale` will take for a width x height input, from this device's measured speed
        (measured once at first use with a small run, then refined by real runs); inf when no model
        can make `scale`."""
        chain = self._chain(scale)
        if not chain:
            return math.inf
        seconds, w, h = 0.0, width, height
        for spec in chain:
            w, h = w * spec.scale, h * spec.scale
            seconds += w * h / 1e6 / self._speed(self._load(spec))
        return seconds

    # ------------------------------------------------------------------ pixels
    def upscale(self, image: pyvips.Image, scale: int, *, cancelled: Callable[[], bool] | None = None) -> pyvips.Image:
        """`image` (8-bit sRGB or grey, with or without alpha) enlarged exactly `scale` times.

        The result has the input's bands and interpretation. Raises ValueError for a scale no
        model (or chain of models) makes, Cancelled when `cancelled()` turns True."""
        chain = self._chain(scale)
        if not chain:
            raise ValueError(f"no super-resolution model or chain makes x{scale}")
        if image.format != "uchar" or image.bands not in (1, 2, 3, 4):
            raise ValueError(f"upscale needs 8-bit images of 1-4 bands, got {image.format} x {image.bands}")
        grey = image.bands in (1, 2)
        alpha = image.extract_band(image.bands - 1) if image.bands in (2, 4) else None
        colour = image.extract_band(0, n=image.bands - 1) if alpha is not None else image
        rgb = colour.numpy().astype(np.float32).reshape(image.height, image.width, -1)
        if grey:
            rgb = np.repeat(rgb, 3, axis=2)  # grey as sRGB: R = G = B
        if alpha is not None:
            a = alpha.numpy().astype(np.float32)[..., None] / 255
            rgb *= a  # premultiply: hidden colour under transparent pixels must not bleed

        for i, spec in enumerate(chain):
            loaded = self._load(spec)
            # the last pass writes 8-bit pixels straight away unless alpha or grey still need floats
            final = i == len(chain) - 1 and alpha is None and not grey
            start = time.perf_counter()
            rgb = self._run_tiles(loaded, rgb, cancelled, np.uint8 if final else np.float32)
            self._refine(loaded, rgb.shape[0] * rgb.shape[1], time.perf_counter() - start)

        if alpha is not None:
            big_alpha = aligned_upscale(alpha, scale)
            a = big_alpha.numpy().astype(np.float32)[..., None] / 255
            rgb = np.where(a > 1 / 510, rgb / np.maximum(a, 1 / 510), 0)
        if grey:
            rgb = rgb.mean(axis=2, keepdims=True)
        if rgb.dtype != np.uint8:
            rgb = np.clip(rgb + 0.5, 0, 255).astype(np.uint8)
        out = pyvips.Image.new_from_array(rgb, interpretation="b-w" if grey else "srgb")
        return out.bandjoin(big_alpha) if alpha is not None else out

    # ------------------------------------------------------------------ internals
    def _any_scale(self) -> int:
        return min((m.scale for m in self.models), default=2)

    def _chain(self, scale: int) -> list[ModelSpec]:
        device = self._device or ("cuda" if CUDA in self._requested else "cpu")
        return plan_chain(self.models, scale, device)

    def _load(self, spec: ModelSpec) -> _Loaded:
        with self._lock:
            loaded = self._loaded.get(spec.name)
            if loaded is None:
                loaded = self._open(spec)
                self._loaded[spec.name] = loaded
                if self.on_load is not None:
                    self.on_load(spec.label, loaded.providers[0])
                if self._device is None:
                    self._device = "cuda" if CUDA in loaded.providers else "cpu"
                    if self._device == "cpu":
                        log.warning("onnxruntime lists CUDA but the session got %s: running on CPU", loaded.providers)
            return loaded

    def _open(self, spec: ModelSpec) -> _Loaded:
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # onnxruntime's workers spin after each run by default: that would steal CPU from libvips
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        fp16 = CUDA in self._requested and spec.fp16_on_cuda and spec.path_fp16 is not None
        path = spec.path_fp16 if fp16 and spec.path_fp16 else spec.path
        session = ort.InferenceSession(str(path), options, providers=self._requested)
        providers = session.get_providers()
        if fp16 and CUDA not in providers:  # the fp16 file is for the GPU; the CPU got the session
            fp16, session = False, ort.InferenceSession(str(spec.path), options, providers=[CPU])
            providers = session.get_providers()
        dtype = np.float16 if fp16 else np.float32
        log.info("super-resolution %s on %s (%d threads)", spec.label, providers, self.threads)
        return _Loaded(spec, session, providers, dtype)

    def _tile_size(self, loaded: _Loaded) -> int:
        if self.tile:
            return self.tile
        return max(loaded.spec.tile, CUDA_TILE) if CUDA in loaded.providers else loaded.spec.tile

    def _run_tiles(
        self, loaded: _Loaded, rgb: np.ndarray, cancelled: Callable[[], bool] | None, dtype: type = np.float32
    ) -> np.ndarray:
        """H x W x 3 (0..255) -> sH x sW x 3 `dtype` (0..255; rounded when uint8), tile by tile."""
        spec, s, ov = loaded.spec, loaded.spec.scale, loaded.spec.overlap
        height, width = rgb.shape[:2]
        lo, hi = spec.input_range
        olo, ohi = spec.output_range
        padded = np.pad(rgb, ((ov, ov), (ov, ov), (0, 0)), mode="edge")  # edges extended, like libvips
        if spec.colour_order == "BGR":
            padded = padded[..., ::-1]
        out = np.empty((height * s, width * s, 3), dtype)
        tile = self._tile_size(loaded)
        for y0, y1 in _tiles(height, tile):
            for x0, x1 in _tiles(width, tile):
                if cancelled is not None and cancelled():
                    raise Cancelled
                patch = padded[y0 : y1 + 2 * ov, x0 : x1 + 2 * ov].transpose(2, 0, 1)[None]
                x: np.ndarray = (patch * ((hi - lo) / 255) + lo).astype(loaded.dtype)
                y = loaded.session.run([spec.output_name], {spec.input_name: x})[0][0]
                core = y[:, ov * s : ov * s + (y1 - y0) * s, ov * s : ov * s + (x1 - x0) * s]
                if spec.colour_order == "BGR":
                    core = core[::-1]
                core = (core - olo) * (255 / (ohi - olo)) + (0.5 if dtype == np.uint8 else 0)
                out[y0 * s : y1 * s, x0 * s : x1 * s] = np.clip(core, 0, 255).transpose(1, 2, 0)
        return out

    def _speed(self, loaded: _Loaded) -> float:
        """Output megapixels per second: measured once here with a small run."""
        if loaded.speed is None:
            w, h = SPEED_SAMPLE
            yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
            sample = np.stack([xx * 255 / w, yy * 255 / h, (xx + yy) % 255], axis=-1)
            self._run_tiles(loaded, sample[:64, :64], None)  # warm-up: first runs allocate
            start = time.perf_counter()
            self._run_tiles(loaded, sample, None)
            seconds = time.perf_counter() - start
            loaded.speed = w * h * loaded.spec.scale**2 / 1e6 / seconds
            log.info(
                "super-resolution %s: %.2f output MP/s on %s", loaded.spec.label, loaded.speed, loaded.providers[0]
            )
        return loaded.speed

    def _refine(self, loaded: _Loaded, out_pixels: int, seconds: float) -> None:
        if out_pixels >= MIN_REFINE_PIXELS and seconds > 0:
            measured = out_pixels / 1e6 / seconds
            loaded.speed = measured if loaded.speed is None else 0.7 * loaded.speed + 0.3 * measured


def aligned_upscale(band: pyvips.Image, scale: int) -> pyvips.Image:
    """Enlarge one band exactly `scale` times, pixel centres aligned like the models' output."""
    return enlarge(band, band.width * scale, band.height * scale)


def smoke_test(upscaler: Upscaler, scale: int) -> float:
    """Run `scale` once on a small gradient: the model loads and gives the right size and sane
    pixels. Returns the seconds it took; raises RuntimeError for a wrong result."""
    yy, xx = np.mgrid[0:48, 0:64]
    rgb = np.stack([xx * 4, yy * 5, (xx + yy) * 2], axis=-1).astype(np.uint8)
    start = time.perf_counter()
    out = upscaler.upscale(pyvips.Image.new_from_array(rgb, interpretation="srgb"), scale)
    seconds = time.perf_counter() - start
    if (out.width, out.height) != (64 * scale, 48 * scale) or not 20 < out.avg() < 235:
        raise RuntimeError(f"the model gave a wrong result ({out.width}x{out.height}, mean {out.avg()})")
    return seconds
