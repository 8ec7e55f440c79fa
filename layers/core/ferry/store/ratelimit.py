"""Fixed-window rate limits kept in DynamoDB, so every Lambda container shares one count."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from ferry.errors import RateLimited
from ferry.store.errors import translated
from ferry.store.tables import CounterRow


def check_rate(key: str, limit: int, *, what: str, window_seconds: int = 60) -> None:
    """Count one event under `key`; RateLimited (with Retry-After) past `limit` per window.

    `what` words the limit in the error ("failed authentications from 192.0.2.1"). Keys of
    different kinds of events never share a count: whoever can cause one kind (refused
    deliveries) cannot use up another (accepted ones).
    """
    now = time.time()
    window = int(now // window_seconds)
    counter = CounterRow(id=f"rate#{key}#{window}")
    expires = datetime.fromtimestamp((window + 2) * window_seconds, UTC)
    with translated("rate limit"):
        counter.update(actions=[CounterRow.value.add(1), CounterRow.expires_at.set(expires)])
    if int(counter.value) > limit:
        retry_after = max(1, int((window + 1) * window_seconds - now) + 1)
        raise RateLimited(
            f"more than {limit} {what} a minute; retry in {retry_after} s",
            retry_after=retry_after,
        )
