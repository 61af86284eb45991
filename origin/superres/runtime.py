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

import importlib.util
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np
import pyvips

from origin.core.concurrency import cpu_count
from origin.core.errors import Cancelled
from origin.imaging.resample import enlarge
from origin.superres.registry import ModelSpec, choose_model, plan_chain
from origin.superres.remote import RemoteFailed, RemoteModels

if TYPE_CHECKING:
    import onnxruntime as ort

log = logging.getLogger(__name__)

CUDA, CPU = "CUDAExecutionProvider", "CPUExecutionProvider"
CUDA_TILE = 512  # input pixels; a GPU wants big tiles, a CPU cache-sized ones (the model's `tile`)
SPEED_SAMPLE = (384, 288)  # input size of the one-off speed measurement
MIN_REFINE_PIXELS = 250_000  # output pixels a real run needs to refine the measured speed


def onnxruntime() -> ModuleType:
    """onnxruntime, imported when a session is first opened: it adds about 40 MB to every process
    (22 MB of it private), which a server that upscales nothing never needs."""
    import onnxruntime as ort

    return ort


def onnxruntime_version() -> str:
    return str(onnxruntime().__version__)


def cuda_listed() -> bool:
    """Whether onnxruntime lists the CUDA provider. Only a build that ships the CUDA provider's
    library can (onnxruntime-gpu, or one built from source), so without it the answer costs no
    import."""
    spec = importlib.util.find_spec("onnxruntime")
    folders = spec.submodule_search_locations if spec is not None else None
    if not any(any((Path(f) / "capi").glob("*onnxruntime_providers_cuda*")) for f in folders or ()):
        return False
    return CUDA in onnxruntime().get_available_providers()


class ModelUnavailable(Exception):
    """The inference server failed and the local model would not finish before the deadline: the
    caller answers with Lanczos now and the model's rendition later."""


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
        remote: RemoteModels | None = None,
        local_runs: int = 1,
    ):
        self.models = list(models)
        # A shared inference server runs the models first; this process's sessions are its fallback
        # (at most `local_runs` at once, however many upscales are in flight to the server).
        self.remote = remote
        self._remote_speed: float | None = None  # output megapixels per second, as the server answers
        self._local_gate = threading.BoundedSemaphore(local_runs)
        self.threads = threads or cpu_count()
        self.tile = tile
        self.on_load = on_load  # (model label, provider it really got): for metrics
        wanted_cuda = use_cuda and cuda_listed()
        # onnxruntime-gpu[cuda,cudnn] brings CUDA and cuDNN as NVIDIA's wheels: load them from
        # there before the first session (a CUDA base image has them on the library path anyway).
        if wanted_cuda and hasattr(onnxruntime(), "preload_dlls"):
            onnxruntime().preload_dlls()
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
        if self.remote is not None and self.remote.circuit.closed:
            # Unknown until the server has answered once: try it (the request's deadline bounds it).
            out_mp = width * height * scale**2 / 1e6
            return out_mp / self._remote_speed if self._remote_speed else 0.0
        return self._local_seconds(chain, width, height)

    def _local_seconds(self, chain: Sequence[ModelSpec], width: int, height: int) -> float:
        seconds, w, h = 0.0, width, height
        for spec in chain:
            w, h = w * spec.scale, h * spec.scale
            seconds += w * h / 1e6 / self._speed(self._load(spec))
        return seconds

    # ------------------------------------------------------------------ pixels
    def upscale(
        self,
        image: pyvips.Image,
        scale: int,
        *,
        cancelled: Callable[[], bool] | None = None,
        deadline: float | None = None,
    ) -> pyvips.Image:
        """`image` (8-bit sRGB or grey, with or without alpha) enlarged exactly `scale` times.

        The result has the input's bands and interpretation. Raises ValueError for a scale no
        model (or chain of models) makes, Cancelled when `cancelled()` turns True. With a remote
        backend, a failed request runs the local model instead, unless its estimate does not fit
        before `deadline` (time.monotonic()): then ModelUnavailable."""
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

        for i in range(len(chain)):
            # the last pass writes 8-bit pixels straight away unless alpha or grey still need floats
            final = i == len(chain) - 1 and alpha is None and not grey
            rgb = self._pass(chain[i:], rgb, cancelled, np.uint8 if final else np.float32, deadline)

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
    def _pass(
        self,
        chain: Sequence[ModelSpec],
        rgb: np.ndarray,
        cancelled: Callable[[], bool] | None,
        dtype: type,
        deadline: float | None,
    ) -> np.ndarray:
        """The first model of `chain` over `rgb`: on the server when there is one and its circuit
        lets the request go, else (or when it fails, and the rest of `chain` still fits before
        `deadline` here) with the local session."""
        spec = chain[0]
        if self.remote is not None and self.remote.allows():
            start = time.perf_counter()
            try:
                out = self._run_remote(self.remote, spec, rgb, cancelled, dtype, deadline)
            except RemoteFailed as failure:
                height, width = rgb.shape[:2]
                left = math.inf if deadline is None else deadline - time.monotonic()
                if self._local_seconds(chain, width, height) > left:
                    raise ModelUnavailable(f"{failure}; the local model would not finish in time") from None
                log.warning("%s; running %s locally", failure, spec.label)
            else:
                measured = out.shape[0] * out.shape[1] / 1e6 / max(time.perf_counter() - start, 1e-6)
                self._remote_speed = _smoothed(self._remote_speed, measured)
                return out
        loaded = self._load(spec)
        with self._local_gate:
            start = time.perf_counter()
            out = self._run_tiles(loaded, rgb, cancelled, dtype)
            self._refine(loaded, out.shape[0] * out.shape[1], time.perf_counter() - start)
        return out

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
        ort = onnxruntime()
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
        spec, ov = loaded.spec, loaded.spec.overlap
        height, width = rgb.shape[:2]
        padded = _padded(rgb, spec, 0)
        out = np.empty((height * spec.scale, width * spec.scale, 3), dtype)
        tile = self._tile_size(loaded)
        for y0, y1 in _tiles(height, tile):
            for x0, x1 in _tiles(width, tile):
                if cancelled is not None and cancelled():
                    raise Cancelled
                x = _model_input(padded[None, y0 : y1 + 2 * ov, x0 : x1 + 2 * ov], spec, loaded.dtype)
                y = loaded.session.run([spec.output_name], {spec.input_name: x})[0][0]
                _place(out, y, spec, (y0, y1, x0, x1))
        return out

    def _run_remote(
        self,
        remote: RemoteModels,
        spec: ModelSpec,
        rgb: np.ndarray,
        cancelled: Callable[[], bool] | None,
        dtype: type,
        deadline: float | None,
    ) -> np.ndarray:
        """Like _run_tiles, on the inference server: every tile cut to the same size (the largest;
        the few tiles one pixel short take one more pixel of context, beyond the overlap that
        already covers the model's reach), so up to `remote.batch` of them travel in one request."""
        ov, s = spec.overlap, spec.scale
        height, width = rgb.shape[:2]
        rows, columns = _tiles(height, self.tile or spec.tile), _tiles(width, self.tile or spec.tile)
        th, tw = max(b - a for a, b in rows), max(b - a for a, b in columns)
        padded = _padded(rgb, spec, 1)
        out = np.empty((height * s, width * s, 3), dtype)
        cells = [(y0, y1, x0, x1) for y0, y1 in rows for x0, x1 in columns]
        for first in range(0, len(cells), remote.batch):
            if cancelled is not None and cancelled():
                raise Cancelled
            group = cells[first : first + remote.batch]
            patches = np.stack([padded[y0 : y0 + th + 2 * ov, x0 : x0 + tw + 2 * ov] for y0, _, x0, _ in group])
            y = remote.infer(spec, _model_input(patches, spec, np.float32), deadline)
            for cell, tile_out in zip(group, y, strict=True):
                _place(out, tile_out, spec, cell)
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
            loaded.speed = _smoothed(loaded.speed, out_pixels / 1e6 / seconds)


