"""The local stack's private files (local.json, agent.token, secret.key, ...) are replaced whole.

CI once failed reading local.json while a restarted `ferry up` was rewriting it: the file was
truncated before it was written again, so a reader (the CLI, the agent, a test) found it empty.
A crash at that moment would have left it empty for good, and for secret.key that loses every
encrypted value.
"""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest

from ferry.local.private_files import write_private


def test_a_reader_never_sees_a_private_file_empty_half_written_or_open_to_others(
    tmp_path: Path,
) -> None:
    path = tmp_path / "local.json"
    contents = [f'{{"token": "{str(n) * 4000}"}}' for n in range(10)]
    write_private(path, contents[0])
    seen_wrong: list[str] = []
    stop = threading.Event()

    def read_while_written() -> None:
        while not stop.is_set():
            text = path.read_text()
            mode = stat.S_IMODE(path.stat().st_mode)
            if text not in contents:
                seen_wrong.append(f"content of {len(text)} characters")
            if mode != 0o600:
                seen_wrong.append(f"mode {oct(mode)}")

    reader = threading.Thread(target=read_while_written)
    reader.start()
    try:
        for round_number in range(200):
            write_private(path, contents[round_number % len(contents)])
    finally:
        stop.set()
        reader.join()
    assert seen_wrong == []


def test_a_write_that_fails_keeps_the_previous_content_and_leaves_nothing_behind(
    tmp_path: Path,
) -> None:
    path = tmp_path / "secret.key"
    write_private(path, "the key")
    with pytest.raises(UnicodeEncodeError):
        write_private(path, "half \udc80 a key")  # fails while writing
    assert path.read_text() == "the key"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret.key"]


def test_a_new_private_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "agent.token"
    write_private(path, "token")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == "token"
