"""The release workflow cannot run here (no Docker Hub, no GitHub runner): check what it would do."""

from __future__ import annotations

import pytest
import yaml

from tests.static.dockerfile import ROOT, stages

WORKFLOW = ROOT / ".github" / "workflows" / "docker.yml"


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def step_using(workflow: dict, action: str, **with_) -> dict:
    """The one step using ``action`` whose ``with`` has the given values."""
    found = [
        s
        for s in steps(workflow)
        if s.get("uses", "").split("@")[0] == action and all(s.get("with", {}).get(k) == v for k, v in with_.items())
    ]
    assert len(found) == 1, f"expected one step using {action} with {with_}"
    assert "@" in found[0]["uses"], f"{action} must be pinned to a version"
    return found[0]


def release_build(workflow: dict) -> dict:
    return step_using(workflow, "docker/build-push-action", push=True)


def test_runs_on_version_tags_only(workflow):
    # YAML 1.1 (PyYAML) reads the key `on` as the boolean True.
    trigger = workflow.get("on", workflow.get(True))
    assert set(trigger) == {"push"}
    assert trigger["push"]["tags"] == ["v*"]
    assert "branches" not in trigger["push"]


def test_builds_both_architectures_with_buildx_and_qemu(workflow):
    step_using(workflow, "docker/setup-qemu-action")
    for job in workflow["jobs"].values():  # every job that builds sets up buildx
        assert any(s.get("uses", "").startswith("docker/setup-buildx-action@") for s in job["steps"])
    build = release_build(workflow)["with"]
    platforms = [p.strip() for p in build["platforms"].split(",")]
    assert {"linux/amd64", "linux/arm64"} <= set(platforms)
    assert build["push"] is True
    assert build["context"] == "."


def test_pushes_the_git_tag_and_latest_only_for_releases(workflow):
    meta = step_using(workflow, "docker/metadata-action")
    tags = {line.strip() for line in meta["with"]["tags"].splitlines() if line.strip()}
    assert "type=ref,event=tag" in tags
    # v1.2.0-rc1 must not move latest: metadata-action's own latest=auto is off, ours skips a "-".
    assert "type=raw,value=latest,enable=${{ !contains(github.ref_name, '-') }}" in tags
    flavor = [line.strip() for line in meta["with"]["flavor"].splitlines()]
    assert "latest=false" in flavor and "suffix=${{ matrix.suffix }}" in flavor
    build = release_build(workflow)["with"]
    assert build["tags"] == "${{ steps." + meta["id"] + ".outputs.tags }}"
    assert build["labels"] == "${{ steps." + meta["id"] + ".outputs.labels }}"


def test_logs_in_with_the_docker_hub_secrets(workflow):
    login = step_using(workflow, "docker/login-action")["with"]
    assert login["username"] == "${{ secrets.DOCKERHUB_USERNAME }}"
    assert login["password"] == "${{ secrets.DOCKERHUB_TOKEN }}"
    order = steps(workflow)
    assert order.index(step_using(workflow, "docker/login-action")) < order.index(release_build(workflow))


def test_the_image_is_smoke_tested_before_anything_is_pushed(workflow):
    smoke_build = step_using(workflow, "docker/build-push-action", push=False)
    assert smoke_build["with"]["load"] is True and smoke_build["with"]["platforms"] == "linux/amd64"
    image = smoke_build["with"]["tags"]
    order = steps(workflow)
    runs = [s for s in order if image in s.get("run", "") and "/model/predict" in s.get("run", "")]
    assert len(runs) == 1, "one step must run the smoke image and post a photo"
    script = runs[0]["run"]
    sample = script.split("image=@", 1)[1].split()[0]
    assert (ROOT / sample).is_file(), sample
    assert "/health/ready" in script and "id -u" in script
    assert runs[0]["shell"] == "bash", "GitHub's bash shell adds pipefail; the default run shell does not"
    # The tested image is the pushed one: same build arguments, so the same layers.
    assert smoke_build["with"]["build-args"] == release_build(workflow)["with"]["build-args"]
    assert order.index(smoke_build) < order.index(runs[0]) < order.index(step_using(workflow, "docker/login-action"))


def test_build_args_exist_in_the_dockerfile(workflow):
    build = release_build(workflow)["with"]
    passed = {line.split("=", 1)[0].strip() for line in build["build-args"].splitlines() if line.strip()}
    declared = {name for stage in stages() for name in stage.build_args()}
    assert passed <= declared, passed - declared


def test_every_backend_variant_is_built_tested_and_tagged_apart(workflow):
    """The default image is int8 on LiteRT; float LiteRT and TensorFlow are first-class variants."""
    jobs = workflow["jobs"]
    assert jobs["smoke"]["strategy"]["matrix"]["backend"] == ["tflite-int8", "tflite", "tf"]
    variants = {v["backend"]: v["suffix"] for v in jobs["release"]["strategy"]["matrix"]["include"]}
    assert variants == {"tflite-int8": "", "tflite": "-tflite", "tf": "-tf"}
    for build in (release_build(workflow), step_using(workflow, "docker/build-push-action", push=False)):
        assert "BACKEND=${{ matrix.backend }}" in build["with"]["build-args"].splitlines()
        for key in ("cache-from", "cache-to"):  # the variants share no cache
            assert "scope=${{ matrix.backend }}" in build["with"][key]
    smoke = next(s for s in steps(workflow) if "/model/predict" in s.get("run", ""))
    assert '"backend"' in smoke["run"] and "${{ matrix.backend }}" in smoke["run"]
    assert 'find_spec("tensorflow")' in smoke["run"]


def test_nothing_is_pushed_unless_every_variant_passed_its_smoke_test(workflow):
    jobs = workflow["jobs"]
    assert jobs["release"]["needs"] == "smoke"
    assert all(s.get("uses", "").split("@")[0] != "docker/login-action" for s in jobs["smoke"]["steps"])
    assert release_build(workflow) in jobs["release"]["steps"]


def test_the_docker_quickstart_runs_what_the_workflow_publishes(workflow):
    """docs/deployment.md's `docker run` lines name the workflow's image and the `latest` tag of each
    variant, and every k8s kustomization deploys that same image: once a release is published, the
    quickstart runs as written."""
    import re

    image = "docker.io/" + workflow["env"]["IMAGE_NAME"]
    suffixes = [entry["suffix"] for entry in workflow["jobs"]["release"]["strategy"]["matrix"]["include"]]
    runs = re.findall(r"^docker run .* (\S+:\S+)", (ROOT / "docs" / "deployment.md").read_text(), re.M)
    assert sorted(runs) == sorted(f"{image}:latest{suffix}" for suffix in suffixes)
    for kustomization in ROOT.glob("k8s/**/kustomization.yaml"):
        for entry in yaml.safe_load(kustomization.read_text()).get("images", []):
            assert entry["newName"] == image, kustomization
