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


def step_using(workflow: dict, action: str) -> dict:
    found = [s for s in steps(workflow) if s.get("uses", "").split("@")[0] == action]
    assert len(found) == 1, f"expected one step using {action}"
    assert "@" in found[0]["uses"], f"{action} must be pinned to a version"
    return found[0]


def test_runs_on_version_tags_only(workflow):
    # YAML 1.1 (PyYAML) reads the key `on` as the boolean True.
    trigger = workflow.get("on", workflow.get(True))
    assert set(trigger) == {"push"}
    assert trigger["push"]["tags"] == ["v*"]
    assert "branches" not in trigger["push"]


def test_builds_both_architectures_with_buildx_and_qemu(workflow):
    step_using(workflow, "docker/setup-qemu-action")
    step_using(workflow, "docker/setup-buildx-action")
    build = step_using(workflow, "docker/build-push-action")["with"]
    platforms = [p.strip() for p in build["platforms"].split(",")]
    assert {"linux/amd64", "linux/arm64"} <= set(platforms)
    assert build["push"] is True
    assert build["context"] == "."


def test_pushes_the_git_tag_and_latest(workflow):
    meta = step_using(workflow, "docker/metadata-action")
    tags = {line.strip() for line in meta["with"]["tags"].splitlines() if line.strip()}
    assert "type=ref,event=tag" in tags
    assert "type=raw,value=latest" in tags
    build = step_using(workflow, "docker/build-push-action")["with"]
    assert build["tags"] == "${{ steps.%s.outputs.tags }}" % meta["id"]
    assert build["labels"] == "${{ steps.%s.outputs.labels }}" % meta["id"]


def test_logs_in_with_the_docker_hub_secrets(workflow):
    login = step_using(workflow, "docker/login-action")["with"]
    assert login["username"] == "${{ secrets.DOCKERHUB_USERNAME }}"
    assert login["password"] == "${{ secrets.DOCKERHUB_TOKEN }}"
    names = [s.get("uses", "").split("@")[0] for s in steps(workflow)]
    assert names.index("docker/login-action") < names.index("docker/build-push-action")


def test_build_args_exist_in_the_dockerfile(workflow):
    build = step_using(workflow, "docker/build-push-action")["with"]
    passed = {line.split("=", 1)[0].strip() for line in build["build-args"].splitlines() if line.strip()}
    declared = {name for stage in stages() for name in stage.build_args()}
    assert passed <= declared, passed - declared
