"""Which super-resolution models exist, what each expects, and which one to use.

A model is an ONNX file described by one entry of a `registry.json` beside it. The project's own
models live in `origin/superres/models/`; models a user builds on their own machine (for instance
`edge models add span`) go in another folder with its own `registry.json`, passed as an extra
folder. `available_models` lists the entries whose file is on disk and intact; `choose_model`
picks one for a scale and a device.

An entry (see models/registry.json for real ones; `training`, `quality` and `speed` are records):

    {"name": "edgesr-x2", "version": "1.0", "file": "edgesr_x2_v1_0.onnx", "sha256": "...",
     "scale": 2, "input": {"name": "input", "range": [0, 1], "colour_order": "RGB", "channels": 3},
     "output": {"name": "output", "range": [0, 1]},
     "tile": 384, "overlap": 8, "fp16_on_cuda": true, "file_fp16": null,
     "preferred_on": ["cpu", "cuda"], "priority": 0, "licence": "MIT ...",
     "speed": {"cpu": {"threads": 2, "output_mp_per_s": 9.1}}, "training": {...}, "quality": {...}}

`tile` and `overlap` are in input (low-resolution) pixels: overlap must cover the network's
receptive radius, so that tiles put together equal the whole image run at once.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

BUILTIN_DIR = Path(__file__).parent / "models"
DEVICES = ("cpu", "cuda")


class RegistryError(ValueError):
    """A registry.json that cannot be used; the message names the file, the model and the field."""


@dataclass(frozen=True)
class ModelSpec:
    name: str
    version: str
    path: Path
    scale: int
    input_name: str = "input"
    output_name: str = "output"
    input_range: tuple[float, float] = (0.0, 1.0)
    output_range: tuple[float, float] = (0.0, 1.0)
    colour_order: str = "RGB"  # or "BGR"
    channels: int = 3
    tile: int = 256
    overlap: int = 16
    fp16_on_cuda: bool = False
    path_fp16: Path | None = None  # an fp16 export, used on CUDA when fp16_on_cuda
    preferred_on: tuple[str, ...] = ("cpu",)
    priority: int = 0  # among models preferred on the same device, the higher wins
    licence: str = ""
    sha256: str | None = None
    speed: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # device -> {threads, output_mp_per_s}
    training: Mapping[str, Any] = field(default_factory=dict)
    quality: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """What the response's X-Upscale header says: `<model>@<version>`."""
        return f"{self.name}@{self.version}"

    def intact(self) -> bool:
        """The file is there and, when the entry records a sha256, has that content."""
        if not self.path.is_file():
            return False
        if self.sha256 is None:
            return True
        return hashlib.sha256(self.path.read_bytes()).hexdigest() == self.sha256


