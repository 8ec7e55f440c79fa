"""API tokens for people and scripts (stored hashed)."""

from __future__ import annotations

from ferry.domain.models import new_id, utcnow
from ferry.errors import NotFound, Unauthorized
from ferry.security.tokens import issue_token, parse_token, secret_matches
from ferry.store.errors import translated
from ferry.store.tables import ApiTokenRow


def create_api_token(name: str) -> str:
    """Mint and store an API token; returns its value (the only time it is shown)."""
    token_id = new_id("tok")
    token = issue_token(token_id)
    row = ApiTokenRow(id=token_id, name=name, token_hash=token.secret_hash, created_at=utcnow())
    with translated(f"api token {token_id}"):
        row.save(condition=ApiTokenRow.id.does_not_exist())
    return token.value


def api_token_is_valid(token_value: str) -> bool:
    """Whether the presented bearer value is a live API token."""
    try:
        authenticate_api_token(token_value)
    except Unauthorized:
        return False
    return True


def authenticate_api_token(token_value: str) -> str:
    """The name of the API token presented; Unauthorized for anything else."""
    presented = parse_token(token_value)
    if presented is None:
        raise Unauthorized("invalid API token")
    try:
        with translated(f"api token {presented.record_id}"):
            row = ApiTokenRow.get(presented.record_id)
    except NotFound:
        raise Unauthorized("invalid API token") from None
    if not secret_matches(presented.secret, row.token_hash):
        raise Unauthorized("invalid API token")
    return str(row.name)
