"""Image webhook deliveries: Docker Hub's payload, GitHub's package events signed with the token
(real HMACs over payloads shaped like GitHub's), and the generic `{image}`."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from ferry.errors import InvalidInput, Unauthorized
from ferry.sync.image_deliveries import read_image_delivery

TOKEN = "agt_0123456789abcdef.c2VjcmV0LXRva2VuLWZvci10ZXN0cw"
DIGEST = "sha256:" + "ab" * 32


def body_of(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


def github(body: bytes, event: str, secret: str = TOKEN) -> dict[str, str]:
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": "0b7e4f0a-1c2d-11f0-8b3a-1e2f3a4b5c6d",
        "X-Hub-Signature-256": f"sha256={signature}",
    }


def package(**version: Any) -> dict[str, Any]:
    return {
        "id": 40112233,
        "name": "shop-web",
        "namespace": "octo-org",
        "ecosystem": "CONTAINER",
        "package_type": "CONTAINER",
        "registry": {"name": "GitHub CONTAINER registry", "url": "https://ghcr.io/octo-org"},
        "package_version": {
            "id": 501223344,
            "version": DIGEST,
            "container_metadata": {"tag": {"name": "latest", "digest": DIGEST}},
            **version,
        },
    }


DOCKER_HUB = {
    "callback_url": "https://registry.hub.docker.com/u/octo/shop/hook/2141b5bi5i5b02bec211i4/",
    "push_data": {"pushed_at": 1767225600, "pusher": "octo", "tag": "1.4"},
    "repository": {
        "name": "shop",
        "namespace": "octo",
        "repo_name": "octo/shop",
        "status": "Active",
    },
}


def test_read_image_delivery_docker_hub_names_its_repository_and_tag() -> None:
    delivery = read_image_delivery({"Content-Type": "application/json"}, body_of(DOCKER_HUB), TOKEN)
    assert delivery.sender == "docker-hub"
    assert delivery.images == ["docker.io/octo/shop:1.4"]


def test_read_image_delivery_github_package_signed_names_package_url() -> None:
    body = body_of(
        {"action": "published", "package": package(package_url="ghcr.io/octo-org/shop-web:latest")}
    )
    delivery = read_image_delivery(github(body, "package"), body, TOKEN)
    assert delivery.images == ["ghcr.io/octo-org/shop-web:latest"]


def test_read_image_delivery_github_registry_package_without_url_builds_reference() -> None:
    body = body_of({"action": "published", "registry_package": package()})
    delivery = read_image_delivery(github(body, "registry_package"), body, TOKEN)
    assert delivery.images == ["ghcr.io/octo-org/shop-web:latest"]


def test_read_image_delivery_github_ping_names_nothing() -> None:
    body = body_of({"zen": "Keep it logically awesome.", "hook_id": 512345678})
    assert read_image_delivery(github(body, "ping"), body, TOKEN).images == []


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(lambda b: {**github(b, "package"), "X-Hub-Signature-256": ""}, id="unsigned"),
        pytest.param(lambda b: github(b, "package", secret="another-secret"), id="wrong-secret"),
        pytest.param(lambda b: github(b + b" ", "package"), id="body-changed"),
    ],
)
def test_read_image_delivery_github_bad_signature_unauthorized(headers: Any) -> None:
    body = body_of({"action": "published", "package": package()})
    with pytest.raises(Unauthorized):
        read_image_delivery(headers(body), body, TOKEN)


def test_read_image_delivery_github_npm_package_refused() -> None:
    npm = {**package(), "package_type": "npm", "ecosystem": "npm"}
    body = body_of({"action": "published", "package": npm})
    with pytest.raises(InvalidInput, match="not a container image"):
        read_image_delivery(github(body, "package"), body, TOKEN)


def test_read_image_delivery_github_push_event_refused() -> None:
    body = body_of({"ref": "refs/heads/main"})
    with pytest.raises(InvalidInput, match="names no image"):
        read_image_delivery(github(body, "push"), body, TOKEN)


def test_read_image_delivery_generic_image_and_digest() -> None:
    body = body_of({"image": "127.0.0.1:5000/shop:latest", "digest": DIGEST})
    delivery = read_image_delivery({}, body, TOKEN)
    assert (delivery.sender, delivery.images) == ("generic", ["127.0.0.1:5000/shop:latest"])


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({}, "names `image`"),
        ({"image": "shop web:latest"}, "not an image reference"),
        ({"image": 42}, "not an image reference"),
        ({"images": ["a/b"] * 21}, "at most 20"),
    ],
)
def test_read_image_delivery_generic_malformed_refused(
    payload: dict[str, Any], reason: str
) -> None:
    with pytest.raises(InvalidInput, match=reason):
        read_image_delivery({}, body_of(payload), TOKEN)


def test_read_image_delivery_not_json_refused() -> None:
    with pytest.raises(InvalidInput, match="not valid JSON"):
        read_image_delivery({}, b"image=shop", TOKEN)