def _smoothed(speed: float | None, measured: float) -> float:
    """A speed estimate moved towards a new measurement (the first measurement is taken as it is)."""
    return measured if speed is None else 0.7 * speed + 0.3 * measured


def _padded(rgb: np.ndarray, spec: ModelSpec, extra: int) -> np.ndarray:
    """The image with `overlap` pixels (plus `extra` at the bottom and right) copied from its edges,
    like libvips extends them, in the model's colour order."""
    ov = spec.overlap
    padded = np.pad(rgb, ((ov, ov + extra), (ov, ov + extra), (0, 0)), mode="edge")
    return padded[..., ::-1] if spec.colour_order == "BGR" else padded


def _model_input(patches: np.ndarray, spec: ModelSpec, dtype: type) -> np.ndarray:
    """N x H x W x 3 (0..255) -> N x 3 x H x W in the model's input range and `dtype`."""
    lo, hi = spec.input_range
    out: np.ndarray = (patches.transpose(0, 3, 1, 2) * ((hi - lo) / 255) + lo).astype(dtype)
    return out


def _place(out: np.ndarray, y: np.ndarray, spec: ModelSpec, cell: tuple[int, int, int, int]) -> None:
    """Write the core of one tile's output (3 x sH' x sW', the model's range) into `out`, cutting
    off the overlap; 0..255, rounded when `out` is uint8."""
    y0, y1, x0, x1 = cell
    s, ov = spec.scale, spec.overlap
    olo, ohi = spec.output_range
    core = y[:, ov * s : ov * s + (y1 - y0) * s, ov * s : ov * s + (x1 - x0) * s]
    if spec.colour_order == "BGR":
        core = core[::-1]
    core = (core - olo) * (255 / (ohi - olo)) + (0.5 if out.dtype == np.uint8 else 0)
    out[y0 * s : y1 * s, x0 * s : x1 * s] = np.clip(core, 0, 255).transpose(1, 2, 0)


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
