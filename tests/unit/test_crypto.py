"""Encryption at rest and the blind name index (ferry.security.crypto)."""

from __future__ import annotations

import base64

import pytest

from ferry.domain.validation import normalize_name
from ferry.errors import PermanentError
from ferry.security.crypto import Keyring, MasterKey, UnknownKey, generate_key


@pytest.fixture
def keyring() -> Keyring:
    return Keyring(generate_key())


def test_keyring_round_trip_returns_plaintext(keyring: Keyring) -> None:
    for text in ("", "webhook-secret", "services:\n  web:\n    image: x\n", "ünïcødé ✓"):
        assert keyring.decrypt(keyring.encrypt(text)) == text


def test_keyring_encrypt_same_text_twice_differs(keyring: Keyring) -> None:
    first, second = keyring.encrypt("same"), keyring.encrypt("same")
    assert first != second
    assert "same" not in first


def test_keyring_ciphertext_names_the_key(keyring: Keyring) -> None:
    sealed = keyring.encrypt("x")
    assert sealed.startswith(f"v1.{keyring.current.kid}.")
    assert keyring.is_current(sealed)


def test_keyring_tampered_ciphertext_raises_permanent_error(keyring: Keyring) -> None:
    version, kid, body = keyring.encrypt("secret").split(".")
    raw = bytearray(base64.urlsafe_b64decode(body))
    raw[-1] ^= 1
    tampered = f"{version}.{kid}.{base64.urlsafe_b64encode(bytes(raw)).decode()}"
    with pytest.raises(PermanentError, match="tampered"):
        keyring.decrypt(tampered)


def test_keyring_value_of_unknown_key_raises_unknown_key(keyring: Keyring) -> None:
    other = Keyring(generate_key())
    with pytest.raises(UnknownKey):
        keyring.decrypt(other.encrypt("x"))


@pytest.mark.parametrize("token", ["", "v1.", "v1.abc", "v2.k.body", "v1.kid.", "garbage"])
def test_keyring_malformed_ciphertext_raises_permanent_error(keyring: Keyring, token: str) -> None:
    with pytest.raises(PermanentError):
        keyring.decrypt(token)


@pytest.mark.parametrize("body", ["AAAA", "!!!!", "abc"])
def test_keyring_truncated_or_garbled_body_raises_permanent_error(
    keyring: Keyring, body: str
) -> None:
    with pytest.raises(PermanentError):
        keyring.decrypt(f"v1.{keyring.current.kid}.{body}")


def test_keyring_after_rotation_reads_old_and_new_values() -> None:
    old_secret, new_secret = generate_key(), generate_key()
    old = Keyring(old_secret)
    sealed_before = old.encrypt("kept")
    rotated = Keyring(new_secret, [old_secret])

    assert rotated.decrypt(sealed_before) == "kept"
    assert not rotated.is_current(sealed_before)
    assert rotated.is_current(rotated.encrypt("x"))
    with pytest.raises(UnknownKey):
        old.decrypt(rotated.encrypt("x"))


def test_master_key_short_secret_is_refused() -> None:
    with pytest.raises(PermanentError, match="at least"):
        MasterKey("too-short")


def test_generate_key_is_long_enough_and_random() -> None:
    first, second = generate_key(), generate_key()
    assert first != second
    assert len(first) >= 32
    MasterKey(first)


def test_name_hash_ignores_case_and_surrounding_space(keyring: Keyring) -> None:
    assert keyring.name_hash("Billing Service") == keyring.name_hash(" billing service ")
    assert keyring.name_hash("Billing Service") != keyring.name_hash("Billing-Service")
    assert normalize_name("  My App ") == "my app"


def test_name_hash_folds_compatibility_look_alikes(keyring: Keyring) -> None:
    assert keyring.name_hash("\uff57\uff45\uff42") == keyring.name_hash("Web")
    assert keyring.name_hash("\ufb01le\u00a0share") == keyring.name_hash("file share")


def test_name_hash_depends_on_the_key() -> None:
    assert Keyring(generate_key()).name_hash("app") != Keyring(generate_key()).name_hash("app")


def test_name_hash_does_not_reveal_the_name(keyring: Keyring) -> None:
    digest = keyring.name_hash("billing")
    assert "billing" not in digest
    assert len(digest) == 64
