"""The production image, built and run for real: ``docker build`` of the Dockerfile
on a local base (scripts/docker-base: no registry is reachable here), then
``docker run`` with a partner folder mounted, GET /readyz and the image's own
HEALTHCHECK. Also what the image must not do: run as root, carry partners, start
without partners. Skipped, saying why, when there is no Docker daemon, no base
image or no route to PyPI for the locked dependencies; a failing build fails."""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
BASE = os.environ.get("GATEWAY_TEST_DOCKER_BASE", "gateway-base:bookworm-local")
IMAGE = "gateway-test:latest"  # kept between runs: the build cache makes the next build quick
PROFILE = """id = "initech"
name = "Initech"
[x12]
interchange_qualifier = "ZZ"
interchange_id = "INITECH"
group_id = "INITECH"
version = "004010"
[rest]
api_key_sha256 = "{sha}"
"""


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args[:2])} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done


def _why_not() -> str | None:
    if shutil.which("docker") is None:
        return "docker is not installed (.ci/run installs docker.io)"
    info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
    if info.returncode != 0:
        return f"the Docker daemon does not answer ({info.stderr.strip()[:200]}); .ci/run starts dockerd"
    if subprocess.run(["docker", "image", "inspect", BASE], capture_output=True, timeout=30).returncode:
        return f"no base image {BASE}: make it with scripts/docker-base (debootstrap; .ci/run does)"
    try:
        context = ssl.create_default_context(cafile="/etc/ssl/certs/ca-certificates.crt")
        urllib.request.urlopen("https://pypi.org/simple/pip/", timeout=10, context=context).close()
    except (OSError, urllib.error.URLError) as exc:
        return f"PyPI is not reachable for the locked dependencies ({exc})"
    return None


@pytest.fixture(scope="module")
def image() -> str:
    reason = _why_not()
    if reason is not None:
        pytest.skip(f"container test skipped: {reason}")
    docker("build", "--network", "host", "--build-arg", f"BASE={BASE}", "-t", IMAGE, str(ROOT), timeout=900)
    return IMAGE


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ready(port: int) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as resp:
            return dict(json.loads(resp.read()))
    except (OSError, urllib.error.URLError, ValueError):
        return None


def test_the_image_is_locked_down(image: str) -> None:
    config = json.loads(docker("image", "inspect", image, "--format", "{{json .Config}}").stdout)
    assert config["User"] == "gateway"
    assert "/app/var" in config["Volumes"]
    assert any("/readyz" in part for part in config["Healthcheck"]["Test"])
    # No partner inside: the examples' keys are published.
    assert docker("run", "--rm", image, "ls", "-A", "/app/partners").stdout == ""
    assert docker("run", "--rm", image, "id", "-u").stdout.strip() != "0"
    # Without partners mounted it refuses to start, saying what to do.
    refused = docker("run", "--rm", "--network", "none", image, check=False)
    assert refused.returncode == 2 and "no partner" in refused.stderr


def test_the_image_runs_with_mounted_partners_and_reports_healthy(image: str, tmp_path: Path) -> None:
    import hashlib

    partners = tmp_path / "partners"
    (partners / "initech").mkdir(parents=True)
    (partners / "initech" / "profile.toml").write_text(
        PROFILE.format(sha=hashlib.sha256(b"initech-container-key").hexdigest())
    )
    for path in (partners, partners / "initech", partners / "initech" / "profile.toml"):
        path.chmod(0o755 if path.is_dir() else 0o644)  # the image's user is not root
    port = free_port()
    container = docker(
        "run",
        "-d",
        "--network",
        "host",
        "--health-interval",
        "1s",
        "--health-start-period",
        "60s",
        "-e",
        f"GATEWAY_SERVER__PORT={port}",
        "-v",
        f"{partners}:/app/partners:ro",
        image,
    ).stdout.strip()
    try:
        answer, health = None, ""
        for _ in range(240):  # a safety stop while the container starts, not a timing
            answer = answer or ready(port)
            health = docker("inspect", container, "--format", "{{.State.Health.Status}}").stdout.strip()
            if answer is not None and health == "healthy":
                break
            if docker("inspect", container, "--format", "{{.State.Running}}").stdout.strip() != "true":
                break
            time.sleep(0.5)
        said = docker("logs", container)
        logs = said.stdout + said.stderr
        assert answer is not None, f"no /readyz answer; the container said:\n{logs[-3000:]}"
        assert answer["status"] == "ready" and answer["partners"]["loaded"] == 1
        assert health == "healthy"
        assert "partners from /app/partners" in logs
        docker("stop", "-t", "20", container, timeout=60)
        stopped = docker("inspect", container, "--format", "{{.State.ExitCode}}").stdout.strip()
        assert stopped == "0" and "gateway serve stopped" in docker("logs", container).stderr
    finally:
        docker("rm", "-f", container, check=False)
