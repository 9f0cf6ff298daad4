"""One version: pyproject.toml's. Swagger, the image label, the release workflow and the changelog follow it."""

from __future__ import annotations

import os
import subprocess
import tomllib

import yaml

from tests.static.dockerfile import ROOT, stage

VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
WORKFLOW = yaml.safe_load((ROOT / ".github" / "workflows" / "docker.yml").read_text())


def test_swagger_reports_the_project_version():
    from api.rest import API_VERSION

    assert API_VERSION == VERSION


def test_the_image_label_defaults_to_the_project_version():
    runtime = stage("runtime")
    assert runtime.build_args()["VERSION"] == VERSION
    assert 'org.opencontainers.image.version="${VERSION}"' in " ".join(runtime.args("LABEL"))


def version_steps() -> list[dict]:
    return [s for job in WORKFLOW["jobs"].values() for s in job["steps"] if s.get("id") == "version"]


def run_check(script: str, tag: str, tmp_path) -> tuple[int, str]:
    output = tmp_path / "github_output"
    output.write_text("")
    env = {**os.environ, "GITHUB_REF_NAME": tag, "GITHUB_OUTPUT": str(output)}
    proc = subprocess.run(["bash", "-e", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True)
    return proc.returncode, output.read_text()


def test_every_release_job_checks_the_tag_against_the_project_version(tmp_path):
    jobs = WORKFLOW["jobs"]
    steps = version_steps()
    assert len(steps) == len(jobs)  # one per job, before anything is built
    for job in jobs.values():
        names = [s.get("id") for s in job["steps"]]
        builds = [i for i, s in enumerate(job["steps"]) if s.get("uses", "").startswith("docker/build-push-action@")]
        assert names.index("version") < min(builds)
        for i in builds:
            assert "VERSION=${{ steps.version.outputs.version }}" in job["steps"][i]["with"]["build-args"].splitlines()
    script = steps[0]["run"]
    assert all(s["run"] == script for s in steps)
    assert run_check(script, f"v{VERSION}", tmp_path) == (0, f"version={VERSION}\n")
    assert run_check(script, f"v{VERSION}-rc1", tmp_path) == (0, f"version={VERSION}-rc1\n")
    assert run_check(script, "v0.0.1", tmp_path)[0] != 0
    assert run_check(script, VERSION, tmp_path)[0] != 0  # tags are v<version>


def test_pushed_images_are_labelled_with_the_checked_version():
    meta = next(s for job in WORKFLOW["jobs"].values() for s in job["steps"] if "metadata-action" in s.get("uses", ""))
    assert "org.opencontainers.image.version=${{ steps.version.outputs.version }}" in meta["with"]["labels"]


def test_the_changelog_has_the_version_and_an_unreleased_section():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in changelog
    assert f"## [{VERSION}] - " in changelog


def test_the_license_is_the_apache_2_0_text():
    import hashlib

    text = (ROOT / "LICENSE").read_bytes()
    # sha256 of https://www.apache.org/licenses/LICENSE-2.0.txt, the canonical text.
    assert hashlib.sha256(text).hexdigest() == "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"] == "Apache-2.0"
