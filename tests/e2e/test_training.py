"""training/train.py on tiny data, end to end: it trains, exports ONNX and the fp16 copy, writes a
registry entry, and the server's own registry and Upscaler load and run what it wrote."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import pyvips

from origin.superres.registry import available_models
from origin.superres.runtime import Upscaler, smoke_test

pytest.importorskip(
    "torch",
    reason="training/train.py needs torch: ./dev installs it where a CPU build is among this machine's wheels "
    "(elsewhere: pip install torch)",
)

REPO = Path(__file__).resolve().parents[2]


def tiny_photos(folder: Path, count: int = 3, size: int = 96) -> None:
    """Small images with edges, gradients and texture (nothing like the evaluation photos, which
    the script's dedup step would drop)."""
    folder.mkdir()
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    for i in range(count):
        r = 128 + 100 * np.sin(xx / (3 + i) + yy / 11)
        g = np.where((xx // (8 + 4 * i) + yy // 12) % 2 == 0, 200, 40)
        b = rng.integers(0, 255, (size, size))
        rgb = np.clip(np.stack([r, g, b], axis=-1), 0, 255).astype(np.uint8)
        pyvips.Image.new_from_array(rgb, interpretation="srgb").pngsave(str(folder / f"tiny_{i}.png"))


def test_the_training_script_makes_a_model_the_server_loads_and_runs(tmp_path: Path):
    tiny_photos(tmp_path / "photos")
    models = tmp_path / "models"
    args = ["--photos", str(tmp_path / "photos"), "--models-dir", str(models), "--name", "tiny-x2"]
    args += ["--version", "0.1", "--steps", "4", "--minutes", "2", "--patch", "32", "--batch", "2"]
    args += ["--channels", "8", "--layers", "2", "--val-every", "1000", "--no-multiscale", "--threads", "1"]
    run = subprocess.run(
        [sys.executable, "training/train.py", *args], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr[-3000:]

    [entry] = json.loads((models / "registry.json").read_text())["models"]
    assert (entry["name"], entry["version"], entry["scale"]) == ("tiny-x2", "0.1", 2)
    assert entry["training"]["steps"] == 4
    splits = {d["file"]: d["split"] for d in entry["training"]["data"]}
    assert splits == {"tiny_0.png": "train", "tiny_1.png": "train", "tiny_2.png": "validation"}
    assert (models / entry["file"]).is_file() and (models / entry["file_fp16"]).is_file()

    [spec] = [m for m in available_models([models]) if m.name == "tiny-x2"]  # its sha256 checks out
    upscaler = Upscaler([spec], threads=1, use_cuda=False)
    assert upscaler.label(2) == "tiny-x2@0.1"
    assert smoke_test(upscaler, 2) > 0  # right size, sane pixels
