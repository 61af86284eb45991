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
