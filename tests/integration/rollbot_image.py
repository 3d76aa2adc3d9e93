"""rollbot's own image, built from the repository's Dockerfile with no image registry in reach.

The Dockerfile names the public sources (python:3.12-slim, docker:cli, docker/compose-bin,
PyPI). Here its build args point at local stand-ins instead, each cached so a repeated run only
rebuilds the layers whose inputs changed:

- PYTHON_IMAGE: Debian's Python with venv, made by `.ci/setup.sh` with mmdebstrap;
- BUILDER_IMAGE: that image plus a wheelhouse of exactly the files `requirements/runtime.lock`
  pins (downloaded on this host, whose pip reaches its package mirror, where a build container
  does not; the Dockerfile checks every hash) and pip told to use only it;
- DOCKER_CLI_IMAGE and COMPOSE_IMAGE: one image holding this host's docker CLI and Compose
  plugin at the paths the Dockerfile copies them from, made with `docker import`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from tests.integration.demo import ROOT

STATE = Path(os.environ.get("ROLLBOT_CI_STATE", "/var/tmp/rollbot-ci"))
PYTHON_IMAGE = os.environ.get("ROLLBOT_TEST_PYTHON_IMAGE", "rollbot-test-python:bookworm")
IMAGE = "rollbot-test-rollbot:latest"
CLASSIC_BUILDER = {**os.environ, "DOCKER_BUILDKIT": "0"}  # no buildx on the test machines


def build_rollbot_image() -> str:
    """Build the Dockerfile as IMAGE and return the tag; the image it replaces is removed."""
    tools = docker_tools_image()
    previous = _image_id(IMAGE)
    built = _run(
        [
            "docker",
            "build",
            "--quiet",
            "--build-arg",
            f"PYTHON_IMAGE={PYTHON_IMAGE}",
            "--build-arg",
            f"BUILDER_IMAGE={builder_image()}",
            "--build-arg",
            f"DOCKER_CLI_IMAGE={tools}",
            "--build-arg",
            f"COMPOSE_IMAGE={tools}",
            "--tag",
            IMAGE,
            str(ROOT),
        ],
        env=CLASSIC_BUILDER,
    )
    if previous and previous != built.stdout.strip():
        # Only the replaced image goes; the layers the new one shares (the cache) stay.
        subprocess.run(["docker", "rmi", previous], capture_output=True, check=False)
    return IMAGE


def builder_image() -> str:
    """PYTHON_IMAGE with the wheelhouse at /wheelhouse and pip limited to it."""
    wheels = wheelhouse()
    tag = f"rollbot-test-builder:{wheels.name.removeprefix('wheelhouse-')}"
    if _image_id(tag) is None:
        with tempfile.TemporaryDirectory() as folder:
            dockerfile = Path(folder) / "Dockerfile"
            dockerfile.write_text(
                f"FROM {PYTHON_IMAGE}\nCOPY . /wheelhouse\nENV PIP_NO_INDEX=1 PIP_FIND_LINKS=/wheelhouse\n"
            )
            _run(
                ["docker", "build", "--quiet", "--file", str(dockerfile), "--tag", tag, str(wheels)],
                env=CLASSIC_BUILDER,
            )
    return tag


def wheelhouse() -> Path:
    """The files of rollbot's runtime lock (its dependencies and build requirements), for the image's Python.

    Downloaded for this host's Python, so it must be the image's minor version (C extensions are
    per version). Kept under STATE, keyed by the lock, so CI fetches it once.
    """
    image_python = _run(
        ["docker", "run", "--rm", PYTHON_IMAGE, "python3", "-c", "import sys; print(*sys.version_info[:2], sep='.')"]
    ).stdout.strip()
    host_python = "{}.{}".format(*sys.version_info[:2])
    assert image_python == host_python, (
        f"{PYTHON_IMAGE} has Python {image_python} but the wheelhouse would be fetched for {host_python}"
    )
    lock = ROOT / "requirements" / "runtime.lock"
    key = hashlib.sha256(host_python.encode() + lock.read_bytes()).hexdigest()[:12]
    folder = STATE / f"wheelhouse-{key}"
    if not folder.is_dir():
        STATE.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix="wheelhouse-", dir=STATE))
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--require-hashes",
                "--only-binary",
                ":all:",
                "--dest",
                str(partial),
                "--requirement",
                str(lock),
            ]
        )
        partial.rename(folder)  # whole or absent: a run cut short leaves only a temp folder
    return folder


def docker_tools_image() -> str:
    """This host's docker CLI at /usr/local/bin/docker and Compose plugin at /docker-compose."""
    docker = shutil.which("docker")
    assert docker is not None, "the docker CLI is not on PATH"
    compose = _run(
        ["docker", "info", "--format", '{{range .ClientInfo.Plugins}}{{if eq .Name "compose"}}{{.Path}}{{end}}{{end}}']
    ).stdout.strip()
    assert compose, "the Compose v2 plugin was not found"
    client = _run(["docker", "version", "--format", "{{.Client.Version}}"]).stdout.strip()
    plugin = _run(["docker", "compose", "version", "--short"]).stdout.strip()
    tag = f"rollbot-test-docker-cli:{client}-{plugin}".replace("+", "_")
    if _image_id(tag) is None:
        importing = subprocess.Popen(["docker", "import", "-", tag], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
        assert importing.stdin is not None
        with tarfile.open(fileobj=importing.stdin, mode="w|") as tar:
            tar.add(os.path.realpath(docker), arcname="usr/local/bin/docker")
            tar.add(os.path.realpath(compose), arcname="docker-compose")
        importing.stdin.close()
        assert importing.wait() == 0, f"docker import of {tag} failed"
    return tag


def _image_id(reference: str) -> str | None:
    found = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", reference], capture_output=True, text=True, check=False
    )
    return found.stdout.strip() if found.returncode == 0 else None


def _run(command: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, (
        f"{' '.join(command[:3])} … exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done
