"""What Ferry accepts as names, branch names and URLs (ferry/domain/validation.py)."""

from __future__ import annotations

import pytest

from ferry.domain.validation import (
    check_branch,
    check_id,
    check_no_url_credentials,
    check_url,
    clean_name,
    normalize_name,
    url_credentials,
    without_credentials,
)
from ferry.errors import InvalidInput


@pytest.mark.parametrize(
    "name",
    [
        "app\x00",
        "two\nlines",
        "app\x1b[31mred",
        "evil\u202eexe.txt",  # right-to-left override
        "zero\u200bwidth",
        "sep\u2028arator",
        "lone \udcff surrogate",
        "private \ue000 use",
        "x" * 101,
    ],
)
def test_clean_name_unprintable_or_too_long_is_refused(name: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        clean_name(name, "agent name")
    assert str(refused.value).startswith("agent name must")
    assert name not in str(refused.value)


def test_clean_name_names_the_offending_code_point_without_echoing_it() -> None:
    with pytest.raises(InvalidInput, match=r"U\+001B"):
        clean_name("app\x1b[31mred", "application name")


@pytest.mark.parametrize(
    "name", ["web", "Billing Service", "\uff57\uff45\uff42", "café-1", "日本", "x" * 100]
)
def test_clean_name_printable_text_is_kept_trimmed(name: str) -> None:
    assert clean_name(f"  {name} ", "name") == name


def test_clean_name_empty_is_refused() -> None:
    with pytest.raises(InvalidInput, match="must not be empty"):
        clean_name("   ", "name")


@pytest.mark.parametrize(
    ("one", "two"),
    [
        ("\uff57\uff45\uff42", "web"),
        ("Web", " web "),
        ("\ufb01le", "file"),
        ("a\u00a0b", "a b"),
        ("\u216b", "xii"),
    ],
)
def test_normalize_name_look_alikes_compare_equal(one: str, two: str) -> None:
    assert normalize_name(one) == normalize_name(two)


@pytest.mark.parametrize(
    "branch",
    [
        "--help",
        "-b",
        "main;rm -rf /",
        "../../",
        "main\x00",
        "a b",
        "main.lock",
        "feature/",
        "/main",
        "a..b",
        "ma@{in",
        "@",
        "HEAD",
        "x~1",
        "x^",
        "x:y",
        "x?",
        "x*",
        "x[",
        "x\\y",
        "a//b",
        ".hidden",
        "dir/.hidden",
        "trailing.",
        "del\x7f",
        "\u202emain",
        "b" * 256,
        "",
    ],
)
def test_check_branch_refuses_what_git_refuses(branch: str) -> None:
    with pytest.raises(InvalidInput):
        check_branch(branch)


@pytest.mark.parametrize("branch", ["main", "feature/x-1", "release/2024.05", "v1@x", "é", "a.b"])
def test_check_branch_accepts_git_branch_names(branch: str) -> None:
    assert check_branch(f" {branch} ") == branch


def test_check_url_too_long_or_unprintable_is_refused() -> None:
    with pytest.raises(InvalidInput, match="at most 2048"):
        check_url("https://example.com/" + "x" * 2048)
    with pytest.raises(InvalidInput, match="printable"):
        check_url("https://example.com/\udcff")
    with pytest.raises(InvalidInput, match="printable"):
        check_url("https://example.com/\nx")
    assert check_url(" file:///tmp/my repo ") == "file:///tmp/my repo"


@pytest.mark.parametrize(
    "url",
    [
        "https://oauth2:TOKEN@gitlab.example.com/x.git",
        "https://ghp_TOKEN@github.com/acme/app.git",
        "http://user:@host/x.git",
        "ssh://git:password@host/x.git",
        "https://pat-TOKEN@dev.azure.com/octo-org/p/_git/r",
    ],
)
def test_check_no_url_credentials_refuses_secrets_in_urls(url: str) -> None:
    with pytest.raises(InvalidInput, match="auth") as refused:
        check_no_url_credentials(url)
    assert "TOKEN" not in str(refused.value)


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/acme/app.git",
        "git@github.com:acme/app.git",
        "ssh://git@host:2222/x.git",
        "/srv/repos/app",
        "file:///srv/repos/app",
        "https://octo-org@dev.azure.com/octo-org/Deploy%20Config/_git/deploy-config",
    ],
)
def test_check_no_url_credentials_accepts_urls_without_secrets(url: str) -> None:
    check_no_url_credentials(url)


def test_url_credentials_and_without_credentials_split_the_user_info() -> None:
    url = "https://oauth2:s3cr3t@gitlab.example.com:8443/g/x.git"
    assert url_credentials(url) == ("oauth2", "s3cr3t")
    assert without_credentials(url) == "https://gitlab.example.com:8443/g/x.git"
    assert url_credentials("https://TOKEN@github.com/a/b") == ("TOKEN", None)
    assert without_credentials("ssh://git:pw@host/x.git") == "ssh://git@host/x.git"
    assert url_credentials("git@github.com:acme/app.git") == ("git", None)
    assert without_credentials("git@github.com:acme/app.git") == "git@github.com:acme/app.git"
    assert url_credentials("https://github.com/a/b") == (None, None)


@pytest.mark.parametrize("identifier", ["", " ", "app_1 ", "a/b", "\udcff", "x" * 65, "ápp"])
def test_check_id_refuses_what_names_no_record(identifier: str) -> None:
    with pytest.raises(InvalidInput, match="not an id"):
        check_id(identifier, "notification target id")


def test_check_id_accepts_ferry_ids() -> None:
    assert check_id("app_3f9c2a1b7d4e5f60", "application id") == "app_3f9c2a1b7d4e5f60"
