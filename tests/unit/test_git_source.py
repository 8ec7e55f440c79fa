"""Pure helpers of ferry.git.source (and ferry.git.open's URL check): paths inside a
repository, SHAs, and which URLs Ferry reads."""

from __future__ import annotations

import pytest

from ferry.domain.models import Provider
from ferry.errors import GitError, InvalidInput
from ferry.git.open import unsupported_reason
from ferry.git.source import (
    UnavailableSource,
    is_full_sha,
    local_path_of,
    normalize_repo_path,
)

SHA1 = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("compose.yaml", "compose.yaml"),
        ("apps/web/compose.yaml", "apps/web/compose.yaml"),
        ("./a/b", "a/b"),
        ("a//b", "a/b"),
        ("a/./b", "a/b"),
        ("  a/b  ", "a/b"),
        ("apps\\web\\compose.yaml", "apps/web/compose.yaml"),
    ],
)
def test_normalize_repo_path_relative_path_normalized(path: str, expected: str) -> None:
    assert normalize_repo_path(path) == expected


@pytest.mark.parametrize(
    "path",
    [
        "/etc/passwd",
        "\\etc\\passwd",
        "../compose.yaml",
        "a/../../b",
        "a/..",
        "..",
        "",
        "  ",
        ".",
        "./",
    ],
)
def test_normalize_repo_path_absolute_escaping_or_empty_raises_invalid_input(path: str) -> None:
    with pytest.raises(InvalidInput):
        normalize_repo_path(path)


@pytest.mark.parametrize("value", [SHA1, "a" * 64, "0" * 40])
def test_is_full_sha_full_lowercase_hex_true(value: str) -> None:
    assert is_full_sha(value)


@pytest.mark.parametrize(
    "value",
    ["", "abc1234", SHA1[:-1], SHA1 + "0", SHA1.upper(), "g" * 40, "a" * 63, "a" * 65, f" {SHA1}"],
)
def test_is_full_sha_short_uppercase_or_not_hex_false(value: str) -> None:
    assert not is_full_sha(value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/srv/git/app", "/srv/git/app"),
        ("file:///srv/git/app", "/srv/git/app"),
        ("file:///srv/git/my%20app", "/srv/git/my app"),
        ("https://github.com/acme/app.git", None),
        ("git@github.com:acme/app.git", None),
        ("relative/path", None),
    ],
)
def test_local_path_of_url_returns_path_or_none(url: str, expected: str | None) -> None:
    assert local_path_of(url) == expected


@pytest.mark.parametrize("url", ["/srv/git/app", "file:///srv/git/app"])
def test_unsupported_reason_local_git_none(url: str) -> None:
    assert unsupported_reason(url, Provider.GIT) is None


@pytest.mark.parametrize(
    ("url", "provider"),
    [
        ("https://github.com/acme/app.git", Provider.GIT),
        ("git@github.com:acme/app.git", Provider.GIT),
        ("ssh://git@git.example.com:2222/ops/app.git", Provider.GIT),
        ("https://github.com/acme/app", Provider.GITHUB),
        ("https://gitlab.example.com/group/sub/app", Provider.GITLAB),
        ("https://dev.azure.com/org/project/_git/app", Provider.AZURE_DEVOPS),
    ],
)
def test_unsupported_reason_remote_repository_none(url: str, provider: Provider) -> None:
    assert unsupported_reason(url, provider) is None


@pytest.mark.parametrize(
    ("url", "provider"),
    [
        ("ftp://example.com/app.git", Provider.GIT),
        ("https://github.com/onlyowner", Provider.GITHUB),
    ],
)
def test_unsupported_reason_unusable_url_explains(url: str, provider: Provider) -> None:
    assert unsupported_reason(url, provider)


def test_unavailable_source_every_operation_raises_git_error_with_reason() -> None:
    source = UnavailableSource("cannot read it")

    with pytest.raises(GitError, match="cannot read it"):
        source.latest_commit("main")
    with pytest.raises(GitError, match="cannot read it"):
        source.commit(SHA1)
    with pytest.raises(GitError, match="cannot read it"):
        source.read_file(SHA1, "compose.yaml")
