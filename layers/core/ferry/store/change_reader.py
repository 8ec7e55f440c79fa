"""Reading the change feed in number order, though its rows are not written in that order.

A change's number is taken from the feed's counter before its row is written (in one transaction
with what the change announces). Two writers can therefore land their rows in the opposite order
of their numbers, and a reader that moved past the higher number as soon as it saw it would never
deliver the lower one: the resource it names would look unchanged to every open stream. A number
can also never be written at all, when the write that took it failed.

So a reader delivers changes in number order and stops at a missing number until its row arrives
or the number is settled: taken more than `GRACE` ago, long past the few milliseconds between
taking a number and writing its row. A number is taken before every higher one, so a row above
the gap that was numbered more than `GRACE` ago settles it. Rows that do not say when they were
numbered (the state machines' own announcements) leave it to the reader's clock: `GRACE` after
the reader first saw the number missing. A number that is never written therefore holds back
the changes after it by `GRACE` at most, once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from itertools import chain

from ferry.domain.models import utcnow
from ferry.store.changes import Change, changes_after, latest_change

GRACE = timedelta(seconds=5)
# Numbers below the newest one that a reader starting at the current state looks back over for
# rows still being written: far more writers than ever take numbers at the same moment.
START_WINDOW = 100
READ_LIMIT = 100


class ChangeReader:
    """Changes after `after`, in number order (`poll`); `position` is the number of the last one
    delivered or skipped, which is where a reconnecting client resumes."""

    def __init__(
        self,
        after: int,
        *,
        already_current: Iterable[int] = (),
        read: Callable[[int, int], list[Change]] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.position = after
        # Numbers above `position` whose rows were written before the reader started: part of
        # the state a client loads, so passed over, not delivered.
        self._current = {n for n in already_current if n > after}
        self._held: dict[int, Change] = {}
        # Runs of missing numbers as first seen: (first, first known above it, monotonic time).
        self._gaps: list[tuple[int, int, float]] = []
        self._read = read or _read_changes
        self._monotonic = monotonic
        self._now = now

    @classmethod
    def at_current_state(
        cls,
        *,
        read: Callable[[int, int], list[Change]] | None = None,
        newest_number: Callable[[], int] = latest_change,
        monotonic: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = utcnow,
    ) -> ChangeReader:
        """A reader of the changes after the current state: after the newest number taken, but
        not past a recent number whose row is still being written (what it announces is not yet
        in what the client loads)."""
        newest = newest_number()
        low = max(newest - START_WINDOW, 0)
        rows = [c for c in (read or _read_changes)(low, START_WINDOW) if c.seq <= newest]
        cutoff = now() - GRACE
        settled_up_to = max((c.seq for c in rows if c.at and c.at <= cutoff), default=low)
        written = {c.seq for c in rows}
        pending = [n for n in range(settled_up_to + 1, newest + 1) if n not in written]
        # No row in the window at all: they expired, nothing recent is being written.
        after = min(pending) - 1 if rows and pending else newest
        return cls(after, already_current=written, read=read, monotonic=monotonic, now=now)

    def poll(self) -> list[Change]:
        """The changes that can be delivered now, oldest first."""
        for change in self._read(self.position, READ_LIMIT):
            if change.seq not in self._current:
                self._held.setdefault(change.seq, change)
        delivered: list[Change] = []
        while self._held or self._current:
            following = self.position + 1
            if following in self._held:
                delivered.append(self._held.pop(following))
                self.position = following
            elif following in self._current:
                self._current.discard(following)
                self.position = following
            else:
                known = min(chain(self._held, self._current))  # the lowest number read above
                if not self._gap_settled(following, known):
                    break
                self.position = known - 1
        self._gaps = [gap for gap in self._gaps if gap[1] > self.position + 1]
        return delivered

    def _gap_settled(self, first: int, end: int) -> bool:
        """Whether the missing numbers `first` to `end - 1` can no longer be written."""
        cutoff = self._now() - GRACE
        if any(c.at and c.at <= cutoff for c in self._held.values()):
            return True  # every one was taken before a change numbered more than GRACE ago
        seen = [since for low, high, since in self._gaps if low <= first < high]
        if not seen:
            self._gaps.append((first, end, self._monotonic()))
            return False
        return self._monotonic() - min(seen) >= GRACE.total_seconds()


def _read_changes(after: int, limit: int) -> list[Change]:
    return changes_after(after, limit=limit)
