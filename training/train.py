"""Train the project's own super-resolution model and export it to ONNX (not part of the installed package).

    python3 -m venv /tmp/trainvenv
    /tmp/trainvenv/bin/pip install torch==2.13.0 numpy pyvips pyvips-binary onnx onnxruntime
    /tmp/trainvenv/bin/python training/train.py --scale 2 --minutes 15

Steps, in order (each one logs what it did):
  1. fetch     photos that registry packages ship: scikit-image / scikit-learn wheels (pip download),
               Debian wallpaper packages (apt-get download + dpkg -x), into --data-dir
  2. dedup     exclude every candidate that is an evaluation photo (every file in
               ../shared/corpus/photos and tests/corpus): same file bytes, same decoded pixels
               (sha256), or the same picture resized / re-encoded / rotated (a 32x32 luma signature)
  3. prepare   HR = the photo (and a half-size copy of large ones), LR = libvips Lanczos3 reduce by
               the scale, i.e. the degradation the benchmark uses
  4. train     random patches, 8 flips/rotations, L1 then L2, Adam with a cosine schedule, for a
               wall-clock budget; Y-PSNR on a held-out split of the training photos picks the best
  5. export    ONNX opset 17, dynamic H/W, checked against torch with onnxruntime, plus a float16
               copy for CUDA; the model's entry in models/registry.json is written (data list,
               exclusions, time, quality)

The network (see SuperResNet): 3x3 convolutions at LR resolution with LeakyReLU whose slope is
learnt per layer (a PReLU with one parameter: no dead units, and it exports as LeakyRelu, which
onnxruntime fuses into the convolution; per-channel PReLU is not fused and cost 2-3x the time on
CPU), a last layer with a small init that predicts scale^2 x 3 residual channels, plus a fixed
centre-aligned Lanczos3 upsample folded into a 7x7 grouped convolution, then one PixelShuffle
(DepthToSpace). With the residual at zero the output is exactly Lanczos3.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import logging
import math
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyvips
import torch
import torch.nn as nn
import torch.nn.functional as F

log = logging.getLogger("train")

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "origin" / "superres" / "models"
sys.path.insert(0, str(REPO))  # one Lanczos3 for the model's fixed base and for delivery
from origin.imaging.resample import lanczos3_phases  # noqa: E402

EVAL_DIRS = [REPO.parent / "shared" / "corpus" / "photos", REPO / "tests" / "corpus"]

# ---------------------------------------------------------------------------------------------
# Training photos: (package, registry, version, path inside the unpacked package).
# Only photographs (no vector art or renders). Copies of the evaluation photos are listed on
# purpose: the dedup step must find and drop them, and logs that it did.
# ---------------------------------------------------------------------------------------------
PACKAGES = {
    "scikit-image": ("pypi", "0.26.0"),
    "scikit-learn": ("pypi", "1.9.1"),
    "lomiri-wallpapers-16.04": ("debian", "20.04.0-2"),
    "lomiri-wallpapers-20.04": ("debian", "20.04.0-2"),
    "mate-backgrounds": ("debian", "1.26.0-1"),
    "plasma-workspace-wallpapers": ("debian", "4:5.27.5-2"),
}
_SK = "skimage/data/"
_LO = "usr/share/backgrounds/"
_MA = "usr/share/backgrounds/mate/nature/"
_PL = "usr/share/wallpapers/{}/contents/images/2560x1600.jpg"
CANDIDATES: list[tuple[str, str]] = (
    [
        ("scikit-image", _SK + f)
        for f in (
            "astronaut.png brick.png camera.png chelsea.png coffee.png coins.png grass.png gravel.png "
            "hubble_deep_field.jpg ihc.png moon.png motorcycle_left.png motorcycle_right.png retina.jpg "
            "rocket.jpg"
        ).split()
    ]
    + [("scikit-learn", "sklearn/datasets/images/" + f) for f in ("china.jpg", "flower.jpg")]
    + [
        ("lomiri-wallpapers-16.04", _LO + f)
        for f in (
            "Bridge_by_Sander_Klootwijk.jpg Dragonfly_by_Bolly.jpg Picture_0B_by_freespace.jpg "
            "Picture_1A_by_freespace.jpg Wine_by_Jakkub_Mede.jpg aitzgorri_by_Aitzol_Berasategi.jpg "
            "free_by_Peter_Nerlich.jpg friends_by_Aitzol_Berasategi.jpg greentock_by_Peter_Nerlich.jpg "
            "life_by_Aitzol_Berasategi.jpg picosdeeuropa_by_Aitzol_Berasategi.jpg "
            "seeding_by_Clements_Engelhardt.jpg sunset_by_Aitzol_Berasategi.jpg"
        ).split()
    ]
    + [("lomiri-wallpapers-20.04", _LO + f) for f in ("Infinite-Sea_by_Aury88.jpg", "Kleiber_by_Lukas_Baubkus.jpg")]
    + [
        ("mate-backgrounds", _MA + f)
        for f in (
            "Aqua.jpg Blinds.jpg Dune.jpg FreshFlower.jpg Garden.jpg GreenMeadow.jpg LadyBird.jpg "
            "RainDrops.jpg Storm.jpg TwoWings.jpg Wood.jpg YellowFlower.jpg"
        ).split()
    ]
    + [
        ("plasma-workspace-wallpapers", _PL.format(f))
        for f in (
            "BytheWater ColdRipple ColorfulCups DarkestHour EveningGlow FallenLeaf Grey Kite "
            "OneStandsOut Path summer_1am"
        ).split()
    ]
)
# Held out from training, used for validation (and picking the best checkpoint) only.
VALIDATION = {"TwoWings.jpg", "summer_1am", "camera.png", "Wine_by_Jakkub_Mede.jpg", "greentock_by_Peter_Nerlich.jpg"}

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".gif", ".avif", ".mpo", ".heic"}
MAX_DECODE_PIXELS = 60_000_000  # the corpus holds decompression bombs: never decode those


# ---------------------------------------------------------------------------------------------
# 1. fetch
# ---------------------------------------------------------------------------------------------
def fetch(data_dir: Path) -> dict[str, Path]:
    """Download and unpack each package once; returns package -> unpacked root."""
    pkgs, roots = data_dir / "packages", {}
    pkgs.mkdir(parents=True, exist_ok=True)
    for name, (registry, version) in PACKAGES.items():
        root = data_dir / "unpacked" / name
        roots[name] = root
        if root.exists():
            continue
        if registry == "pypi":
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    "--only-binary=:all:",
                    f"{name}=={version}",
                    "-d",
                    str(pkgs),
                ],
                check=True,
            )
            wheel = next(pkgs.glob(name.replace("-", "_") + f"-{version}-*.whl"))
            subprocess.run([sys.executable, "-m", "zipfile", "-e", str(wheel), str(root)], check=True)
        else:
            subprocess.run(["apt-get", "download", f"{name}={version}"], cwd=pkgs, check=True)
            deb = next(pkgs.glob(f"{name}_*.deb"))
            subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True)
        log.info("fetched %s %s (%s) into %s", name, version, registry, root)
    return roots


# ---------------------------------------------------------------------------------------------
# 2. dedup against the evaluation photos
# ---------------------------------------------------------------------------------------------
@dataclass
class Fingerprint:
    path: Path
    file_sha256: str
    pixel_sha256: str | None  # sRGB uchar pixels, after EXIF rotation
    aspect: float | None
    signature: np.ndarray | None  # 32x32 luma
    weight: np.ndarray | None  # 32x32 opacity: transparent parts of a picture do not count


def _srgb(image: pyvips.Image) -> pyvips.Image:
    if image.hasalpha():
        image = image.flatten(background=[255])
    if image.interpretation not in ("srgb", "b-w") or image.format != "uchar":
        image = image.colourspace("srgb")
    if image.bands == 1:
        image = image.colourspace("srgb")
    return image.cast("uchar") if image.format != "uchar" else image


def fingerprint(path: Path) -> Fingerprint:
    data = path.read_bytes()
    fp = Fingerprint(path, hashlib.sha256(data).hexdigest(), None, None, None, None)
    try:
        header = pyvips.Image.new_from_buffer(data, "")
        if header.width * header.height > MAX_DECODE_PIXELS:
            return fp
        image = _srgb(header.autorot())
        pixels = image.write_to_memory()
        fp.pixel_sha256 = hashlib.sha256(f"{image.width}x{image.height}x{image.bands}:".encode() + pixels).hexdigest()
        fp.aspect = image.width / image.height
        rotated = header.autorot()
        colour = rotated.extract_band(0, n=rotated.bands - 1) if rotated.hasalpha() else rotated
        small = _srgb(colour).colourspace("b-w").thumbnail_image(32, height=32, size="force")
        fp.signature = small.numpy().astype(np.float64).reshape(32, 32)
        fp.weight = np.ones((32, 32))
        if rotated.hasalpha():
            alpha = rotated.extract_band(rotated.bands - 1).cast("uchar").thumbnail_image(32, height=32, size="force")
            fp.weight = alpha.numpy().astype(np.float64).reshape(32, 32) / 255
    except pyvips.Error:
        pass  # not an image libvips can decode (empty, random bytes, header only): bytes still count
    return fp


def _correlation(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> float:
    if w.sum() < 0.3 * w.size:
        return 0.0
    a = a - (w * a).sum() / w.sum()
    b = b - (w * b).sum() / w.sum()
    return float((w * a * b).sum() / math.sqrt((w * a * a).sum() * (w * b * b).sum() + 1e-9))


def near_duplicate(a: Fingerprint, b: Fingerprint, threshold: float = 0.93) -> bool:
    """Same picture resized, re-encoded, greyed, turned or given an alpha mask: weighted correlation
    of 32x32 luma signatures, in each of the 8 orientations, for pictures of the same shape."""
    if a.signature is None or b.signature is None:
        return False
    for k in range(4):
        for flip in (False, True):
            sig, weight = np.rot90(a.signature, k), np.rot90(a.weight, k)
            if flip:
                sig, weight = sig[:, ::-1], weight[:, ::-1]
            aspect = a.aspect if k % 2 == 0 else 1 / a.aspect
            if (
                abs(math.log(aspect / b.aspect)) < 0.04
                and _correlation(sig, b.signature, weight * b.weight) >= threshold
            ):
                return True
    return False


def dedup(
    candidates: list[tuple[str, str, Path]], eval_dirs: list[Path]
) -> tuple[list[tuple[str, str, Path]], list[dict]]:
    """Drop candidates that are (copies of) evaluation photos, or repeats of each other."""
    evals = [fingerprint(p) for d in eval_dirs if d.is_dir() for p in sorted(d.rglob("*")) if p.is_file()]
    log.info("dedup: %d evaluation files in %s", len(evals), ", ".join(str(d) for d in eval_dirs))
    by_file = {e.file_sha256: e for e in evals}
    by_pixels = {e.pixel_sha256: e for e in evals if e.pixel_sha256}
    kept, excluded, seen = [], [], set()
    for package, rel, path in candidates:
        fp = fingerprint(path)
        reason, match = None, None
        if fp.file_sha256 in by_file:
            reason, match = "same file bytes (sha256)", by_file[fp.file_sha256]
        elif fp.pixel_sha256 in by_pixels:
            reason, match = "same decoded pixels (sha256)", by_pixels[fp.pixel_sha256]
        else:
            match = next((e for e in evals if near_duplicate(fp, e)), None)
            reason = "same picture resized/re-encoded/rotated (luma signature)" if match else None
        if reason is None and (fp.file_sha256 in seen or fp.pixel_sha256 in seen):
            reason = "duplicate of another training photo"
        if reason:
            where = str(match.path) if match else ""
            excluded.append({"package": package, "file": rel, "reason": reason, "matches": where})
            log.info("dedup: EXCLUDED %s %s: %s %s", package, rel, reason, where)
            continue
        seen.update({fp.file_sha256, fp.pixel_sha256})
        kept.append((package, rel, path))
    log.info("dedup: kept %d of %d candidates, excluded %d", len(kept), len(candidates), len(excluded))
    return kept, excluded


# ---------------------------------------------------------------------------------------------
# 3. prepare HR/LR pairs
# ---------------------------------------------------------------------------------------------
@dataclass
class Pair:
    name: str
    hr: np.ndarray  # H x W x 3 uint8
    lr: np.ndarray  # H/s x W/s x 3 uint8


def degrade(hr: pyvips.Image, scale: int) -> pyvips.Image:
    """The benchmark's degradation: libvips Lanczos3 reduce (centre-aligned) by exactly `scale`."""
    lr = hr.resize(1 / scale, kernel="lanczos3")
    return lr.crop(0, 0, hr.width // scale, hr.height // scale)


def make_pairs(path: Path, name: str, scale: int, multiscale: bool) -> list[Pair]:
    image = _srgb(pyvips.Image.new_from_file(str(path)).autorot())
    versions = [image]
    if multiscale and min(image.width, image.height) >= 1600:
        versions.append(image.resize(0.5, kernel="lanczos3"))  # finer detail per pixel
    pairs = []
    for i, hr in enumerate(versions):
        hr = hr.crop(0, 0, hr.width - hr.width % scale, hr.height - hr.height % scale).copy_memory()
        lr = degrade(hr, scale)
        pairs.append(Pair(f"{name}@{i}", hr.numpy(), lr.numpy()))
    return pairs


# ---------------------------------------------------------------------------------------------
# 4. the network
# ---------------------------------------------------------------------------------------------
# lanczos3_phases: the pipeline's own (origin.imaging.resample), so the network's fixed base is exactly
# the Lanczos3 that delivery enlarges with when no model runs.


class SuperResNet(nn.Module):
    """x`scale` SR at LR resolution: `layers` 3x3 convs of `channels`, a residual head, PixelShuffle."""

    def __init__(self, scale: int, channels: int = 32, layers: int = 5):
        super().__init__()
        self.scale = scale
        convs = [nn.Conv2d(3, channels, 3, padding=1)] + [
            nn.Conv2d(channels, channels, 3, padding=1) for _ in range(layers - 1)
        ]
        for conv in convs:  # keep the signal's scale through the stack (the default init shrinks it ~3x a layer)
            nn.init.kaiming_normal_(conv.weight, a=0.1, nonlinearity="leaky_relu")
            nn.init.zeros_(conv.bias)
        self.convs = nn.ModuleList(convs)
        self.slopes = nn.ModuleList(nn.PReLU(1, init=0.1) for _ in convs)
        self.tail = nn.Conv2d(channels, 3 * scale * scale, 3, padding=1)
        nn.init.normal_(self.tail.weight, std=1e-3)  # start at plain Lanczos3
        nn.init.zeros_(self.tail.bias)
        w = lanczos3_phases(scale)
        kernel = np.zeros((3 * scale * scale, 1, 7, 7), dtype=np.float32)
        for c in range(3):
            for i in range(scale):
                for j in range(scale):
                    kernel[c * scale * scale + i * scale + j, 0] = np.outer(w[i], w[j])
        self.register_buffer("skip", torch.from_numpy(kernel))  # fixed, not trained
        self.shuffle = nn.PixelShuffle(scale)
        self.exporting = False

    @property
    def receptive_radius(self) -> int:
        return max(len(self.convs) + 1, 3)  # LR pixels each side that influence an output pixel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = x
        for conv, slope in zip(self.convs, self.slopes, strict=True):
            f = conv(f)
            f = F.leaky_relu(f, slope.weight.item()) if self.exporting else slope(f)
        y = self.tail(f) + F.conv2d(x, self.skip, padding=3, groups=3)
        return self.shuffle(y)


def load_onnx_weights(model: SuperResNet, path: Path) -> None:
    """Start from an exported model (fine-tuning): its initialisers, in graph order, are the convs'
    weights and biases; LeakyRelu alphas are the learnt slopes."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    convs = [n for n in graph.node if n.op_type == "Conv" and n.input[1] in inits and inits[n.input[1]].shape[1] != 1]
    alphas = [a.f for n in graph.node if n.op_type == "LeakyRelu" for a in n.attribute if a.name == "alpha"]
    grown = len(model.convs) + 1 - len(convs)  # feature layers this model has beyond the file's
    targets = [*model.convs[: len(model.convs) - grown], model.tail]
    if grown < 0 or len(convs) != len(targets) or len(alphas) != len(convs) - 1:
        raise SystemExit(f"{path} does not fit this architecture ({len(convs)} convs, {len(alphas)} activations)")
    with torch.no_grad():
        for conv, node in zip(targets, convs, strict=True):
            conv.weight.copy_(torch.from_numpy(inits[node.input[1]]))
            conv.bias.copy_(torch.from_numpy(inits[node.input[2]]))
        for slope, alpha in zip(model.slopes, alphas, strict=False):
            slope.weight.fill_(alpha)
        # Growing a deeper model: each extra layer starts as the identity (a Dirac kernel, slope 1),
        # so the grown network computes exactly the file's function and fine-tuning starts there.
        new = len(model.convs) - grown
        for conv, slope in zip(model.convs[new:], model.slopes[new:], strict=True):
            nn.init.dirac_(conv.weight)
            conv.weight.add_(torch.randn_like(conv.weight) * 1e-4)
            nn.init.zeros_(conv.bias)
            slope.weight.fill_(1.0)
    log.info("init: weights from %s%s", path, f", {grown} identity layer(s) added" if grown else "")


# ---------------------------------------------------------------------------------------------
# metrics
# ---------------------------------------------------------------------------------------------
def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 Y (16..235) of 8-bit RGB, as float64."""
    rgb = rgb.astype(np.float64)
    return 16 + (65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]) / 255


