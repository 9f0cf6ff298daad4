"""The KServe manifests (k8s/kserve): valid against KServe's CRD schemas, strictly, and the same
service as k8s/base: resources, env, hardening and probes that the app really serves.

The schemas are trimmed copies of KServe's CRDs (tests/static/schemas/, headers say which commit
and what was pruned). A CRD does not set ``additionalProperties: false`` (Kubernetes prunes unknown
fields silently), so jsonschema alone would accept a misspelt key: :func:`undeclared_keys` also
refuses every key a schema node does not declare, unless the node preserves unknown fields.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from config import Settings
from tests.static.dockerfile import ROOT
from tests.static.test_k8s import env_of, quantity_cpu, render

KSERVE = ROOT / "k8s" / "kserve"
SCHEMAS = Path(__file__).parent / "schemas"
SCHEMA_FILES = {
    ("serving.kserve.io/v1alpha1", "ServingRuntime"): "kserve-servingruntime-v1alpha1.yaml",
    ("serving.kserve.io/v1beta1", "InferenceService"): "kserve-inferenceservice-v1beta1.yaml",
}


def schema_for(doc: dict) -> dict:
    return yaml.safe_load((SCHEMAS / SCHEMA_FILES[(doc["apiVersion"], doc["kind"])]).read_text())


def undeclared_keys(value: Any, schema: dict, path: str = "") -> list[str]:
    """Paths of keys in ``value`` that ``schema`` does not declare (where it declares any)."""
    found: list[str] = []
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return found
    if isinstance(value, dict):
        properties = schema.get("properties")
        additional = schema.get("additionalProperties")
        for key, item in value.items():
            if properties is not None and key in properties:
                found += undeclared_keys(item, properties[key], f"{path}.{key}")
            elif isinstance(additional, dict):
                found += undeclared_keys(item, additional, f"{path}.{key}")
            elif properties is not None:
                found.append(f"{path}.{key}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            found += undeclared_keys(item, schema["items"], f"{path}[{index}]")
    return found


def validate(doc: dict) -> list[str]:
    """Every schema error and every undeclared key, as readable lines (empty: valid)."""
    schema = schema_for(doc)
    validator = jsonschema.Draft7Validator(schema)
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]
    return errors + [f"{key}: not in the KServe schema" for key in undeclared_keys(doc, schema)]


@pytest.fixture(scope="module")
def rendered() -> list[dict]:
    return render(KSERVE)


def one(rendered: list[dict], kind: str) -> dict:
    (found,) = [doc for doc in rendered if doc["kind"] == kind]
    return found


@pytest.fixture(scope="module")
def runtime(rendered) -> dict:
    return one(rendered, "ServingRuntime")


@pytest.fixture(scope="module")
def isvc(rendered) -> dict:
    return one(rendered, "InferenceService")


@pytest.fixture(scope="module")
def container(runtime) -> dict:
    (main,) = runtime["spec"]["containers"]
    return main


@pytest.fixture(scope="module")
def deployment() -> dict:
    (found,) = [doc for doc in render(ROOT / "k8s") if doc["kind"] == "Deployment"]
    return found


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((KSERVE / "kustomization.yaml").read_text())
    on_disk = {p.name for p in KSERVE.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == on_disk


def test_schemas_are_trimmed_copies_with_their_source() -> None:
    for name in SCHEMA_FILES.values():
        text = (SCHEMAS / name).read_text()
        assert "github.com/kserve/kserve" in text and "Apache-2.0" in text and "aaac4e294dae" in text
        assert len(text) < 300_000


def test_every_object_matches_the_kserve_schema_strictly(rendered) -> None:
    assert {(d["apiVersion"], d["kind"]) for d in rendered} == set(SCHEMA_FILES)
    for doc in rendered:
        assert validate(doc) == [], doc["kind"]


@pytest.mark.parametrize(
    "kind, change, expected",
    [
        ("ServingRuntime", lambda d: d["spec"].update(protocolVersion=["v2"]), ".spec.protocolVersion"),
        ("ServingRuntime", lambda d: d["spec"]["containers"][0].update(readinessprobe={}), "readinessprobe"),
        (
            "ServingRuntime",
            lambda d: d["spec"]["containers"][0]["ports"][0].update(containerPort="8080"),
            "not of type",
        ),
        ("ServingRuntime", lambda d: d["spec"].pop("containers"), "'containers' is a required property"),
        ("ServingRuntime", lambda d: d["spec"]["supportedModelFormats"][0].update(autoSelect="yes"), "not of type"),
        ("InferenceService", lambda d: d["spec"]["predictor"]["model"].update(runtimeName="x"), "runtimeName"),
        ("InferenceService", lambda d: d["spec"]["predictor"].update(minReplicas="2"), "not of type"),
        ("InferenceService", lambda d: d["spec"].pop("predictor"), "'predictor' is a required property"),
    ],
)
def test_the_validation_can_fail(rendered, kind, change, expected) -> None:
    doc = copy.deepcopy(one(rendered, kind))
    change(doc)
    assert any(expected in line for line in validate(doc)), validate(doc)


def test_the_inference_service_selects_the_runtime_with_v2(runtime, isvc) -> None:
    model = isvc["spec"]["predictor"]["model"]
    assert model["runtime"] == runtime["metadata"]["name"]
    assert model["protocolVersion"] == "v2" and "v2" in runtime["spec"]["protocolVersions"]
    formats = {(f["name"], f.get("version")) for f in runtime["spec"]["supportedModelFormats"]}
    assert (model["modelFormat"]["name"], model["modelFormat"].get("version")) in formats
    assert "storageUri" not in model, "the model is in the image"
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] in ("RawDeployment", "Standard")


def test_container_listens_on_port_8080_through_the_port_setting(container) -> None:
    (port,) = container["ports"]
    assert port["containerPort"] == 8080 == Settings.from_env(env_of(container)).port
    assert container["name"] == "kserve-container"


def test_probes_are_v2_routes_the_app_serves(container, client) -> None:
    paths = {rule.rule for rule in client.application.url_map.iter_rules()}
    for name in ("startupProbe", "readinessProbe", "livenessProbe"):
        probe = container[name]["httpGet"]
        assert probe["path"] in paths and probe["port"] == container["ports"][0]["containerPort"], name
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert client.get("/v2/health/ready").status_code == 200


def test_same_service_as_the_deployment(container, runtime, isvc, deployment) -> None:
    """Resources, settings, hardening, image and probe timings are the Deployment's."""
    pod = deployment["spec"]["template"]["spec"]
    (main,) = pod["containers"]
    assert container["image"] == main["image"]
    assert container["resources"] == main["resources"]
    assert container["securityContext"] == main["securityContext"]
    assert container["lifecycle"] == main["lifecycle"]
    assert {k: v for k, v in env_of(container).items() if k != "PORT"} == {
        k: v for k, v in env_of(main).items() if k != "PORT"
    }
    for name in ("startupProbe", "readinessProbe", "livenessProbe"):
        timing = {k: v for k, v in container[name].items() if k != "httpGet"}
        assert timing == {k: v for k, v in main[name].items() if k != "httpGet"}, name
    assert runtime["spec"]["volumes"] == pod["volumes"]
    assert container["volumeMounts"] == main["volumeMounts"]
    predictor = isvc["spec"]["predictor"]
    for key in ("securityContext", "automountServiceAccountToken", "terminationGracePeriodSeconds"):
        assert predictor[key] == pod[key], key
    settings = Settings.from_env(env_of(container))
    assert settings.engine_threads == quantity_cpu(container["resources"]["limits"]["cpu"])


def test_scaling_matches_the_hpa(isvc) -> None:
    (hpa,) = [doc for doc in render(ROOT / "k8s") if doc["kind"] == "HorizontalPodAutoscaler"]
    predictor = isvc["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (
        hpa["spec"]["minReplicas"],
        hpa["spec"]["maxReplicas"],
    )
    assert predictor["scaleMetric"] == "cpu"
    assert predictor["scaleTarget"] == hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"]
