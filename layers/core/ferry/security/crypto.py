"""Encryption at rest (AES-256-GCM) and the blind name index (HMAC-SHA256), both derived from one
master secret with HKDF, so one configuration value keys both and rotates both.

Ciphertexts are `v1.<key id>.<base64url(nonce + ciphertext + tag)>`: the key id says which key
sealed a value, so after a rotation old values still open (with the previous key) until
`ferry admin rotate-key` has rewritten them. Binary values (deployment bundles) are sealed the
same way, their bytes as they are instead of UTF-8 text.

The master secret is FERRY_SECRET_KEY (the local stack keeps one in .ferry/secret.key); in AWS it
lives in Secrets Manager, encrypted with the stack's KMS key (FERRY_SECRET_KEY_SECRET_ARN).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from collections.abc import Sequence
from functools import lru_cache

from ferry.domain.validation import normalize_name
from ferry.errors import PermanentError
from ferry.settings import get_settings

_VERSION = "v1"
_NONCE_BYTES = 12
MIN_SECRET_LENGTH = 32


def generate_key() -> str:
    """A new random master secret (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


# cryptography is imported where a key is first made, not with this module: its Rust bindings
# cost ~20 ms of a Lambda's cold start, and most handlers that import the store never make a key
# (the deploy tasks, for one).


def _derive(material: bytes, purpose: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(material)


class UnknownKey(PermanentError):
    """A value was sealed with a key this keyring does not hold (yet)."""


class MasterKey:
    """The keys derived from one master secret."""

    def __init__(self, secret: str) -> None:
        material = secret.strip().encode()
        if len(material) < MIN_SECRET_LENGTH:
            raise PermanentError(f"the secret key must be at least {MIN_SECRET_LENGTH} characters")
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self.kid = hashlib.sha256(b"ferry/key-id/" + material).hexdigest()[:12]
        self._aead = AESGCM(_derive(material, b"ferry/encryption/v1"))
        self.index_key = _derive(material, b"ferry/name-index/v1")

    def seal(self, plaintext: bytes) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext, self.kid.encode())
        return f"{_VERSION}.{self.kid}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def open(self, body: str) -> bytes:
        from cryptography.exceptions import InvalidTag

        try:
            raw = base64.urlsafe_b64decode(body)
        except (ValueError, binascii.Error) as exc:
            raise PermanentError("ciphertext is not base64") from exc
        if len(raw) <= _NONCE_BYTES:
            raise PermanentError("ciphertext is truncated")
        try:
            return self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], self.kid.encode())
        except InvalidTag as exc:
            raise PermanentError("ciphertext was tampered with") from exc


class Keyring:
    """The current key (used for every new value and hash) and previous ones (read only)."""

    def __init__(self, current: str, previous: Sequence[str] = ()) -> None:
        self.current = MasterKey(current)
        self._keys = {self.current.kid: self.current}
        for secret in previous:
            if secret.strip():
                key = MasterKey(secret)
                self._keys.setdefault(key.kid, key)

    def encrypt(self, plaintext: str) -> str:
        return self.current.seal(plaintext.encode())

    def encrypt_bytes(self, plaintext: bytes) -> str:
        return self.current.seal(plaintext)

    def decrypt(self, token: str) -> str:
        try:
            return self.decrypt_bytes(token).decode()
        except UnicodeDecodeError as exc:
            raise PermanentError("ciphertext does not hold text") from exc

    def decrypt_bytes(self, token: str) -> bytes:
        version, _, rest = token.partition(".")
        kid, _, body = rest.partition(".")
        if version != _VERSION or not kid or not body:
            raise PermanentError("unknown ciphertext format")
        key = self._keys.get(kid)
        if key is None:
            raise UnknownKey(f"no key {kid} to decrypt with (was the secret key replaced?)")
        return key.open(body)

    def is_current(self, token: str) -> bool:
        """Whether `token` was sealed with the current key."""
        return token.startswith(f"{_VERSION}.{self.current.kid}.")

    def name_hash(self, name: str) -> str:
        """The blind index of a name: HMAC-SHA256(index key, normalized name), where normalized
        is NFKC, trimmed and lowercased (`domain.validation.normalize_name`)."""
        return hmac.new(
            self.current.index_key, normalize_name(name).encode(), hashlib.sha256
        ).hexdigest()


def _secret_from_secrets_manager(arn: str) -> tuple[str, list[str]]:
    """AWSCURRENT, plus AWSPENDING and AWSPREVIOUS as read-only keys (see
    manage/key_rotation.py). Imported on first use: only AWS deployments need boto3 for it."""
    from ferry.aws.secrets import CURRENT, PENDING, PREVIOUS, secret_value

    current = secret_value(arn, CURRENT)
    if current is None:
        raise PermanentError(f"secret {arn} has no current value")
    readable = [v for v in (secret_value(arn, PENDING), secret_value(arn, PREVIOUS)) if v]
    return current, readable


def decrypt(token: str) -> str:
    """Decrypt with the process keyring; a key rotated in elsewhere is picked up once."""
    try:
        return get_keyring().decrypt(token)
    except UnknownKey:
        get_keyring.cache_clear()  # the secret may have been rotated since this process read it
        return get_keyring().decrypt(token)


def decrypt_bytes(token: str) -> bytes:
    """`decrypt` for binary values."""
    try:
        return get_keyring().decrypt_bytes(token)
    except UnknownKey:
        get_keyring.cache_clear()
        return get_keyring().decrypt_bytes(token)


@lru_cache(maxsize=1)
def get_keyring() -> Keyring:
    """The process keyring: FERRY_SECRET_KEY (+ FERRY_PREVIOUS_SECRET_KEYS), or Secrets Manager."""
    settings = get_settings()
    if settings.secret_key:
        previous = [k for k in settings.previous_secret_keys.split(",") if k.strip()]
        return Keyring(settings.secret_key, previous)
    if settings.secret_key_secret_arn:
        return Keyring(*_secret_from_secrets_manager(settings.secret_key_secret_arn))
    raise PermanentError("no secret key: set FERRY_SECRET_KEY or FERRY_SECRET_KEY_SECRET_ARN")
