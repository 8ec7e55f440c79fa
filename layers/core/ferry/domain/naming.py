"""Compose project names: how an application's name becomes its project on the agent."""

from __future__ import annotations

import re

from ferry.errors import InvalidInput

_OUTSIDE_ALLOWED = re.compile(r"[^a-z0-9_]")
_DASH_RUNS = re.compile(r"-{2,}")


def compose_project_name(name: str) -> str:
    """Normalize an application name into a compose project name.

    Lowercase; every character outside [a-z0-9_] becomes `-`; runs of `-` collapse; `-` is trimmed
    at both ends and `_` at the start (compose rejects a leading `_`). "My App" → "my-app".
    An empty result is an error, because compose would then pick a name of its own.
    """
    project = _OUTSIDE_ALLOWED.sub("-", name.lower())
    # Leading `-` and `_` go together: trimming one can expose the other ("_-x").
    project = _DASH_RUNS.sub("-", project).lstrip("-_").rstrip("-")
    if not project:
        raise InvalidInput(
            f"application name {name!r} has no letters or digits to name a compose project"
        )
    return project
