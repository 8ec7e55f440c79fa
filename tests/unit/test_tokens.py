"""Bearer tokens `<record id>.<secret>`: minted, parsed, and checked against the stored hash."""

from __future__ import annotations

import pytest

from ferry.security.tokens import (
    hash_secret,
    issue_token,
    new_webhook_secret,
    parse_token,
    secret_matches,
)


def test_issue_token_record_id_value_parses_back_to_record_and_secret() -> None:
    issued = issue_token("agt_123")

    presented = parse_token(issued.value)

    assert presented is not None
    assert presented.record_id == "agt_123"
    assert issued.value == f"agt_123.{presented.secret}"
    assert secret_matches(presented.secret, issued.secret_hash)


def test_issue_token_stored_hash_does_not_contain_secret() -> None:
    issued = issue_token("tok_1")
    presented = parse_token(issued.value)
    assert presented is not None

    assert presented.secret not in issued.secret_hash
    assert issued.secret_hash == hash_secret(presented.secret)
    assert len(issued.secret_hash) == 64


def test_issue_token_twice_different_secrets() -> None:
    first, second = issue_token("tok_1"), issue_token("tok_1")

    assert first.value != second.value
    assert first.secret_hash != second.secret_hash


def test_secret_matches_wrong_secret_false() -> None:
    issued = issue_token("tok_1")
    other = parse_token(issue_token("tok_1").value)
    assert other is not None

    assert not secret_matches(other.secret, issued.secret_hash)
    assert not secret_matches("", issued.secret_hash)


def test_parse_token_surrounding_whitespace_stripped() -> None:
    presented = parse_token("  tok_1.s3cret\n")

    assert presented is not None
    assert (presented.record_id, presented.secret) == ("tok_1", "s3cret")


@pytest.mark.parametrize("value", ["", "   ", "nodot", ".secret", "record.", ".", " . "])
def test_parse_token_malformed_returns_none(value: str) -> None:
    assert parse_token(value) is None


def test_new_webhook_secret_random_and_long() -> None:
    first, second = new_webhook_secret(), new_webhook_secret()

    assert first != second
    assert len(first) >= 43
