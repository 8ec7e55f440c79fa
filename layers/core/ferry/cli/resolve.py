"""Commands take an id or a name: find the one record it means."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ferry.cli.client import ApiClient, CliError


@dataclass(frozen=True)
class Kind:
    noun: str
    collection: str  # the list endpoint, e.g. /applications
    id_prefix: str  # ids look like app_3f9c2a1b7d4e5f60
    label: str  # the field people call it by (repositories have no name: their URL)


APPLICATION = Kind("application", "/applications", "app_", "name")
AGENT = Kind("agent", "/agents", "agt_", "name")
NOTIFICATION = Kind("notification target", "/notifications", "ntf_", "name")
REPOSITORY = Kind("repository", "/repositories", "repo_", "url")


def _normalized(value: str) -> str:
    # How the API decides that two names are the same (its name index).
    return value.strip().lower()


def resolve(client: ApiClient, kind: Kind, reference: str) -> dict[str, Any]:
    """The record whose id is `reference`, else the one whose name (for repositories: URL) is
    exactly it, else the one whose name matches ignoring case and surrounding spaces.

    CliError when nothing matches, or when several do (listing their ids).
    """
    if reference.startswith(kind.id_prefix):
        try:
            return dict(client.get(f"{kind.collection}/{reference}"))
        except CliError as exc:
            if exc.status != 404:
                raise
            not_found: CliError | None = exc
    else:
        not_found = None
    records: list[dict[str, Any]] = client.get(kind.collection)
    for matches in (
        [r for r in records if r["id"] == reference],
        [r for r in records if r.get(kind.label) == reference],
        [r for r in records if _normalized(str(r.get(kind.label))) == _normalized(reference)],
    ):
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            choices = ", ".join(_describe(kind, m) for m in matches)
            raise CliError(
                f"{kind.noun} {kind.label} {reference!r} is ambiguous: {choices}; use an id"
            )
    if not_found is not None:
        raise not_found
    raise CliError(f"no {kind.noun} with id or {kind.label} {reference!r}", status=404)


def _describe(kind: Kind, record: dict[str, Any]) -> str:
    if kind is APPLICATION:
        return f"{record['id']} (agent {record['agent_id']})"
    return str(record["id"])