def _need(entry: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in entry:
        raise RegistryError(f"{where}: missing field '{key}'")
    value = entry[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
        raise RegistryError(f"{where}: field '{key}' must be {getattr(kind, '__name__', kind)}, got {value!r}")
    return value


def _range(value: Any, where: str) -> tuple[float, float]:
    if not (isinstance(value, list | tuple) and len(value) == 2 and all(isinstance(v, int | float) for v in value)):
        raise RegistryError(f"{where}: range must be [low, high], got {value!r}")
    return float(value[0]), float(value[1])


def parse_entry(entry: Mapping[str, Any], folder: Path, source: str) -> ModelSpec:
    """One registry entry -> ModelSpec, with a message that names the field on any error."""
    name = _need(entry, "name", str, source)
    where = f"{source}: model '{name}'"
    scale = _need(entry, "scale", int, where)
    if scale < 2:
        raise RegistryError(f"{where}: scale must be an integer >= 2, got {scale}")
    inp, out = entry.get("input", {}), entry.get("output", {})
    order = inp.get("colour_order", "RGB")
    if order not in ("RGB", "BGR"):
        raise RegistryError(f"{where}: input.colour_order must be RGB or BGR, got {order!r}")
    preferred = tuple(entry.get("preferred_on", ["cpu"]))
    unknown = [d for d in preferred if d not in DEVICES]
    if unknown:
        raise RegistryError(f"{where}: preferred_on may hold {', '.join(DEVICES)}, got {unknown}")
    tile, overlap = int(entry.get("tile", 256)), int(entry.get("overlap", 16))
    if tile < 16 or overlap < 0:
        raise RegistryError(f"{where}: tile must be >= 16 and overlap >= 0, got {tile} and {overlap}")
    fp16 = entry.get("file_fp16")
    return ModelSpec(
        name=name,
        version=str(_need(entry, "version", (str, int, float), where)),
        path=folder / _need(entry, "file", str, where),
        scale=scale,
        input_name=inp.get("name", "input"),
        output_name=out.get("name", "output"),
        input_range=_range(inp.get("range", [0, 1]), f"{where}: input"),
        output_range=_range(out.get("range", [0, 1]), f"{where}: output"),
        colour_order=order,
        channels=int(inp.get("channels", 3)),
        tile=tile,
        overlap=overlap,
        fp16_on_cuda=bool(entry.get("fp16_on_cuda", False)),
        path_fp16=folder / fp16 if fp16 else None,
        preferred_on=preferred,
        priority=int(entry.get("priority", 0)),
        licence=str(entry.get("licence", "")),
        sha256=entry.get("sha256"),
        speed=dict(entry.get("speed", {})),
        training=dict(entry.get("training", {})),
        quality=dict(entry.get("quality", {})),
    )


def load_registry(folder: Path) -> list[ModelSpec]:
    """Every entry of `folder/registry.json` (files not checked); [] when there is no registry."""
    path = folder / "registry.json"
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise RegistryError(f"{path}: not valid JSON: {e}") from e
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, list):
        raise RegistryError(f"{path}: expected an object with a 'models' list")
    return [parse_entry(entry, folder, str(path)) for entry in models]


def available_models(extra_dirs: Iterable[Path] = ()) -> list[ModelSpec]:
    """Models on disk: the built-in folder first, then each extra folder (a later entry with the
    same name replaces an earlier one). Entries whose file is missing or altered are left out."""
    by_name: dict[str, ModelSpec] = {}
    for folder in (BUILTIN_DIR, *extra_dirs):
        for spec in load_registry(Path(folder)):
            if spec.intact():
                by_name[spec.name] = spec
            else:
                log.warning("super-resolution model %s: %s is missing or not the file registered", spec.name, spec.path)
    return list(by_name.values())


def choose_model(models: Iterable[ModelSpec], scale: int, device: str) -> ModelSpec | None:
    """The model to run for `scale` on `device` ('cpu' or 'cuda'): those that prefer the device
    first, then the highest priority, then the latest version. None when no model has the scale."""
    candidates = [m for m in models if m.scale == scale]
    if not candidates:
        return None
    return max(candidates, key=lambda m: (device in m.preferred_on, m.priority, _version_key(m.version)))


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else 0 for p in version.replace("-", ".").split("."))


def plan_scales(models: Iterable[ModelSpec], scale: int) -> list[int]:
    """Model scales whose product is `scale`, fewest passes first (x4 natively, else x2 twice);
    [] when the registered scales cannot make it."""
    scales = sorted({m.scale for m in models}, reverse=True)
    best: list[int] | None = None

    def search(left: int, chain: list[int]) -> None:
        nonlocal best
        if left == 1:
            if best is None or len(chain) < len(best):
                best = list(chain)
            return
        for s in scales:
            if left % s == 0 and (best is None or len(chain) + 1 < len(best)):
                search(left // s, [*chain, s])

    if scale >= 2:
        search(scale, [])
    return best or []


def plan_chain(models: Iterable[ModelSpec], scale: int, device: str) -> list[ModelSpec]:
    """The models that make `scale` on `device`, in order. Models meant for the device come first:
    on a CPU, x4 as the project's x2 twice beats a GPU pack's x4 that takes ten times as long; other
    models are used only when those cannot make the scale. [] when nothing can."""
    models = list(models)
    preferred = [m for m in models if device in m.preferred_on]
    pool = preferred if plan_scales(preferred, scale) else models
    chain = []
    for s in plan_scales(pool, scale):
        spec = choose_model(pool, s, device)
        assert spec is not None  # plan_scales only returns scales some model has
        chain.append(spec)
    return chain
