"""Super-resolution on a shared inference server: the Open Inference Protocol (KServe v2) over HTTP.

    remote = RemoteModels(settings, on_request=metrics_callback)
    if remote.allows():
        y = remote.infer(spec, x, deadline)   # x: N x 3 x H x W in the model's range; raises RemoteFailed

Triton, KServe and MLServer all serve `POST /v2/models/{name}/infer`. Tensors travel in the binary
data extension (a JSON header of `Inference-Header-Content-Length` bytes, then the raw tensor), which
Triton and KServe speak; a JSON answer with `data` is read too. Each served model is checked once
against the model we would run locally (input and output names, 4-D shapes, FP32 or FP16) before
its first tile is sent, and every answer is checked for its shape and for finite values: a
mis-deployed model is a failure, not a wrong picture.

Failures open a circuit: after `remote_failures` in a row the server is not asked for
`remote_retry_s`, then one request tries it again (success closes it). Every request, and every
upscale the open circuit kept away, is reported to `on_request(outcome, seconds, tiles)`:
ok, error, timeout, garbage or open.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np

from origin.superres.policy import SuperResSettings
from origin.superres.registry import ModelSpec

OUTCOMES = ("ok", "error", "timeout", "garbage", "open")
DATATYPES = {"FP32": np.float32, "FP16": np.float16}
HEADER_LENGTH = "Inference-Header-Content-Length"


class RemoteFailed(Exception):
    """The inference server gave no usable answer; `outcome` says how (one of OUTCOMES)."""

    def __init__(self, outcome: str, detail: str):
        super().__init__(f"inference server {outcome}: {detail}")
        self.outcome = outcome


def served_name(spec: ModelSpec, served: dict[str, str]) -> str:
    """The name the server knows `spec` by: mapped by label, then by name, else its ONNX file's
    stem (what deploy/triton/ serves, so a new model version is a new served model)."""
    return served.get(spec.label) or served.get(spec.name) or spec.path.stem


class Circuit:
    """Closed: requests go. `failures` failures in a row open it for `retry_s`; then one trial
    request goes (half-open) and its outcome closes or reopens it. Thread-safe."""

    def __init__(self, failures: int, retry_s: float, clock: Callable[[], float] = time.monotonic):
        self.failures, self.retry_s, self.clock = failures, retry_s, clock
        self._failed = 0
        self._open_until = 0.0
        self._trial_until = 0.0  # a half-open trial is out until then (one that never reports expires)
        self._lock = threading.Lock()

    @property
    def closed(self) -> bool:
        """Requests go freely (no failures enough to open it, and no trial under way)."""
        with self._lock:
            return self._failed < self.failures

    def allows(self) -> bool:
        """Whether a request may go now; in the half-open state only one caller gets True."""
        with self._lock:
            if self._failed < self.failures:
                return True
            now = self.clock()
            if now < self._open_until or now < self._trial_until:
                return False
            self._trial_until = now + self.retry_s
            return True

    def succeeded(self) -> None:
        with self._lock:
            self._failed, self._trial_until = 0, 0.0

    def failed(self) -> None:
        with self._lock:
            self._failed += 1
            self._trial_until = 0.0
            if self._failed >= self.failures:
                self._open_until = self.clock() + self.retry_s


@dataclass(frozen=True)
class _Served:
    name: str
    dtype: type  # what the server's input takes: float32 or float16


class RemoteModels:
    """A client for one v2 inference server, shared by render threads."""

    def __init__(
        self,
        settings: SuperResSettings,
        on_request: Callable[[str, float, int], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.url = settings.url.rstrip("/")
        self.settings = settings
        self.served = settings.served_models
        self.batch = settings.remote_batch
        self.on_request = on_request
        self.clock = clock
        self.circuit = Circuit(settings.remote_failures, settings.remote_retry_s, clock)
        limits = httpx.Limits(max_connections=settings.remote_concurrency * 2, max_keepalive_connections=16)
        self._client = httpx.Client(limits=limits, trust_env=False)
        self._checked: dict[str, _Served] = {}
        self._lock = threading.Lock()

    def allows(self) -> bool:
        """The circuit lets a request go now (see Circuit.allows: this may take the one trial)."""
        if self.circuit.allows():
            return True
        self._report("open", 0.0, 0)
        return False

    def infer(self, spec: ModelSpec, x: np.ndarray, deadline: float | None = None) -> np.ndarray:
        """`x` (N x C x H x W, float32, the model's input range) through the served model:
        N x C x sH x sW float32. Raises RemoteFailed; its outcome is counted and moves the circuit."""
        started = self.clock()
        try:
            served = self._check(spec, deadline)
            y = self._infer(spec, served, x, deadline)
        except RemoteFailed as failure:
            self.circuit.failed()
            self._report(failure.outcome, self.clock() - started, len(x))
            raise
        self.circuit.succeeded()
        self._report("ok", self.clock() - started, len(x))
        return y

    def close(self) -> None:
        self._client.close()

    # ------------------------------------------------------------------ protocol
    def _check(self, spec: ModelSpec, deadline: float | None) -> _Served:
        """The served model's metadata, checked against `spec` once per model."""
        name = served_name(spec, self.served)
        with self._lock:
            known = self._checked.get(name)
        if known is not None:
            return known
        meta = self._json(self._send("GET", f"/v2/models/{name}", deadline))
        inputs, outputs = meta.get("inputs") or [], meta.get("outputs") or []
        given = {t.get("name"): t for t in inputs if isinstance(t, dict)}
        wanted = given.get(spec.input_name)
        problems = []
        if wanted is None:
            problems.append(f"no input named {spec.input_name!r} (has {sorted(map(str, given))})")
        elif wanted.get("datatype") not in DATATYPES or len(wanted.get("shape") or []) != 4:
            problems.append(
                f"input {spec.input_name!r} is {wanted.get('datatype')} {wanted.get('shape')}, not 4-D FP32/FP16"
            )
        if spec.output_name not in {t.get("name") for t in outputs if isinstance(t, dict)}:
            problems.append(f"no output named {spec.output_name!r}")
        if problems:
            raise RemoteFailed("garbage", f"model {name!r} does not match {spec.label}: {'; '.join(problems)}")
        assert wanted is not None
        served = _Served(name, DATATYPES[wanted["datatype"]])
        with self._lock:
            self._checked[name] = served
        return served

    def _infer(self, spec: ModelSpec, served: _Served, x: np.ndarray, deadline: float | None) -> np.ndarray:
        tensor: np.ndarray = np.ascontiguousarray(x, dtype=served.dtype)
        datatype = "FP16" if served.dtype == np.float16 else "FP32"
        header = json.dumps(
            {
                "inputs": [
                    {
                        "name": spec.input_name,
                        "shape": list(tensor.shape),
                        "datatype": datatype,
                        "parameters": {"binary_data_size": tensor.nbytes},
                    }
                ],
                "outputs": [{"name": spec.output_name, "parameters": {"binary_data": True}}],
            }
        ).encode()
        response = self._send(
            "POST",
            f"/v2/models/{served.name}/infer",
            deadline,
            content=header + tensor.tobytes(),
            headers={"Content-Type": "application/octet-stream", HEADER_LENGTH: str(len(header))},
        )
        n, c, h, w = x.shape
        expected = (n, c, h * spec.scale, w * spec.scale)
        y = _output(response, spec.output_name, expected)
        if not np.isfinite(y).all():
            raise RemoteFailed("garbage", f"{served.name} answered non-finite values")
        return y

    def _send(self, method: str, path: str, deadline: float | None, **kwargs: Any) -> httpx.Response:
        timeout = self.settings.remote_timeout_s
        if deadline is not None:
            timeout = min(timeout, deadline - self.clock())
            if timeout <= 0.01:
                raise RemoteFailed("timeout", "no time left in the request's budget")
        limits = httpx.Timeout(timeout, connect=min(timeout, self.settings.remote_connect_timeout_s))
        try:
            response = self._client.request(method, self.url + path, timeout=limits, **kwargs)
        except httpx.TimeoutException as e:
            raise RemoteFailed(
                "timeout", f"{method} {path}: no answer within {timeout:.2f} s ({type(e).__name__})"
            ) from None
        except httpx.HTTPError as e:
            raise RemoteFailed("error", f"{method} {path}: {e or type(e).__name__}") from None
        if response.status_code != 200:
            raise RemoteFailed("error", f"{method} {path}: HTTP {response.status_code} {response.text[:200]!r}")
        return response

    @staticmethod
    def _json(response: httpx.Response) -> dict[str, Any]:
        try:
            doc = response.json()
        except ValueError:
            raise RemoteFailed("garbage", f"not JSON: {response.content[:80]!r}") from None
        if not isinstance(doc, dict):
            raise RemoteFailed("garbage", "the answer is not a JSON object")
        return doc

    def _report(self, outcome: str, seconds: float, tiles: int) -> None:
        if self.on_request is not None:
            self.on_request(outcome, seconds, tiles)


def _output(response: httpx.Response, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """The output tensor `name` of an infer response (binary data extension or JSON), as float32
    of `shape`; RemoteFailed("garbage") for anything else."""
    body = response.content
    length = response.headers.get(HEADER_LENGTH)
    try:
        head = json.loads(body[: int(length)] if length is not None else body)
        outputs = head["outputs"]
        offset = int(length) if length is not None else 0
        for out in outputs:
            size = int((out.get("parameters") or {}).get("binary_data_size", 0)) if length is not None else 0
            if out.get("name") != name:
                offset += size
                continue
            dtype = DATATYPES[out["datatype"]]
            if [int(d) for d in out["shape"]] != list(shape):
                raise RemoteFailed("garbage", f"output {name} is {out['shape']}, expected {list(shape)}")
            if size:
                data = np.frombuffer(body, dtype=dtype, count=math.prod(shape), offset=offset)
            else:
                data = np.asarray(out["data"], dtype=dtype)
            return data.reshape(shape).astype(np.float32)
    except RemoteFailed:
        raise
    except (ValueError, KeyError, TypeError, IndexError) as e:
        raise RemoteFailed("garbage", f"unreadable infer response ({type(e).__name__}: {e})") from None
    raise RemoteFailed("garbage", f"the answer has no output {name!r}")
