"""The Docker runner's images, built locally and cached: no registry needs to be reachable.

- The base: Debian 12 with python3, made by ``infra/build-base-image.sh`` (debootstrap, ~40 s), tagged
  ``marid-base:<digest of the script>``.
- The runtime: ``infra/Dockerfile.agent-runtime`` on that base, tagged ``marid-agent-runtime:<digest>`` where
  the digest covers the Dockerfile, agent-runtime/ and the base. It is built with no network: the host's pip
  (and its configuration: mirrors, CA) first downloads wheels for agent-runtime into the build context.

Each image is also saved as a tar in a cache directory (the test harness uses /var/tmp/marid-test-images),
so a fresh Docker engine loads it in seconds instead of building it again. A tag is only ever made from the
inputs its digest names, so "the tag exists" means "up to date".
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import docker
import docker.errors

from app.sandbox.runner import SandboxError
from app.sandbox.runtime_env import agent_runtime_source, copy_sources, source_files

REPO = Path(__file__).resolve().parents[2]
BASE_SCRIPT = REPO / "infra" / "build-base-image.sh"
DOCKERFILE = REPO / "infra" / "Dockerfile.agent-runtime"


def _digest(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part + b"\0")
    return digest.hexdigest()[:12]


def base_image_tag() -> str:
    return f"marid-base:{_digest(BASE_SCRIPT.read_bytes())}"


def runtime_image_tag(base: str, source: Path | None = None) -> str:
    source = source or agent_runtime_source()
    parts = [DOCKERFILE.read_bytes(), base.encode()]
    for path in source_files(source):
        parts += [str(path.relative_to(source)).encode(), path.read_bytes()]
    return f"marid-agent-runtime:{_digest(*parts)}"


def _exists(client: docker.DockerClient, tag: str) -> bool:
    try:
        client.images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False


def _cache_file(cache: Path | None, tag: str) -> Path | None:
    return None if cache is None else cache / (tag.replace(":", "-").replace("/", "_") + ".tar")


def _load(client: docker.DockerClient, tag: str, cache: Path | None) -> bool:
    path = _cache_file(cache, tag)
    if path is None or not path.is_file():
        return False
    with open(path, "rb") as file:
        client.images.load(file)
    return _exists(client, tag)


def _save(client: docker.DockerClient, tag: str, cache: Path | None) -> None:
    path = _cache_file(cache, tag)
    if path is None:
        return
    assert cache is not None
    cache.mkdir(parents=True, exist_ok=True)
    # Older images of the same name are superseded: keep one tar per name.
    for old in cache.glob(tag.split(":")[0].replace("/", "_") + "-*.tar"):
        old.unlink(missing_ok=True)
    fd, temporary = tempfile.mkstemp(dir=cache, prefix=".save-")
    with os.fdopen(fd, "wb") as file:
        for chunk in client.images.get(tag).save(named=True):
            file.write(chunk)
    os.replace(temporary, path)


def ensure_base_image(client: docker.DockerClient, *, docker_host: str = "", cache: Path | None = None) -> str:
    """The base image's tag, after loading it from ``cache`` or building it (root and debootstrap needed).

    ``docker_host``: the engine ``client`` talks to, for the script's ``docker import`` (else DOCKER_HOST).
    """
    tag = base_image_tag()
    if _exists(client, tag) or _load(client, tag, cache):
        return tag
    env = {**os.environ, **({"DOCKER_HOST": docker_host} if docker_host else {})}
    result = subprocess.run(["bash", str(BASE_SCRIPT), tag], env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SandboxError(f"building the base image failed:\n{result.stderr[-3000:]}")
    _save(client, tag, cache)
    return tag


def _context(source: Path, wheels: Path) -> io.BytesIO:
    """The build context: the Dockerfile, agent-runtime/ and its wheels in agent-runtime/.wheelhouse/."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(DOCKERFILE, arcname="Dockerfile")
        for path in source_files(source):
            tar.add(path, arcname=f"agent-runtime/{path.relative_to(source)}")
        for wheel in sorted(wheels.glob("*.whl")):
            tar.add(wheel, arcname=f"agent-runtime/.wheelhouse/{wheel.name}")
    buffer.seek(0)
    return buffer


def ensure_runtime_image(
    client: docker.DockerClient, *, docker_host: str = "", cache: Path | None = None, source: Path | None = None
) -> str:
    """The runtime image's tag for the current sources, after loading it from ``cache`` or building it.

    The base image is only needed (and so loaded or built) when the runtime image must be built.
    """
    source = source or agent_runtime_source()
    tag = runtime_image_tag(base_image_tag(), source)
    if _exists(client, tag) or _load(client, tag, cache):
        return tag
    base = ensure_base_image(client, docker_host=docker_host, cache=cache)
    with tempfile.TemporaryDirectory(prefix="marid-wheels-") as scratch:
        wheels = str(Path(scratch) / "wheels")
        copy = copy_sources(source, Path(scratch) / "src")
        result = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check", "-w", wheels, str(copy)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise SandboxError(f"downloading the agent runtime's wheels failed:\n{result.stderr[-3000:]}")
        context = _context(source, Path(wheels))
    try:
        build: Any = client.images.build(
            fileobj=context,
            custom_context=True,
            tag=tag,
            buildargs={"BASE_IMAGE": base},
            network_mode="none",
            rm=True,
            forcerm=True,
            pull=False,
        )
    except docker.errors.BuildError as error:
        log = "".join(str(line.get("stream", line.get("error", ""))) for line in error.build_log)
        raise SandboxError(f"building {tag} failed:\n{log[-3000:]}") from error
    del build
    _save(client, tag, cache)
    return tag
