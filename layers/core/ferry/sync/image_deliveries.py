"""Image webhook deliveries, verified and read: which images were pushed.

Pure functions, like sync/deliveries.py: headers, body and the image webhook token in, the
images to check out (or an error). Senders:

- GitHub (`X-GitHub-Event` or `X-Hub-Signature-256`): `package` and `registry_package` events of
  container packages, signed with the token as the webhook's secret (`sha256=` + hex HMAC-SHA256
  of the body); `ping` names no image; anything else is refused.
- Docker Hub (a body with `push_data` and `repository.repo_name`): it cannot sign, so the token
  in the URL is what authenticates it (as for every sender).
- anyone else: `{"image": "registry/app:tag"}` (or `{"images": [...]}`); a `digest` may come
  along and is not needed: the agent asks the registry itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from ferry.errors import InvalidInput
from ferry.sync.deliveries import check_github_signature

MAX_IMAGES = 20
# A plausible image reference: registry host[:port]/path[:tag][@digest], no spaces or controls.
_REFERENCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,254}$")


@dataclass(frozen=True)
class ImageDelivery:
    """What a verified image webhook names: images to check now (empty: a ping)."""

    sender: str
    images: list[str]


def _reference(value: object) -> str:
    if not isinstance(value, str) or not _REFERENCE.match(value.strip()):
        raise InvalidInput(f"{str(value)[:80]!r} is not an image reference")
    return value.strip()


def _json(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise InvalidInput("body is not valid JSON") from exc
    if not isinstance(payload, dict):
        raise InvalidInput("body must be a JSON object")
    return payload


def _github_image(package: Mapping[str, Any]) -> str | None:
    """ghcr.io/<namespace>/<name>[:tag] from a `package` / `registry_package` object."""
    if str(package.get("package_type") or package.get("ecosystem") or "").lower() not in (
        "container",
        "docker",
    ):
        return None
    version = package.get("package_version") or {}
    url = version.get("package_url") if isinstance(version, dict) else None
    if isinstance(url, str) and url:
        return _reference(url)
    registry = package.get("registry") or {}
    host = urlparse(str(registry.get("url") or "")).netloc if isinstance(registry, dict) else ""
    namespace, name = package.get("namespace"), package.get("name")
    if not namespace or not name:
        raise InvalidInput("a package event without namespace or name")
    tag = ((version.get("container_metadata") or {}).get("tag") or {}).get("name")
    reference = f"{host or 'ghcr.io'}/{namespace}/{name}".lower()
    return _reference(f"{reference}:{tag}" if tag else reference)


def read_image_delivery(headers: Mapping[str, str], body: bytes, token: str) -> ImageDelivery:
    """Say which images a webhook delivery names. GitHub deliveries must be signed with the
    token (`X-Hub-Signature-256`); Docker Hub cannot sign, so the token in the URL is the
    secret for every sender."""
    lowered = {name.lower(): value for name, value in headers.items()}
    if "x-github-event" in lowered or "x-hub-signature-256" in lowered:
        check_github_signature(lowered.get("x-hub-signature-256"), body, token)
        event = lowered.get("x-github-event", "")
        if event == "ping":
            return ImageDelivery("github", [])
        if event not in ("package", "registry_package"):
            raise InvalidInput(f"GitHub event {event!r} names no image")
        package = _json(body).get(event)
        image = _github_image(package) if isinstance(package, dict) else None
        if image is None:
            raise InvalidInput("the package is not a container image")
        return ImageDelivery("github", [image])
    payload = _json(body)
    repository = payload.get("repository")
    if isinstance(payload.get("push_data"), dict) and isinstance(repository, dict):
        name = repository.get("repo_name")
        tag = payload["push_data"].get("tag")
        image = f"docker.io/{name}:{tag}" if tag else f"docker.io/{name}"
        return ImageDelivery("docker-hub", [_reference(image)])
    images = payload.get("images", [payload.get("image")] if "image" in payload else None)
    if not isinstance(images, list) or not images:
        raise InvalidInput('a generic delivery names `image` (or `images`): {"image": "…"}')
    if len(images) > MAX_IMAGES:
        raise InvalidInput(f"at most {MAX_IMAGES} images a delivery")
    return ImageDelivery("generic", [_reference(image) for image in images])
