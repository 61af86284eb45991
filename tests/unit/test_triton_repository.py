"""deploy/triton/: the model repository Triton serves and the GPU tier's manifests, against the
bundled models themselves (names, types and shapes as onnxruntime reads them from the ONNX files)."""

from __future__ import annotations

import re
from pathlib import Path

import onnxruntime as ort
import yaml

from edge.config import load_config
from origin.superres.registry import available_models
from origin.superres.remote import served_name

TRITON = Path(__file__).resolve().parents[2] / "deploy" / "triton"
ONNX_TYPES = {"tensor(float)": "TYPE_FP32", "tensor(float16)": "TYPE_FP16"}


def pbtxt_tensors(text: str, section: str) -> list[dict]:
    """The tensors of `input [...]` or `output [...]` in a config.pbtxt (comments dropped)."""
    text = re.sub(r"#.*", "", text)
    block = re.search(rf"^{section}\s*\[(.*?)^\]", text, re.S | re.M)
    assert block, f"no {section} block"
    tensors = []
    for body in re.findall(r"\{(.*?)\}", block.group(1), re.S):
        tensors.append(
            {
                "name": re.search(r'name:\s*"([^"]+)"', body).group(1),
                "data_type": re.search(r"data_type:\s*(\w+)", body).group(1),
                "dims": [int(d) for d in re.search(r"dims:\s*\[([^\]]*)\]", body).group(1).split(",")],
            }
        )
    return tensors


def setting(text: str, name: str) -> str:
    match = re.search(rf"^{name}:\s*(\S+)", re.sub(r"#.*", "", text), re.M)
    assert match, name
    return match.group(1).strip('"')


def test_every_config_matches_its_onnx_file():
    configs = sorted(TRITON.glob("models/*/config.pbtxt"))
    assert configs
    for config in configs:
        text, folder = config.read_text(), config.parent
        assert setting(text, "name") == folder.name
        assert setting(text, "platform") == "onnxruntime_onnx"
        batch = int(setting(text, "max_batch_size"))
        assert batch >= 8  # the origin's remote_batch default fits
        session = ort.InferenceSession(str(folder / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
        for section, declared in (("input", session.get_inputs()), ("output", session.get_outputs())):
            tensors = pbtxt_tensors(text, section)
            assert [t["name"] for t in tensors] == [d.name for d in declared], (config, section)
            for tensor, onnx in zip(tensors, declared, strict=True):
                assert tensor["data_type"] == ONNX_TYPES[onnx.type], (config, tensor)
                # Triton's dims leave out the batch: the ONNX file's first dimension must be free
                # (a name, not 1) for max_batch_size > 0, the rest equal, -1 where the file names one.
                first, *rest = onnx.shape
                assert isinstance(first, str), (config, onnx.shape)
                assert tensor["dims"] == [d if isinstance(d, int) else -1 for d in rest], (config, tensor)
        assert "dynamic_batching" in re.sub(r"#.*", "", text) and "instance_group" in text


def test_the_repository_serves_every_bundled_model_under_the_default_names():
    """The origin asks for a model by its ONNX file's stem unless remote_models maps it: each
    bundled model and its fp16 copy is there, the very file (a link into origin/superres/models)."""
    served = {p.parent.parent.name: p.resolve() for p in TRITON.glob("models/*/1/model.onnx")}
    for spec in available_models():
        assert served[served_name(spec, {})] == spec.path.resolve()
        if spec.path_fp16 is not None:
            assert served[spec.path_fp16.stem] == spec.path_fp16.resolve()


def test_the_gpu_tier_and_the_origins_agree_on_names_and_ports():
    docs = {}
    for path in sorted((TRITON / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            docs[path.stem if "kind" not in doc else f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    deployment, service, hpa = (
        docs["Deployment/edge-sr"],
        docs["Service/edge-sr"],
        docs["HorizontalPodAutoscaler/edge-sr"],
    )
    pod = deployment["spec"]["template"]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    (container,) = pod["spec"]["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert hpa["spec"]["scaleTargetRef"]["name"] == "edge-sr"
    ports = {p["name"]: p["port"] for p in service["spec"]["ports"]}
    # The patch for the origins: a configuration the origin accepts, at the Service's HTTP port,
    # asking for models the repository serves.
    (origin,) = docs["origin-patch"]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in origin["env"]}
    config = load_config(env=env)
    assert config.superres.backend == "remote"
    assert config.superres.url == f"http://{service['metadata']['name']}:{ports['http']}"
    repository = {p.name for p in (TRITON / "models").iterdir()}
    assert set(config.superres.served_models.values()) <= repository
