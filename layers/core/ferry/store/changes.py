"""The change feed: one numbered row per change, read by Server-Sent Events clients.

Numbers come from an atomic counter, so `Last-Event-ID` resumes exactly where a client left off.
A number is taken before its row is written, so rows can land out of number order: readers go
through `change_reader.ChangeReader`, which waits for them. Rows expire after a day (TTL); a
client further behind starts again from the current state.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel

from ferry.domain.models import utcnow
from ferry.store.errors import translated
from ferry.store.tables import ChangeRow, CounterRow

FEED = "changes"
_COUNTER = "feed#changes"
RETENTION = timedelta(days=1)


class Change(BaseModel):
    seq: int
    path: str
    kind: str
    ok: bool = True
    detail: str | None = None
    # When its number was taken (None on the state machines' own announcements).
    at: datetime | None = None


def record_change(path: str, kind: str, *, ok: bool = True, detail: str | None = None) -> int:
    """Append a change naming the resource path (/api/v1/applications/app_1); returns its number."""
    row = change_row(path, kind, ok=ok, detail=detail)
    with translated("change feed"):
        row.save()
    return int(row.seq)


def change_row(path: str, kind: str, *, ok: bool = True, detail: str | None = None) -> ChangeRow:
    """The next change of the feed, numbered (the counter is taken now), not yet written: for
    writing it in one transaction with what it announces."""
    counter = CounterRow(id=_COUNTER)
    with translated("change feed"):
        counter.update(actions=[CounterRow.value.add(1)])
    now = utcnow()
    return ChangeRow(
        feed=FEED,
        seq=int(counter.value),
        path=path,
        kind=kind,
        ok=ok,
        detail=detail,
        at=now,
        expires_at=now + RETENTION,
    )


def change_rows(paths: list[str], kind: str) -> list[ChangeRow]:
    """The next changes of the feed, one per path, numbered with one take of the counter, not
    yet written (for writing them in one batch with what they announce)."""
    if not paths:
        return []
    counter = CounterRow(id=_COUNTER)
    with translated("change feed"):
        counter.update(actions=[CounterRow.value.add(len(paths))])
    first, now = int(counter.value) - len(paths) + 1, utcnow()
    return [
        ChangeRow(
            feed=FEED,
            seq=first + offset,
            path=path,
            kind=kind,
            ok=True,
            at=now,
            expires_at=now + RETENTION,
        )
        for offset, path in enumerate(paths)
    ]


def latest_change() -> int:
    """The newest change's number (0 when there was none)."""
    with translated("change feed"):
        try:
            return int(CounterRow.get(_COUNTER, consistent_read=True).value)
        except CounterRow.DoesNotExist:
            return 0


def changes_after(seq: int, limit: int = 100) -> list[Change]:
    """Changes numbered above `seq`, oldest first."""
    with translated("change feed"):
        rows = ChangeRow.query(FEED, ChangeRow.seq > seq, limit=limit, consistent_read=True)
        return [
            Change(
                seq=int(r.seq), path=r.path, kind=r.kind, ok=bool(r.ok), detail=r.detail, at=r.at
            )
            for r in rows
        ]
