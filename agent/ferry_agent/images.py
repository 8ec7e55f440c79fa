"""A small image built on this host, for machines that reach no registry.

It holds one static busybox binary (Debian's busybox-static) and its applet links: enough for
`sh`, `httpd`, `wget` and `sleep`, which the sample application and the tests use.
"""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

import docker
import docker.errors

LOCAL_BUSYBOX_IMAGE = "ferry-local/busybox:latest"
PUBLIC_BUSYBOX_IMAGE = "busybox:1.36"
_APPLETS = ("sh", "httpd", "wget", "sleep", "echo", "cat", "ls", "mkdir", "true", "false", "env")


class ImageUnavailable(Exception):
    """No way to get a busybox image on this host."""


def _static_busybox() -> Path:
    found = shutil.which("busybox")
    if found is None:
        raise ImageUnavailable("no busybox binary on this host (install Debian's busybox-static)")
    return Path(found).resolve()


def _tarball(busybox: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for directory in ("bin", "tmp", "www"):
            info = tarfile.TarInfo(directory)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if directory == "tmp" else 0o755
            archive.addfile(info)
        archive.add(str(busybox), arcname="bin/busybox")
        for applet in _APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type = tarfile.SYMTYPE
            link.linkname = "busybox"
            archive.addfile(link)
    return buffer.getvalue()


def build_local_busybox(client: docker.DockerClient | None = None) -> str:
    """Import the local busybox image (idempotent) and prove it runs; returns its name."""
    client = client or docker.from_env()
    repository, tag = LOCAL_BUSYBOX_IMAGE.rsplit(":", 1)
    client.api.import_image_from_data(
        _tarball(_static_busybox()),
        repository=repository,
        tag=tag,
        changes=['CMD ["sh"]', "ENV PATH=/bin"],
    )
    try:
        client.containers.run(LOCAL_BUSYBOX_IMAGE, ["sh", "-c", "true"], remove=True)
    except docker.errors.ContainerError as exc:
        raise ImageUnavailable(
            "the host's busybox is not static; install Debian's busybox-static"
        ) from exc
    return LOCAL_BUSYBOX_IMAGE


def has_image(client: docker.DockerClient, name: str) -> bool:
    try:
        client.images.get(name)
    except docker.errors.ImageNotFound:
        return False
    return True


def busybox_image(client: docker.DockerClient, *, allow_pull: bool = True) -> str:
    """The busybox image to use here: a local build if present, else the public one (pulled),
    else a fresh local build."""
    if has_image(client, LOCAL_BUSYBOX_IMAGE):
        return LOCAL_BUSYBOX_IMAGE
    if has_image(client, PUBLIC_BUSYBOX_IMAGE):
        return PUBLIC_BUSYBOX_IMAGE
    if allow_pull:
        try:
            client.images.pull(PUBLIC_BUSYBOX_IMAGE)
            return PUBLIC_BUSYBOX_IMAGE
        except docker.errors.DockerException:
            pass  # no registry from here: build one
    return build_local_busybox(client)
