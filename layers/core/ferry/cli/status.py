"""`ferry status`: one table of every application and how its deploy stands."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.table import Table

from ferry.cli.client import ApiClient
from ferry.cli.output import JsonOption, cell, print_json, session, short, show, table


@dataclass
class Overview:
    """Applications with the repositories and agents they refer to, by id."""

    applications: dict[str, dict[str, Any]] = field(default_factory=dict)
    repositories: dict[str, dict[str, Any]] = field(default_factory=dict)
    agents: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def fetch(cls, client: ApiClient) -> Overview:
        return cls(
            applications={a["id"]: a for a in client.get("/applications")},
            repositories={r["id"]: r for r in client.get("/repositories")},
            agents={a["id"]: a for a in client.get("/agents")},
        )

    def table(self, title: str | None = "Applications", *, compact: bool = False) -> Table:
        """The status table; `compact` keeps each application on one line (for live views)."""
        result = table(
            "name", "repository", "agent", "branch", "commit", "sync", "health", "last error",
            title=title,
            no_wrap=("name", "commit"),
        )  # fmt: skip
        if compact:
            # Short columns keep their width; the long ones give way and end in an ellipsis.
            for column in result.columns:
                column.no_wrap = column.header not in ("repository", "last error")
        for a in sorted(self.applications.values(), key=lambda a: (a["name"].lower(), a["id"])):
            repository = self.repositories.get(a["repository_id"], {})
            url = cell(repository.get("url", a["repository_id"]))
            error = cell(a["last_sync_error"], "red")
            if compact:
                for text in (url, error):
                    text.no_wrap, text.overflow = True, "ellipsis"
            result.add_row(
                cell(a["name"]),
                url,
                cell(self.agents.get(a["agent_id"], {}).get("name", a["agent_id"])),
                cell(a["branch"]),
                cell(short(a["commit"])),
                cell(a["sync_status"]),
                cell(a["health_status"]),
                error,
            )
        return result


def status(as_json: JsonOption = False) -> None:
    """Every application: repository, agent, branch, commit, sync and health status, last error."""
    with session() as client:
        if as_json:
            print_json(client.get("/applications"))
            return
        overview = Overview.fetch(client)
    show(overview.table())
