"""Which branch a generic webhook delivery names (`ref` or `branch`)."""

from __future__ import annotations

import pytest

from ferry.errors import InvalidInput
from ferry.webhooks import _branch_from


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"ref": "refs/heads/main"}, "main"),
        ({"ref": "refs/heads/feature/login"}, "feature/login"),
        ({"ref": "  refs/heads/main\n"}, "main"),
        ({"branch": "main"}, "main"),
        ({"branch": "release/1.0"}, "release/1.0"),
        ({"ref": "main"}, "main"),
        ({"branch": "refs/heads/dev"}, "dev"),
        ({"ref": "refs/heads/main", "branch": "other"}, "main"),
    ],
)
def test_branch_from_branch_ref_or_name_returns_branch(
    payload: dict[str, object], expected: str
) -> None:
    assert _branch_from(payload) == expected


@pytest.mark.parametrize(
    "payload",
    [{"ref": "refs/tags/v1.0.0"}, {"ref": "refs/pull/7/head"}, {"branch": "refs/remotes/o/main"}],
)
def test_branch_from_ref_outside_heads_raises_invalid_input(payload: dict[str, object]) -> None:
    with pytest.raises(InvalidInput, match="not a branch"):
        _branch_from(payload)


@pytest.mark.parametrize(
    "payload", [{"ref": ""}, {"ref": "   "}, {"branch": ""}, {"ref": 7}, {"branch": ["main"]}]
)
def test_branch_from_empty_or_not_string_raises_invalid_input(payload: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        _branch_from(payload)


def test_branch_from_heads_prefix_without_name_raises_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        _branch_from({"ref": "refs/heads/"})


def test_branch_from_neither_ref_nor_branch_returns_none() -> None:
    assert _branch_from({}) is None
    assert _branch_from({"commit": "0" * 40}) is None