def y_psnr(a: np.ndarray, b: np.ndarray, shave: int) -> float:
    d = luma(a)[shave:-shave, shave:-shave] - luma(b)[shave:-shave, shave:-shave]
    return 10 * math.log10(255**2 / max(float((d**2).mean()), 1e-12))


def to_tensor(batch: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(batch.transpose(0, 3, 1, 2))).float().div_(255)


def to_uint8(t: torch.Tensor) -> np.ndarray:
    return t.clamp(0, 1).mul(255).round().byte().permute(0, 2, 3, 1).numpy()


@torch.no_grad()
def validate(model: SuperResNet, val: list[Pair], scale: int) -> tuple[float, float]:
    """Mean Y-PSNR gain over plain Lanczos3 (the model's own skip path) on held-out photos, and the
    mean Y-PSNR. The gain picks the best checkpoint: it is what the bar measures, and smooth
    wallpapers (45 dB) would otherwise drown textured photos (29 dB) in a mean of PSNRs."""
    model.eval()
    ours, base, r = [], [], model.receptive_radius
    for pair in val:
        lr = np.pad(pair.lr, ((r, r), (r, r), (0, 0)), mode="edge")
        out = model(to_tensor(lr[None]))[:, :, r * scale : -r * scale, r * scale : -r * scale]
        saved = model.tail.weight.data.clone(), model.tail.bias.data.clone()
        model.tail.weight.data.zero_(), model.tail.bias.data.zero_()
        lz = model(to_tensor(lr[None]))[:, :, r * scale : -r * scale, r * scale : -r * scale]
        model.tail.weight.data, model.tail.bias.data = saved
        ours.append(y_psnr(to_uint8(out)[0], pair.hr, 4 * scale))
        base.append(y_psnr(to_uint8(lz)[0], pair.hr, 4 * scale))
    model.train()
    return float(np.mean(ours) - np.mean(base)), float(np.mean(ours))


