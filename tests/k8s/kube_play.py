"""The Kubernetes manifests, run for real: ``kubectl kustomize`` output played with ``podman kube play``.

    ../shared/tools/container-smoke --keep          # builds localhost/project-under-test:smoke (root, podman)
    python tests/k8s/kube_play.py                   # k8s/ (the TensorFlow image)
    python tests/k8s/kube_play.py --overlay k8s/tflite --image localhost/project-under-test:tflite

It renders the overlay, keeps the Deployment (podman plays Pods and Deployments; the Service, HPA and
PDB have no podman equivalent), points it at the locally built image, and changes only what a single
host needs: the host network on a free port (PORT, containerPort), and 2 s request deadlines so the
slow-client check is quick (and, as the host network allows no port mappings in podman 4.3, the
``ports`` list goes and the probes name the port by number). Everything else (user, read-only root, capabilities, memory limit,
probes, env) is played as rendered. Then it checks, and exits non-zero on the first failure:

1. the pod starts and becomes ready: ``/health/ready`` answers 200 within the startup probe's
   budget (podman 4.3 turns only the liveness probe into a healthcheck, so this script polls
   readiness the way the kubelet would), and the liveness probe's path answers 200 (podman would run
   it as ``curl -f`` inside the container, which has no curl);
2. the container runs as the manifest's ``runAsUser``/``runAsGroup``, its root filesystem is
   read-only (writing ``/`` fails, ``/tmp`` works), and it has no effective capabilities;
3. the memory limit is applied (cgroup ``memory.max`` equals ``resources.limits.memory``);
4. ``POST /model/predict`` with a photo answers 200 with predictions;
5. slow clients: 100 header and 100 body tricklers at 1 byte/s are all answered 408 and closed while
   predictions keep succeeding.

It prints the warnings podman gave about fields it does not support, and tears the pod down.
podman runs as root with ``--runtime runc --cgroup-manager=cgroupfs`` like container-smoke, with an
open-files limit set through a temporary containers.conf (kube play has no ``--ulimit``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.abuse import Tricklers, multipart  # noqa: E402
from tests.support.server import free_port  # noqa: E402

PODMAN = ["podman", "--runtime", "runc", "--cgroup-manager=cgroupfs"]
DEADLINE = 2
UNITS = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3}


def quantity(text: str) -> int:
    for suffix, factor in UNITS.items():
        if text.endswith(suffix):
            return int(text[: -len(suffix)]) * factor
    return int(text)


def render(overlay: Path) -> list[dict]:
    out = subprocess.run(["kubectl", "kustomize", str(overlay)], check=True, capture_output=True, text=True).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def prepare(deployment: dict, image: str, port: int) -> dict:
    spec = deployment["spec"]["template"]["spec"]
    container = spec["containers"][0]
    container["image"] = image
    container["imagePullPolicy"] = "Never"
    # Host network (this machine has no bridge networking for podman): podman 4.3 refuses port
    # mappings there, so the ports list goes and the probes name the port by number.
    del container["ports"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        container[probe]["httpGet"]["port"] = port
    env = {item["name"]: item for item in container["env"]}
    env["PORT"]["value"] = str(port)
    for name in ("HEADER_TIMEOUT_SECONDS", "BODY_TIMEOUT_SECONDS"):
        env.setdefault(name, {"name": name})["value"] = str(DEADLINE)
    container["env"] = list(env.values())
    spec["hostNetwork"] = True
    return deployment


def podman(*args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*PODMAN, *args], check=check, capture_output=True, text=True, env=env)


def step(message: str) -> None:
    print(f"== {message}", flush=True)


def fail(message: str) -> None:
    raise SystemExit(f"FAILED: {message}")


def container_id(name: str) -> str:
    """The app container of the pod ``podman kube play`` made for Deployment ``name``
    (podman names it ``<name>-pod-0-<container>``)."""
    lines = podman("ps", "-a", "--format", "{{.ID}} {{.Names}}").stdout.splitlines()
    ids = [line.split()[0] for line in lines if line.split()[1].startswith(f"{name}-pod")]
    if not ids:
        fail(f"no container named {name}-pod*")
    return ids[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--overlay", type=Path, default=ROOT / "k8s")
    parser.add_argument("--image", default="localhost/project-under-test:smoke")
    parser.add_argument("--photo", type=Path, default=ROOT.parent / "shared" / "images" / "dog.jpg")
    parser.add_argument("--keep", action="store_true", help="leave the pod running")
    args = parser.parse_args(argv)

    docs = render(args.overlay)
    (deployment,) = [doc for doc in docs if doc["kind"] == "Deployment"]
    skipped = sorted({doc["kind"] for doc in docs} - {"Deployment"})
    port = free_port()
    deployment = prepare(deployment, args.image, port)
    pod_spec = deployment["spec"]["template"]["spec"]
    container = pod_spec["containers"][0]
    work = Path(tempfile.mkdtemp(prefix="kube-play-"))
    manifest = work / "deployment.yaml"
    manifest.write_text(yaml.safe_dump(deployment))
    conf = work / "containers.conf"
    conf.write_text('[containers]\ndefault_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]\n')
    env = {**os.environ, "CONTAINERS_CONF": str(conf)}
    step(f"rendered {args.overlay}: playing the Deployment, not {skipped} (no podman equivalent); port {port}")

    played = podman("kube", "play", "--network", "host", "--replace", str(manifest), check=False, env=env)
    print(played.stdout + played.stderr, end="")
    if played.returncode != 0:
        fail("podman kube play")
    warnings = [
        line for line in (played.stdout + played.stderr).splitlines() if re.search(r"(?i)warn|ignor|unsupported", line)
    ]
    try:
        cid = container_id(deployment["metadata"]["name"])
        url = f"http://127.0.0.1:{port}"

        startup = container["startupProbe"]
        budget = startup["periodSeconds"] * startup["failureThreshold"]
        step(f"1. waiting up to {budget} s for {startup['httpGet']['path']} (the startup and readiness probes)")
        started = time.monotonic()
        while True:
            try:
                if requests.get(url + container["readinessProbe"]["httpGet"]["path"], timeout=3).status_code == 200:
                    break
            except requests.RequestException:
                pass
            state = podman("inspect", cid, "--format", "{{.State.Status}}").stdout.strip()
            if state not in ("running", "created", "configured"):
                print(podman("logs", cid, check=False).stdout[-3000:])
                fail(f"container is {state}")
            if time.monotonic() - started > budget:
                fail("not ready in time")
            time.sleep(1)
        step(f"ready after {time.monotonic() - started:.0f} s")

        # podman 4.3 turns an httpGet liveness probe into a healthcheck running `curl -f` inside the
        # container, and schedules it with systemd timers. The image has no curl (the kubelet probes
        # from outside), so that healthcheck can only fail: the script makes the probe's request itself.
        healthcheck = podman("inspect", cid, "--format", "{{json .Config.Healthcheck}}").stdout.strip()
        live = container["livenessProbe"]["httpGet"]["path"]
        if requests.get(url + live, timeout=container["livenessProbe"]["timeoutSeconds"]).status_code != 200:
            fail(f"{live} does not answer 200")
        step(f"liveness {live}: 200 (podman's own healthcheck for it: {healthcheck}, which needs curl in the image)")

        step("2. user, read-only root, capabilities")
        security = {**pod_spec.get("securityContext", {}), **container.get("securityContext", {})}
        ids = podman("exec", cid, "sh", "-c", "id -u; id -g").stdout.split()
        if ids != [str(security["runAsUser"]), str(security["runAsGroup"])]:
            fail(f"runs as {ids}, the manifest says {security['runAsUser']}:{security['runAsGroup']}")
        readonly = podman("inspect", cid, "--format", "{{.HostConfig.ReadonlyRootfs}}").stdout.strip()
        if security.get("readOnlyRootFilesystem") and readonly != "true":
            fail(f"root filesystem is not read-only ({readonly})")
        if podman("exec", cid, "sh", "-c", "touch /probe-write", check=False).returncode == 0:
            fail("could write to /")
        if podman("exec", cid, "sh", "-c", "touch /tmp/probe-write", check=False).returncode != 0:
            fail("cannot write to /tmp (the emptyDir)")
        cap = podman("exec", cid, "sh", "-c", "grep CapEff /proc/1/status").stdout.split()[-1]
        if int(cap, 16) != 0:
            fail(f"effective capabilities {cap}, the manifest drops ALL")
        step(f"uid:gid {':'.join(ids)}, read-only root, CapEff {cap}")

        step("3. memory limit")
        limit = quantity(container["resources"]["limits"]["memory"])
        applied = podman(
            "exec",
            cid,
            "sh",
            "-c",
            "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes",
        ).stdout.strip()
        if applied != str(limit):
            fail(f"cgroup memory limit {applied}, the manifest says {limit}")
        step(f"memory.max {applied} = {container['resources']['limits']['memory']}")

        step("4. predict")
        body, content_type = multipart(args.photo.read_bytes(), filename=args.photo.name)
        response = requests.post(f"{url}/model/predict", data=body, headers={"Content-Type": content_type}, timeout=60)
        if response.status_code != 200 or not response.json().get("predictions"):
            fail(f"predict answered {response.status_code}: {response.text[:300]}")
        step(json.dumps(response.json()["predictions"][:2]))

        step("5. slow clients: 100 header + 100 body tricklers, 1 byte/s, 2 s deadlines")
        with Tricklers(port, header=100, body=100, max_seconds=30) as tricklers:
            deadline = time.monotonic() + 20
            while tricklers.max_open < 200 and time.monotonic() < deadline:
                time.sleep(0.1)
            served = [
                requests.post(
                    f"{url}/model/predict", data=body, headers={"Content-Type": content_type}, timeout=30
                ).status_code
                for _ in range(5)
            ]
            results = tricklers.join()
        statuses = sorted({str(r.status) for r in results})
        if served != [200] * 5 or len(results) != 200 or statuses != ["408"]:
            fail(f"predictions {served}; trickler answers {statuses} for {len(results)}")
        step(f"5 predictions served meanwhile; {len(results)} tricklers answered 408 and closed")

        step("what podman made of the fields it does not enforce like the kubelet (informational)")
        facts = podman(
            "inspect",
            cid,
            "--format",
            "{{.Config.StopTimeout}}|{{.HostConfig.MemoryReservation}}|{{.HostConfig.NanoCpus}}|{{json .Config.Healthcheck}}",
        ).stdout.strip()
        stop, reservation, cpus, _ = facts.split("|", 3)
        tmp = podman("exec", cid, "sh", "-c", "grep ' /tmp ' /proc/mounts").stdout.split()
        print(
            f"   terminationGracePeriodSeconds {pod_spec.get('terminationGracePeriodSeconds')} -> stop timeout {stop} s"
        )
        print(f"   requests.memory {container['resources']['requests']['memory']} -> soft limit {reservation} bytes")
        print(f"   limits.cpu {container['resources']['limits']['cpu']} -> {int(cpus) / 1e9:g} CPUs")
        print(f"   emptyDir /tmp (medium Memory, sizeLimit) -> {tmp[2] if len(tmp) > 2 else '?'} mount, a named volume")
        print(f"   readinessProbe, startupProbe -> not played; livenessProbe -> {facts.split('|', 3)[3]}")
        print("== podman's own messages about unsupported or ignored fields:")
        print("\n".join(warnings) or "   (none printed by podman)")
        step("all checks passed")
        return 0
    finally:
        if not args.keep:
            podman("kube", "down", str(manifest), check=False, env=env)


if __name__ == "__main__":
    sys.exit(main())
