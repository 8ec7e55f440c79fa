"""compose_project_name: how an application's name becomes its compose project on the agent."""

from __future__ import annotations

import pytest

from ferry.domain.naming import compose_project_name
from ferry.errors import InvalidInput


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("My App", "my-app"),
        ("hello", "hello"),
        ("UPPER_case_99", "upper_case_99"),
        ("web--api", "web-api"),
        ("a - b", "a-b"),
        ("a!!!b", "a-b"),
        ("_-x", "x"),
        ("-_-x", "x"),
        ("__x", "x"),
        ("--x", "x"),
        ("x-", "x"),
        ("x!?", "x"),
        ("shop.example.com", "shop-example-com"),
        ("Café Crème", "caf-cr-me"),
        ("日本 app", "app"),
        ("a_b", "a_b"),
        ("x_", "x_"),
    ],
)
def test_compose_project_name_various_names_normalized(name: str, expected: str) -> None:
    assert compose_project_name(name) == expected


def test_compose_project_name_result_only_allowed_characters_and_no_dash_runs() -> None:
    project = compose_project_name("  ~~Über//Cool   App (v2)!!  ")
    assert project == "ber-cool-app-v2"
    assert set(project) <= set("abcdefghijklmnopqrstuvwxyz0123456789_-")
    assert "--" not in project


def test_compose_project_name_already_normal_unchanged() -> None:
    assert compose_project_name(compose_project_name("My App")) == "my-app"


@pytest.mark.parametrize("name", ["", " ", "!!!", "---", "___", "_-_", "日本", "..."])
def test_compose_project_name_no_letters_or_digits_raises_invalid_input(name: str) -> None:
    with pytest.raises(InvalidInput, match="compose project"):
        compose_project_name(name)
