"""The container and Kubernetes definitions in deploy/: parsed, and checked for what matters.

No container engine runs here, so this is a static check: the image installs the package and
runs `edge serve` as a non-root user; every Deployment probes /readyz and /healthz on the port
the server listens on, reads its keys from a Secret, and the Service and HPA point at it.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from edge.deploy import nginx_config
from tests.support.cli import run_cli

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def manifests() -> dict[str, dict]:
    docs = {}
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            docs[f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    return docs


def test_dockerfile_installs_the_package_and_runs_unprivileged():
    text = (DEPLOY / "Dockerfile").read_text()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    assert lines[0].startswith("FROM python:3.11")
    assert any(ln.startswith("RUN pip install") and " ." in ln for ln in lines)
    for package in ("edge", "origin", "rules", "sitemaps"):
        assert f"COPY {package} ./{package}" in lines
    assert "USER 10001" in lines and "EXPOSE 8080" in lines
    assert lines[-1] == 'CMD ["edge", "serve"]'
    assert "EDGE_HOST=0.0.0.0" in text  # reachable from outside the container


def test_deployments_probe_health_and_readiness_on_the_served_port():
    docs = manifests()
    deployments = [d for k, d in docs.items() if k.startswith("Deployment/")]
    assert {d["metadata"]["name"] for d in deployments} == {"edge-origin", "edge-origin-gpu"}
    for d in deployments:
        pod = d["spec"]["template"]["spec"]
        assert d["spec"]["selector"]["matchLabels"].items() <= d["spec"]["template"]["metadata"]["labels"].items()
        assert pod["securityContext"]["runAsNonRoot"] is True
        (container,) = pod["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports == {"http": 8080}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        env = {e["name"]: e for e in container["env"]}
        assert "secretKeyRef" in env["EDGE_KEYS"]["valueFrom"]  # keys never inline
        assert env["EDGE_MASTERS"]["value"].startswith("s3://")
        assert container["resources"]["limits"]["memory"]


def test_the_gpu_variant_asks_for_a_gpu_on_a_gpu_node_pool():
    gpu = manifests()["Deployment/edge-origin-gpu"]
    pod = gpu["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert any(t["key"] == "nvidia.com/gpu" for t in pod["tolerations"])
    assert pod["nodeSelector"]


def test_every_pod_meets_the_restricted_pod_security_standard():
    """Kubernetes' "restricted" profile: non-root, no privilege escalation, every capability
    dropped, the runtime's seccomp profile; and a read-only root with writable /cache and /tmp."""
    for name, d in manifests().items():
        if not name.startswith("Deployment/"):
            continue
        pod = d["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        (container,) = pod["containers"]
        sc = container["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"] == {"drop": ["ALL"]}, name
        assert sc["readOnlyRootFilesystem"] is True, name
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        for path in ("/cache", "/tmp"):
            assert "emptyDir" in volumes[mounts[path]], (name, path)


def test_both_variants_can_be_purged_and_survive_a_drain():
    docs = manifests()
    for name in ("Deployment/edge-origin", "Deployment/edge-origin-gpu"):
        env = {e["name"]: e for e in docs[name]["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert "secretKeyRef" in env["EDGE_ADMIN_TOKEN"]["valueFrom"], name  # POST /admin/purge
    headless = docs["Service/edge-origin-pods"]
    assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["selector"] == {"app": "edge-origin"}
    pdb = docs["PodDisruptionBudget/edge-origin"]
    assert pdb["spec"]["selector"]["matchLabels"] == {"app": "edge-origin"} and pdb["spec"]["minAvailable"] >= 1


def test_the_gpu_image_and_manifest_agree_on_cuda_and_the_warm_up():
    """The GPU image installs onnxruntime-gpu with NVIDIA's CUDA and cuDNN wheels (onnxruntime
    preloads them); the GPU pods warm up before they are probed, and point at the provider metric."""
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "onnxruntime-gpu[cuda,cudnn]" in dockerfile and "edge_superres_provider" in dockerfile
    gpu_text = (DEPLOY / "k8s" / "deployment-gpu.yaml").read_text()
    assert "onnxruntime-gpu[cuda,cudnn]" in gpu_text and "edge_superres_provider" in gpu_text
    container = manifests()["Deployment/edge-origin-gpu"]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["EDGE_SUPERRES_WARM_UP"] == "on"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120  # sessions and a run on a cold GPU


def test_service_and_autoscaler_point_at_the_origin():
    docs = manifests()
    service, hpa = docs["Service/edge-origin"], docs["HorizontalPodAutoscaler/edge-origin"]
    assert service["spec"]["selector"] == {"app": "edge-origin"}
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == "edge-origin"
    assert hpa["spec"]["minReplicas"] >= 2 and hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]


def test_the_shipped_nginx_config_is_what_edge_deploy_nginx_prints(capsys):
    """deploy/nginx/edge-cache.conf is generated (its Accept maps come from the format table):
    regenerate it with `./dev edge deploy nginx > deploy/nginx/edge-cache.conf`."""
    assert (DEPLOY / "nginx" / "edge-cache.conf").read_text() == nginx_config()
    assert run_cli("deploy", "nginx") == 0
    assert capsys.readouterr().out == nginx_config()