# ---------------------------------------------------------------------------------------------
# 4. train
# ---------------------------------------------------------------------------------------------
class PatchSampler:
    def __init__(
        self, pairs: list[Pair], scale: int, patch: int, seed: int, area_power: float = 0.5, flat_keep: float = 0.3
    ):
        pairs = [p for p in pairs if min(p.lr.shape[:2]) >= patch]  # x4 makes small photos too small
        self.pairs, self.scale, self.patch, self.flat_keep = pairs, scale, patch, flat_keep
        self.rng = np.random.default_rng(seed)
        # area_power 1: every pixel equally likely (big wallpapers dominate, as in the photos a CDN
        # serves); 0.5 (the default): small texture photos count more.
        areas = np.array([(p.lr.shape[0] * p.lr.shape[1]) ** area_power for p in pairs])
        self.weights = areas / areas.sum()

    def batch(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        s, p, rng = self.scale, self.patch, self.rng
        lrs, hrs = [], []
        while len(lrs) < n:
            pair = self.pairs[rng.choice(len(self.pairs), p=self.weights)]
            y = int(rng.integers(0, pair.lr.shape[0] - p + 1))
            x = int(rng.integers(0, pair.lr.shape[1] - p + 1))
            lr = pair.lr[y : y + p, x : x + p]
            hr = pair.hr[y * s : (y + p) * s, x * s : (x + p) * s]
            if hr.std() < 6 and rng.random() >= self.flat_keep:
                continue  # flat sky, walls and bokeh teach little; keep some
            k, flip = int(rng.integers(4)), bool(rng.integers(2))
            lr, hr = np.rot90(lr, k), np.rot90(hr, k)
            if flip:
                lr, hr = lr[:, ::-1], hr[:, ::-1]
            lrs.append(lr)
            hrs.append(hr)
        return np.stack(lrs), np.stack(hrs)


def train(model: SuperResNet, sampler: PatchSampler, val: list[Pair], args: argparse.Namespace) -> dict:
    scale, budget = args.scale, args.minutes * 60
    model.to(memory_format=torch.channels_last)  # oneDNN convolutions: about 3x faster on CPU
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    m = model.receptive_radius * scale  # loss on the interior: borders see zero padding, the runtime pads
    best = {"gain": -99.0, "state": None, "step": 0}
    start, last_val, step, patches = time.monotonic(), time.monotonic(), 0, 0
    history = []
    # An exponential moving average of the weights is what gets validated and exported: Adam's
    # step-to-step wobble moved validation by +-0.1 dB, more than a fine-tune gains.
    ema = {k: v.detach().clone() for k, v in model.state_dict().items()} if args.ema else None

    def evaluate() -> tuple[float, float, dict]:
        if ema is None:
            return (*validate(model, val, scale), model.state_dict())
        live = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(ema)
        gain, psnr = validate(model, val, scale)
        model.load_state_dict(live)
        return gain, psnr, ema

    while True:
        elapsed = time.monotonic() - start
        if elapsed > budget or (args.steps and step >= args.steps):
            break
        if args.steps:  # a step budget: the schedule follows steps, not the (shared) clock
            elapsed = budget * step / args.steps
        frac = elapsed / budget
        for group in opt.param_groups:
            group["lr"] = args.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * frac)))
        lr_np, hr_np = sampler.batch(args.batch)
        out = model(to_tensor(lr_np).contiguous(memory_format=torch.channels_last))[:, :, m:-m, m:-m]
        target = to_tensor(hr_np)[:, :, m:-m, m:-m]
        loss = F.l1_loss(out, target) if frac < args.l2_from else F.mse_loss(out, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if ema is not None:
            with torch.no_grad():
                for k, v in model.state_dict().items():
                    if v.is_floating_point():
                        ema[k].mul_(args.ema).add_(v, alpha=1 - args.ema)
        step += 1
        patches += len(lr_np)
        if time.monotonic() - last_val > args.val_every or time.monotonic() - start > budget:
            gain, psnr, state = evaluate()
            history.append({"seconds": round(time.monotonic() - start), "step": step, "gain_db": round(gain, 3)})
            log.info(
                "step %d (%.0f s, %d patches, loss %.5f): validation Y-PSNR %.3f dB, %+.3f dB over Lanczos3",
                step,
                time.monotonic() - start,
                patches,
                loss.item(),
                psnr,
                gain,
            )
            if gain > best["gain"]:
                best = {"gain": gain, "psnr": psnr, "state": {k: v.clone() for k, v in state.items()}, "step": step}
            last_val = time.monotonic()
    gain, psnr, state = evaluate()
    if gain > best["gain"]:
        best = {"gain": gain, "psnr": psnr, "state": state, "step": step}
    model.load_state_dict(best["state"])
    model.to(memory_format=torch.contiguous_format)
    return {
        "steps": step,
        "patches": patches,
        "seconds": round(time.monotonic() - start),
        "best_step": best["step"],
        "val_y_psnr": round(best["psnr"], 3),
        "val_gain_db": round(best["gain"], 3),
        "history": history,
    }


# ---------------------------------------------------------------------------------------------
# 5. export
# ---------------------------------------------------------------------------------------------
def export(model: SuperResNet, path: Path) -> None:
    import onnx
    import onnxruntime as ort

    model.eval()
    model.exporting = True
    sample = torch.rand(1, 3, 40, 56)
    torch.onnx.export(
        model,
        (sample,),
        str(path),
        opset_version=17,
        input_names=["input"],
        output_names=["output"],
        dynamic_axes={
            "input": {0: "batch", 2: "height", 3: "width"},
            "output": {0: "batch", 2: "out_height", 3: "out_width"},
        },
        dynamo=False,
    )
    model.exporting = False
    onnx.checker.check_model(onnx.load(str(path)))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.rand(1, 3, 67, 93)
    with torch.no_grad():
        expected = model(x).numpy()
    got = session.run(None, {"input": x.numpy()})[0]
    err = float(np.abs(got - expected).max())
    log.info("export: %s, %d bytes, max |onnx - torch| = %.2e", path, path.stat().st_size, err)
    if err > 1e-4:
        raise SystemExit(f"exported model differs from torch by {err}")


def export_fp16(path: Path) -> Path:
    """A float16 copy of an exported model (weights and I/O) for CUDA; the CPU runs the float32 one.
    Checked on a photo-like input (noise drives activations far beyond what photos do)."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, numpy_helper

    model = onnx.load(str(path))
    for init in model.graph.initializer:
        if init.data_type == TensorProto.FLOAT:
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name))
    for node in model.graph.node:
        if node.op_type == "Constant":
            raise SystemExit(f"{path}: Constant node {node.name}: extend export_fp16 to convert it")
    for value in [*model.graph.input, *model.graph.output]:
        value.type.tensor_type.elem_type = TensorProto.FLOAT16
    onnx.checker.check_model(model)
    out = path.with_name(path.stem + "_fp16.onnx")
    onnx.save(model, str(out))
    yy, xx = np.mgrid[0:64, 0:80] / 80.0
    x = np.stack([xx, yy, 0.5 + 0.3 * np.sin(xx * 9) * np.cos(yy * 7)])[None]
    ref = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    half = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    expected = ref.run(None, {"input": x.astype(np.float32)})[0]
    got = half.run(None, {"input": x.astype(np.float16)})[0].astype(np.float32)
    err = float(np.abs(got - expected).max())
    log.info("export: %s, max |fp16 - fp32| = %.2e (x 255 = %.2f levels)", out, err, err * 255)
    if err * 255 > 2:
        raise SystemExit(f"the fp16 copy differs from fp32 by {err * 255:.1f}/255")
    return out


def write_registry(entry: dict, models_dir: Path = MODELS) -> None:
    path = models_dir / "registry.json"
    registry = json.loads(path.read_text()) if path.exists() else {"format": 1, "models": []}
    registry["models"] = [m for m in registry["models"] if m["name"] != entry["name"]] + [entry]
    registry["models"].sort(key=lambda m: (m["scale"], m["name"]))
    path.write_text(json.dumps(registry, indent=2) + "\n")
    log.info("registry: wrote %s in %s", entry["name"], path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", type=int, choices=(2, 4), default=2)
    ap.add_argument("--minutes", type=float, default=15, help="wall-clock training budget")
    ap.add_argument("--steps", type=int, default=0, help="stop after this many steps (the clock still caps)")
    ap.add_argument("--channels", type=int, default=32)
    ap.add_argument("--layers", type=int, default=5, help="3x3 feature convolutions before the tail")
    ap.add_argument("--patch", type=int, default=96, help="LR patch side")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--init", type=Path, help="fine-tune: start from this exported .onnx (same architecture, or fewer layers)"
    )
    ap.add_argument("--l2-from", type=float, default=0.75, help="fraction of the budget after which the loss is L2")
    ap.add_argument("--ema", type=float, default=0.0, help="validate and export a moving average of the weights")
    ap.add_argument("--area-power", type=float, default=0.5, help="photo sampling weight = LR area ** this")
    ap.add_argument("--flat-keep", type=float, default=0.3, help="share of flat patches (HR std < 6) kept")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--val-every", type=float, default=60, help="seconds between validations")
    ap.add_argument("--data-dir", type=Path, default=Path("/tmp/sr-train-data"))
    ap.add_argument("--name", default=None, help="model name (default edgesr-x<scale>)")
    ap.add_argument("--version", default="1.0")
    ap.add_argument("--no-multiscale", action="store_true")
    ap.add_argument("--dry-run", action="store_true", help="fetch and dedup only")
    ap.add_argument(
        "--photos",
        type=Path,
        help="train on the images in this folder instead of the packages' photos (nothing is fetched; "
        "the last file by name validates); for trying changes quickly, and for the test on tiny data",
    )
    ap.add_argument("--models-dir", type=Path, default=MODELS, help="where the ONNX files and registry.json go")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("pyvips").setLevel(logging.WARNING)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    name = args.name or f"edgesr-x{args.scale}"

    if args.photos:
        local = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"))
        if len(local) < 2:
            raise SystemExit(f"--photos {args.photos}: need two images or more (the last one validates)")
        candidates = [("local", p.name, p) for p in local]
        validation = {local[-1].name}
    else:
        roots = fetch(args.data_dir)
        candidates = [(pkg, rel, roots[pkg] / rel) for pkg, rel in CANDIDATES]
        validation = VALIDATION
    missing = [str(p) for _, _, p in candidates if not p.is_file()]
    if missing:
        raise SystemExit(f"missing from the unpacked packages: {missing}")
    kept, excluded = dedup(candidates, EVAL_DIRS)
    if args.dry_run:
        return

    t0 = time.monotonic()
    train_pairs, val_pairs, data_list = [], [], []
    for package, rel, path in kept:
        held_out = any(v in rel for v in validation)
        pairs = make_pairs(path, rel, args.scale, multiscale=not args.no_multiscale and not held_out)
        data_list.append(
            {
                "package": package,
                "registry": PACKAGES.get(package, ("local folder", ""))[0],
                "version": PACKAGES.get(package, ("", ""))[1],
                "file": rel,
                "split": "validation" if held_out else "train",
                "size": f"{pairs[0].hr.shape[1]}x{pairs[0].hr.shape[0]}",
            }
        )
        if held_out:  # a centre crop keeps validation quick
            hr, s = pairs[0].hr, args.scale
            h, w = min(hr.shape[0], 768) // s * s, min(hr.shape[1], 768) // s * s
            y, x = (hr.shape[0] - h) // 2 // s * s, (hr.shape[1] - w) // 2 // s * s
            crop = pyvips.Image.new_from_array(np.ascontiguousarray(hr[y : y + h, x : x + w]), interpretation="srgb")
            val_pairs.append(Pair(rel, crop.numpy(), degrade(crop, s).numpy()))
        else:
            train_pairs.extend(pairs)
    pixels = sum(p.lr.shape[0] * p.lr.shape[1] for p in train_pairs)
    log.info(
        "prepare: %d training pairs (%.1f LR megapixels), %d validation crops, %.0f s",
        len(train_pairs),
        pixels / 1e6,
        len(val_pairs),
        time.monotonic() - t0,
    )

    model = SuperResNet(args.scale, args.channels, args.layers)
    if args.init:
        load_onnx_weights(model, args.init)
    sampler = PatchSampler(train_pairs, args.scale, args.patch, args.seed, args.area_power, args.flat_keep)
    result = train(model, sampler, val_pairs, args)
    interior = (args.patch - 2 * model.receptive_radius) ** 2
    epochs = result["patches"] * interior / pixels

    args.models_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = args.models_dir / f"{name.replace('-', '_')}_v{args.version.replace('.', '_')}.onnx"
    export(model, onnx_path)
    fp16_path = export_fp16(onnx_path)
    entry = {
        "name": name,
        "version": args.version,
        "file": onnx_path.name,
        "sha256": hashlib.sha256(onnx_path.read_bytes()).hexdigest(),
        "scale": args.scale,
        "input": {
            "name": "input",
            "layout": "NCHW",
            "dtype": "float32",
            "range": [0.0, 1.0],
            "colour_order": "RGB",
            "channels": 3,
            "transfer": "sRGB",
        },
        "output": {"name": "output", "range": [0.0, 1.0], "clip": True},
        "tile": 384,  # input px; fastest of 192/256/384 on 2 CPU cores (293 vs 314 ms at 1000x750)
        "overlap": model.receptive_radius + 2,
        "fp16_on_cuda": True,
        "file_fp16": fp16_path.name,
        "preferred_on": ["cpu", "cuda"],
        "licence": "MIT (trained by this project; training photos' licences in training/README.md)",
        "architecture": f"{args.layers} x conv3x3({args.channels}) + LeakyReLU(learnt slope), conv3x3 -> "
        f"{3 * args.scale**2} residual channels + fixed Lanczos3 x{args.scale} skip (7x7 grouped conv), "
        f"PixelShuffle({args.scale})",
        "parameters": sum(p.numel() for p in model.parameters()),
        "training": {
            "script": "training/train.py",
            "command": " ".join(sys.argv[1:]),
            "date": dt.date.today().isoformat(),
            "host": f"{platform.machine()}, {args.threads} CPU threads, torch {torch.__version__}",
            "degradation": "libvips resize(1/scale, kernel=lanczos3) of the HR photo",
            "patch": args.patch,
            "batch": args.batch,
            "steps": result["steps"],
            "patches": result["patches"],
            "epochs": round(epochs, 2),
            "epoch_definition": "interior LR pixels seen / LR pixels in the training set",
            "seconds": result["seconds"],
            "best_step": result["best_step"],
            "validation": {
                "mean_y_psnr": result["val_y_psnr"],
                "mean_gain_over_lanczos3_db": result["val_gain_db"],
                "crops": "centre 768x768 of each validation photo",
                "history": result["history"],
            },
            "data": data_list,
            "excluded": excluded,
        },
    }
    old = args.models_dir / "registry.json"
    if old.exists():  # keep benchmark figures recorded earlier for the same file
        for m in json.loads(old.read_text())["models"]:
            if m["name"] == name and m.get("sha256") == entry["sha256"]:
                entry.update({k: v for k, v in m.items() if k in ("quality", "speed")})
    write_registry(entry, args.models_dir)


if __name__ == "__main__":
    main()
