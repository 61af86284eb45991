"""A real Open Inference Protocol (KServe v2) server for tests: deploy/kserve/runtime.py, KServe's
Python model server running the bundled ONNX files with onnxruntime on the CPU, on loopback.

It needs its own environment (kserve pins a web stack of its own): built once into .venv-kserve
from deploy/kserve/requirements.txt, with uv when the test extras brought it (seconds), else pip
(about 45 s); where neither can, the tests that need it skip and say why.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.support.server import free_port, wait_until_up

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "deploy" / "kserve" / "runtime.py"
REQUIREMENTS = ROOT / "deploy" / "kserve" / "requirements.txt"
REPOSITORY = ROOT / "deploy" / "triton" / "models"
VENV = ROOT / ".venv-kserve"


class Unavailable(RuntimeError):
    """The runtime's environment could not be built here (offline, no venv module)."""


def runtime_python() -> Path:
    """The runtime environment's python, built on first use; raises Unavailable."""
    python = VENV / "bin" / "python"
    stamp = VENV / f".installed-{hashlib.sha1(REQUIREMENTS.read_bytes()).hexdigest()[:12]}"
    if stamp.exists():
        return python
    shutil.rmtree(VENV, ignore_errors=True)
    uv = shutil.which("uv", path=str(Path(sys.executable).parent))  # the test extras put it beside python
    if uv is not None:
        steps = [[uv, "venv", "--quiet", "--python", sys.executable, str(VENV)]]
        steps += [[uv, "pip", "install", "--quiet", "--python", str(python), "-r", str(REQUIREMENTS)]]
    else:
        steps = [[sys.executable, "-m", "venv", str(VENV)]]
        steps += [[str(python), "-m", "pip", "install", "--quiet", "--no-input", "-r", str(REQUIREMENTS)]]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            raise Unavailable(f"{' '.join(step[:4])}... failed: {(done.stderr or done.stdout)[-500:]}")
    stamp.touch()
    return python


@dataclass
class InferenceServer:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def batches(self, model: str) -> list[tuple[int, ...]]:
        """The input shape of every infer request `model` got, in order (the runtime logs each)."""
        shapes = []
        for line in self.log().splitlines():
            parts = line.split()
            if len(parts) == 4 and parts[0] == "batch" and parts[1] == model:
                shapes.append(tuple(int(d) for d in parts[2].split("x")))
        return shapes

    def pause(self) -> None:
        """SIGSTOP: the socket still accepts connections (the kernel does), nothing answers."""
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        self.resume()
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_inference_server(
    tmp: Path, repository: Path = REPOSITORY, threads: int = 1, port: int | None = None
) -> InferenceServer:
    """The runtime serving `repository` on loopback (on `port`, or a free one), ready (its models loaded)."""
    python = runtime_python()
    port = port or free_port()
    tmp.mkdir(parents=True, exist_ok=True)
    log_path = tmp / f"inference-{port}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EDGE_", "PYTHON"))}
    command = [str(python), str(RUNTIME), "--repository", str(repository), "--cpu", "--threads", str(threads)]
    process = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--http_port", str(port)],
        env=env,
        stdout=open(log_path, "wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    wait_until_up(url + "/v2/health/ready", process, log_path, 120)
    return InferenceServer(url, process, log_path)
