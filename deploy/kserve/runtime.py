"""A KServe v2 inference server for a Triton-layout model repository, running the ONNX files with
onnxruntime: the CPU (or, with onnxruntime-gpu, CUDA) stand-in for Triton that the tests start on
loopback, and a small GPU tier of its own where Triton is not wanted.

    python -m venv /opt/sr && /opt/sr/bin/pip install -r deploy/kserve/requirements.txt
    /opt/sr/bin/python deploy/kserve/runtime.py --repository deploy/triton/models --http_port 8000

Every `<repository>/<name>/1/model.onnx` is served as model `<name>` (Triton's layout, so
deploy/triton/models works as it is; `config.pbtxt` is Triton's and is not read here). KServe's
server speaks the HTTP binary tensor extension and answers in it when asked. Each request logs one
line `batch <model> <shape> <seconds>` to stdout, so a test can see how many tiles travelled together.

This file runs in its own environment (kserve pins its own web stack), not the edge server's.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

# kserve reads sys.argv when it is imported: take our options out first, leave it the rest.
parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--repository", type=Path, required=True, help="a Triton-layout model repository")
parser.add_argument("--threads", type=int, default=0, help="onnxruntime threads per model; 0: its default")
parser.add_argument("--host", default="0.0.0.0", help="the address to listen on (kserve's own default: all)")
parser.add_argument("--cpu", action="store_true", help="do not use CUDA even where onnxruntime-gpu has it")
ours, sys.argv[1:] = parser.parse_known_args()

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import uvicorn  # noqa: E402
from kserve import InferInput, InferOutput, InferRequest, InferResponse, Model, ModelServer  # noqa: E402

# kserve 0.21 always binds 0.0.0.0; tests want loopback only. Its REST server builds one
# uvicorn.Config: give that our address.
_Config = uvicorn.Config


class _BoundConfig(_Config):  # type: ignore[misc]
    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs["host"] = ours.host
        super().__init__(*args, **kwargs)


uvicorn.Config = _BoundConfig

# kserve 0.21 reads a binary input tensor into a Python list of floats (set_data_from_numpy with
# binary_data=False) and as_numpy() builds the array again from it: over half the server's time for
# a batch of tiles. Numeric tensors keep their bytes (what as_numpy reads first).
_set_data_from_numpy = InferInput.set_data_from_numpy


def _keep_bytes(self: InferInput, input_tensor: np.ndarray, binary_data: bool = True) -> None:
    _set_data_from_numpy(self, input_tensor, binary_data=binary_data or input_tensor.dtype != np.object_)


InferInput.set_data_from_numpy = _keep_bytes

ONNX_TYPES = {"tensor(float)": "FP32", "tensor(float16)": "FP16"}
log = logging.getLogger("edge-sr-runtime")


class OnnxModel(Model):  # type: ignore[misc]
    def __init__(self, name: str, path: Path):
        super().__init__(name)
        self.path = path
        self.session: ort.InferenceSession | None = None

    def load(self) -> bool:
        options = ort.SessionOptions()
        if ours.threads:
            options.intra_op_num_threads = ours.threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        available = ort.get_available_providers()
        providers = ["CUDAExecutionProvider"] if "CUDAExecutionProvider" in available and not ours.cpu else []
        self.session = ort.InferenceSession(str(self.path), options, providers=[*providers, "CPUExecutionProvider"])
        print(f"loaded {self.name} from {self.path} on {self.session.get_providers()[0]}", flush=True)
        self.ready = True
        return True

    def _types(self, tensors: list) -> list[dict]:
        return [{"name": t.name, "datatype": ONNX_TYPES.get(t.type, t.type), "shape": [-1, 3, -1, -1]} for t in tensors]

    def get_input_types(self) -> list[dict]:
        assert self.session is not None
        return self._types(self.session.get_inputs())

    def get_output_types(self) -> list[dict]:
        assert self.session is not None
        return self._types(self.session.get_outputs())

    async def predict(self, payload: InferRequest, headers: dict[str, str] | None = None) -> InferResponse:
        assert self.session is not None
        started = time.perf_counter()
        feeds = {t.name: t.as_numpy() for t in payload.inputs}
        declared = self.session.get_outputs()
        results = self.session.run([o.name for o in declared], feeds)
        outputs = []
        for o, y in zip(declared, results, strict=True):
            out = InferOutput(o.name, list(y.shape), ONNX_TYPES[o.type])
            out.set_data_from_numpy(np.ascontiguousarray(y), binary_data=True)
            outputs.append(out)
        shape = "x".join(map(str, next(iter(feeds.values())).shape))
        print(f"batch {self.name} {shape} {time.perf_counter() - started:.3f}", flush=True)
        return InferResponse(payload.id, self.name, outputs, use_binary_outputs=True)


def main() -> None:
    models = []
    for onnx in sorted(ours.repository.glob("*/1/model.onnx")):
        model = OnnxModel(onnx.parent.parent.name, onnx.resolve())
        model.load()
        models.append(model)
    if not models:
        raise SystemExit(f"no <name>/1/model.onnx under {ours.repository}")
    ModelServer(enable_grpc=False, workers=1).start(models)


if __name__ == "__main__":
    main()
