"""`ferry keys rotate` refuses while the stack runs; it must still decide when local.json is
missing or unreadable (an older Ferry wrote it in place, and a crash could leave it empty)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from ferry.local.keys import stack_is_running


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_no_stack_is_running_without_a_readable_local_json(tmp_path: Path) -> None:
    assert not stack_is_running(tmp_path)
    (tmp_path / "local.json").write_text("")
    assert not stack_is_running(tmp_path)
    (tmp_path / "local.json").write_text('["not", "an", "object"]')
    assert not stack_is_running(tmp_path)


def test_no_stack_is_running_where_nothing_answers(tmp_path: Path) -> None:
    api_url = f"http://127.0.0.1:{_closed_port()}"
    (tmp_path / "local.json").write_text(json.dumps({"api_url": api_url, "token": "t"}))
    assert not stack_is_running(tmp_path)
