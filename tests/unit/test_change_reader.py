"""The change feed's reader: number order although rows land out of it (store/change_reader.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ferry.store.change_reader import GRACE, ChangeReader
from ferry.store.changes import Change

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class Feed:
    """Rows as the store holds them, and the reader's two clocks."""

    def __init__(self) -> None:
        self.rows: dict[int, Change] = {}
        self.seconds = 0.0

    def write(self, seq: int, *, numbered_ago: timedelta | None = timedelta(0)) -> None:
        at = None if numbered_ago is None else NOW + timedelta(seconds=self.seconds) - numbered_ago
        self.rows[seq] = Change(seq=seq, path=f"/api/v1/things/{seq}", kind="test", at=at)

    def read(self, after: int, limit: int) -> list[Change]:
        return [self.rows[n] for n in sorted(self.rows) if n > after][:limit]

    def reader(self, after: int) -> ChangeReader:
        return ChangeReader(after, read=self.read, monotonic=self.monotonic, now=self.now)

    def at_current_state(self, newest: int) -> ChangeReader:
        return ChangeReader.at_current_state(
            read=self.read, newest_number=lambda: newest, monotonic=self.monotonic, now=self.now
        )

    def monotonic(self) -> float:
        return self.seconds

    def now(self) -> datetime:
        return NOW + timedelta(seconds=self.seconds)


def numbers(changes: list[Change]) -> list[int]:
    return [c.seq for c in changes]


def test_changes_written_in_order_are_delivered_at_once() -> None:
    feed = Feed()
    reader = feed.reader(0)
    for n in (1, 2, 3):
        feed.write(n)
    assert numbers(reader.poll()) == [1, 2, 3]
    assert reader.position == 3
    assert reader.poll() == []


def test_a_lower_number_written_after_a_higher_one_is_delivered_first() -> None:
    feed = Feed()
    reader = feed.reader(0)
    feed.write(1)
    feed.write(3)
    assert numbers(reader.poll()) == [1]  # 3 waits for 2, whose row is still being written
    assert reader.position == 1
    feed.seconds += 1
    feed.write(2)
    assert numbers(reader.poll()) == [2, 3]


def test_a_number_never_written_holds_back_what_follows_for_the_grace_only() -> None:
    feed = Feed()
    reader = feed.reader(0)
    feed.write(3, numbered_ago=None)  # the state machines' rows do not say when
    feed.write(4, numbered_ago=None)
    assert reader.poll() == []
    feed.seconds += GRACE.total_seconds() - 0.5
    assert reader.poll() == []
    feed.seconds += 0.5
    assert numbers(reader.poll()) == [3, 4]  # 1 and 2 settle together, after one grace
    assert reader.position == 4


def test_a_gap_below_a_change_numbered_longer_ago_than_the_grace_is_passed_at_once() -> None:
    feed = Feed()
    reader = feed.reader(0)
    feed.write(2, numbered_ago=GRACE + timedelta(seconds=1))
    assert numbers(reader.poll()) == [2]


def test_a_reader_far_behind_skips_expired_numbers_in_one_step() -> None:
    feed = Feed()
    for n in range(1_000_000, 1_000_005):
        feed.write(n, numbered_ago=timedelta(hours=20))
    assert numbers(feed.reader(7).poll()) == list(range(1_000_000, 1_000_005))


def test_starting_at_the_current_state_waits_for_a_recent_number_still_being_written() -> None:
    feed = Feed()
    feed.write(7, numbered_ago=timedelta(minutes=5))
    feed.write(8)
    feed.write(10)  # 9 was numbered between 8 and 10 and is not written yet
    reader = feed.at_current_state(newest=10)
    assert reader.poll() == []  # 8 and 10 are in what the client loads now
    feed.write(9)
    feed.write(11)
    assert numbers(reader.poll()) == [9, 11]
    assert reader.position == 11


def test_starting_at_the_current_state_passes_numbers_settled_long_ago() -> None:
    feed = Feed()
    # 3 and 4 were numbered before rows numbered minutes ago: expired, or never to be written.
    feed.write(5, numbered_ago=timedelta(minutes=6))
    feed.write(6, numbered_ago=timedelta(minutes=5))
    assert feed.at_current_state(newest=6).position == 6
    assert Feed().at_current_state(newest=40).position == 40  # nothing recent at all
