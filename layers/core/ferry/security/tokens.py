"""Bearer tokens of the form `<record id>.<secret>`.

The record id says which row to read, so no index over hashes is needed; only a SHA-256 of the
secret is stored (secrets are 256 random bits, so a fast hash is enough) and compared in
constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass


@dataclass(frozen=True)
class IssuedToken:
    """A freshly minted token: `value` goes to the user once, `secret_hash` into the table."""

    value: str
    secret_hash: str


@dataclass(frozen=True)
class PresentedToken:
    record_id: str
    secret: str


def hash_secret(secret: str) -> str:
    """What we store for a token secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_token(record_id: str) -> IssuedToken:
    """Mint a token for the record `record_id`."""
    secret = secrets.token_urlsafe(32)
    return IssuedToken(value=f"{record_id}.{secret}", secret_hash=hash_secret(secret))


def parse_token(value: str) -> PresentedToken | None:
    """Split a presented token, or None when it is not of our shape."""
    record_id, dot, secret = value.strip().partition(".")
    if not dot or not record_id or not secret:
        return None
    return PresentedToken(record_id=record_id, secret=secret)


def secret_matches(secret: str, stored_hash: str) -> bool:
    """Constant-time check of a presented secret against the stored hash."""
    return hmac.compare_digest(hash_secret(secret), stored_hash)


def new_webhook_secret() -> str:
    """A webhook secret: shown once, stored encrypted (HMAC schemes need the plain value)."""
    return secrets.token_urlsafe(32)
