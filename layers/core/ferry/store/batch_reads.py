"""What a sync batch reads before it syncs, in one round trip: its repository (to open it), its
applications' rows (with their stored bundles and history numbers) and their agents' queues.

Read one table at a time this was three serial calls a batch (four with a second agent); on AWS
each is a network round trip on the path from a push to the agents' queues.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ferry.domain.models import Repository
from ferry.errors import NotFound
from ferry.store.applications import LoadedApplication, loaded_from_rows
from ferry.store.errors import translated
from ferry.store.repositories import repository_from_row
from ferry.store.tables import AgentRow, ApplicationRow, RepositoryRow, batch_get


@dataclass(frozen=True)
class BatchReads:
    repository: Repository
    applications: dict[str, LoadedApplication]  # by id; those that are gone are missing
    queue_urls: dict[str, str]  # agent id → its queue; agents that are gone are missing


def read_batch(
    repository_id: str, application_ids: Sequence[str], agent_ids: Sequence[str] = ()
) -> BatchReads:
    """The batch's rows in one consistent read (NotFound when the repository is gone)."""
    with translated(f"sync batch of repository {repository_id}"):
        rows = batch_get(
            [
                (RepositoryRow, repository_id),
                *((ApplicationRow, application_id) for application_id in application_ids),
                *((AgentRow, agent_id) for agent_id in agent_ids),
            ]
        )
    repositories = [row for row in rows if isinstance(row, RepositoryRow)]
    if not repositories:
        raise NotFound(f"repository {repository_id} not found")
    return BatchReads(
        repository=repository_from_row(repositories[0]),
        applications=loaded_from_rows(row for row in rows if isinstance(row, ApplicationRow)),
        queue_urls={row.id: row.queue_url for row in rows if isinstance(row, AgentRow)},
    )
