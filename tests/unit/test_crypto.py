"""SecretBox: AES-256-GCM encryption at rest of short strings."""

from __future__ import annotations

import base64

import pytest

from ferry.errors import PermanentError
from ferry.security.crypto import SecretBox, generate_key


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(generate_key())


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


@pytest.mark.parametrize("plaintext", ["", "hunter2", "services:\n  web:\n    image: x\n", "ünï ✓"])
def test_secret_box_round_trip_returns_plaintext(box: SecretBox, plaintext: str) -> None:
    sealed = box.encrypt(plaintext)

    assert sealed.startswith("v1.")
    assert box.decrypt(sealed) == plaintext


def test_secret_box_ciphertext_hides_plaintext(box: SecretBox) -> None:
    assert "hunter2" not in box.encrypt("hunter2")


def test_secret_box_same_plaintext_twice_different_ciphertexts(box: SecretBox) -> None:
    first, second = box.encrypt("same"), box.encrypt("same")

    assert first != second
    assert box.decrypt(first) == box.decrypt(second) == "same"


def test_secret_box_tampered_ciphertext_raises_permanent_error(box: SecretBox) -> None:
    sealed = box.encrypt("hunter2")
    raw = bytearray(base64.urlsafe_b64decode(sealed[len("v1.") :]))
    raw[-1] ^= 0x01

    with pytest.raises(PermanentError):
        box.decrypt("v1." + _b64(bytes(raw)))


def test_secret_box_tampered_nonce_raises_permanent_error(box: SecretBox) -> None:
    sealed = box.encrypt("hunter2")
    raw = bytearray(base64.urlsafe_b64decode(sealed[len("v1.") :]))
    raw[0] ^= 0x80

    with pytest.raises(PermanentError):
        box.decrypt("v1." + _b64(bytes(raw)))


def test_secret_box_other_key_raises_permanent_error(box: SecretBox) -> None:
    sealed = box.encrypt("hunter2")

    with pytest.raises(PermanentError, match="FERRY_SECRET_KEY"):
        SecretBox(generate_key()).decrypt(sealed)


def test_secret_box_unknown_prefix_raises_permanent_error(box: SecretBox) -> None:
    sealed = box.encrypt("hunter2")

    with pytest.raises(PermanentError, match="format"):
        box.decrypt("v2." + sealed[len("v1.") :])


@pytest.mark.parametrize("token", ["v1.", "v1.abc", "v1." + _b64(b"short"), "v1.!!!!"])
def test_secret_box_truncated_or_garbled_ciphertext_raises_permanent_error(
    box: SecretBox, token: str
) -> None:
    with pytest.raises(PermanentError):
        box.decrypt(token)


@pytest.mark.parametrize("size", [0, 16, 24, 31, 33, 64])
def test_secret_box_key_of_wrong_length_raises_permanent_error(size: int) -> None:
    with pytest.raises(PermanentError, match="32 bytes"):
        SecretBox(_b64(b"k" * size))


def test_secret_box_padded_key_accepted() -> None:
    key = _b64(b"k" * 32)
    assert key.endswith("=")

    box = SecretBox(key)

    assert box.decrypt(box.encrypt("x")) == "x"


def test_generate_key_decodes_to_32_bytes_and_fresh_each_time() -> None:
    first, second = generate_key(), generate_key()

    assert first != second
    assert len(first) == 43  # what template.yaml's SecretKey MinLength expects
    assert len(base64.urlsafe_b64decode(first + "=")) == 32
    box = SecretBox(first)
    assert box.decrypt(box.encrypt("usable")) == "usable"
