"""Encryption at rest with AES-256-GCM (from `cryptography`).

Ciphertexts are `v1.<base64url(nonce + ciphertext + tag)>`; the version prefix leaves room for
key rotation. The key is FERRY_SECRET_KEY: URL-safe base64 of 32 bytes.
"""

from __future__ import annotations

import base64
import os
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ferry.errors import PermanentError
from ferry.settings import get_settings

_PREFIX = "v1."
_NONCE_BYTES = 12


def generate_key() -> str:
    """A new random key in the form FERRY_SECRET_KEY expects."""
    return base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=256)).decode().rstrip("=")


def _decode_key(encoded: str) -> bytes:
    padded = encoded.strip() + "=" * (-len(encoded.strip()) % 4)
    try:
        key = base64.urlsafe_b64decode(padded)
    except ValueError as exc:
        raise PermanentError("FERRY_SECRET_KEY is not base64") from exc
    if len(key) != 32:
        raise PermanentError("FERRY_SECRET_KEY must decode to 32 bytes")
    return key


class SecretBox:
    """Encrypts and decrypts short strings under one key."""

    def __init__(self, encoded_key: str) -> None:
        self._aead = AESGCM(_decode_key(encoded_key))

    def encrypt(self, plaintext: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), None)
        return _PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def decrypt(self, token: str) -> str:
        if not token.startswith(_PREFIX):
            raise PermanentError("unknown ciphertext format")
        try:
            raw = base64.urlsafe_b64decode(token[len(_PREFIX) :])
        except ValueError as exc:
            raise PermanentError("ciphertext is not base64") from exc
        if len(raw) <= _NONCE_BYTES:
            raise PermanentError("ciphertext is truncated")
        try:
            return self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], None).decode()
        except InvalidTag as exc:
            raise PermanentError("ciphertext does not match FERRY_SECRET_KEY") from exc


@lru_cache(maxsize=1)
def get_secret_box() -> SecretBox:
    """The process's box, keyed from settings."""
    key = get_settings().secret_key
    if not key:
        raise PermanentError("FERRY_SECRET_KEY is not set")
    return SecretBox(key)
