"""The outbound SSRF rules: which addresses are public, what the allow-list lets through, which
schemes are spoken. No network: names are resolved by a stand-in for socket.getaddrinfo."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable

import httpx
import pytest

from ferry.errors import InvalidInput
from ferry.outbound.http import (
    AllowList,
    DestinationRefused,
    check_destination,
    check_literal_destination,
    check_scheme,
    classify_address,
    default_allow_list,
    literal_address,
    resolve_allow_list,
    safe_client,
)

AddrInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[str, int]]


def fake_resolver(answers: dict[str, list[str]]) -> Callable[..., list[AddrInfo]]:
    """A getaddrinfo that knows only `answers` (name -> addresses, in order)."""

    def getaddrinfo(host: str, port: int, *args: object, **kwargs: object) -> list[AddrInfo]:
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, f"unknown name {host}")
        return [
            (
                socket.AF_INET6 if ":" in address else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (address, port),
            )
            for address in answers[host]
        ]

    return getaddrinfo


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.254", "private"),
        ("192.168.1.1", "private"),
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("169.254.1.1", "link-local"),
        ("169.254.169.254", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("fc00::1", "unique local"),
        ("fd12:3456::1", "unique local"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:169.254.169.254", "cloud metadata"),
        ("64:ff9b::7f00:1", "loopback"),
        ("2002:c0a8:101::1", "private"),
        ("100.64.0.1", "shared address space"),
        ("100.100.100.200", "shared address space"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("192.0.2.10", "not globally routable"),
        ("198.18.0.1", "not globally routable"),
        ("fec0::1", "site-local"),
    ],
)
def test_classify_address_non_public_returns_kind(address: str, kind: str) -> None:
    assert classify_address(address) == kind


@pytest.mark.parametrize(
    "address",
    ["93.184.216.34", "1.1.1.1", "8.8.8.8", "2606:4700:4700::1111", "::ffff:1.1.1.1"],
)
def test_classify_address_public_returns_none(address: str) -> None:
    assert classify_address(address) is None


def test_classify_address_ip_object_same_as_text() -> None:
    assert classify_address(ipaddress.ip_address("10.0.0.1")) == "private"


@pytest.mark.parametrize(
    ("entries", "address", "allowed"),
    [
        (["127.0.0.0/8"], "127.0.0.1", True),
        (["127.0.0.0/8"], "127.255.0.9", True),
        (["127.0.0.1/32"], "127.0.0.2", False),
        (["127.0.0.1"], "127.0.0.1", True),
        (["127.0.0.0/8"], "::1", False),
        (["::1"], "::1", True),
        (["[::1]"], "::1", True),
        (["127.0.0.0/8"], "::ffff:127.0.0.1", True),
        (["10.0.0.0/8"], "192.168.0.1", False),
        (["fd00::/8"], "fd00::5", True),
        ([], "127.0.0.1", False),
    ],
)
def test_allow_list_address_in_network_allowed(
    entries: list[str], address: str, allowed: bool
) -> None:
    assert AllowList.parse(entries).allows_address(ipaddress.ip_address(address)) is allowed


def test_allow_list_host_entry_matches_name_case_insensitively() -> None:
    allow = AllowList.parse(["Gitea.LAN.", " localhost "])
    assert allow.allows_host("gitea.lan")
    assert allow.allows_host("GITEA.lan.")
    assert allow.allows_host("localhost")
    assert not allow.allows_host("evil.gitea.lan")


def test_allow_list_parse_blank_entries_skipped() -> None:
    assert AllowList.parse(["", "  ", "10.0.0.0/8"]) == AllowList.parse(["10.0.0.0/8"])


@pytest.mark.parametrize("entry", ["http://host/", "not a host", "10.0.0.0/33", "-bad-.lan"])
def test_allow_list_parse_garbage_raises_invalid_input(entry: str) -> None:
    with pytest.raises(InvalidInput, match="neither a network nor a host name"):
        AllowList.parse([entry])


def test_default_allow_list_reads_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FERRY_OUTBOUND_ALLOW", "127.0.0.0/8, gitea.lan")
    allow = default_allow_list()
    assert allow.allows_address(ipaddress.ip_address("127.0.0.1"))
    assert allow.allows_host("gitea.lan")


def test_default_allow_list_unset_allows_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FERRY_OUTBOUND_ALLOW", raising=False)
    assert default_allow_list() == AllowList()


def test_resolve_allow_list_none_uses_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FERRY_OUTBOUND_ALLOW", "10.0.0.0/8")
    assert resolve_allow_list(None) == AllowList.parse(["10.0.0.0/8"])
    assert resolve_allow_list("127.0.0.1,::1") == AllowList.parse(["127.0.0.1", "::1"])


@pytest.mark.parametrize("scheme", ["ftp", "file", "gopher", "dict", ""])
def test_check_scheme_not_http_raises_destination_refused(scheme: str) -> None:
    with pytest.raises(DestinationRefused, match="only http and https"):
        check_scheme(scheme, "example.com")


def test_check_scheme_http_and_https_accepted() -> None:
    check_scheme("http", "example.com")
    check_scheme("HTTPS", "example.com")


def test_safe_client_file_url_raises_destination_refused() -> None:
    with safe_client(allow=[]) as client, pytest.raises(DestinationRefused):
        client.get("ftp://example.com/file")


def test_check_destination_literal_loopback_refused_with_reason() -> None:
    with pytest.raises(DestinationRefused) as caught:
        check_destination("127.0.0.1", 80, AllowList())
    assert str(caught.value) == (
        "refusing 127.0.0.1 (loopback): not a public address and not in the outbound allow-list"
    )
    assert isinstance(caught.value, InvalidInput)


def test_check_destination_bracketed_ipv6_literal_refused() -> None:
    with pytest.raises(DestinationRefused, match=r"refusing ::1 \(loopback\)"):
        check_destination("[::1]", 80, AllowList())


def test_check_destination_literal_public_returned_without_lookup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", fake_resolver({}))
    assert check_destination("1.1.1.1", 443, AllowList()) == [ipaddress.ip_address("1.1.1.1")]


def test_check_destination_name_resolving_to_metadata_refused_naming_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", fake_resolver({"evil.test": ["169.254.169.254"]}))
    with pytest.raises(DestinationRefused) as caught:
        check_destination("evil.test", 80, AllowList())
    assert "169.254.169.254 (cloud metadata) for evil.test" in str(caught.value)


def test_check_destination_any_private_answer_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        socket, "getaddrinfo", fake_resolver({"mixed.test": ["1.1.1.1", "10.0.0.7"]})
    )
    with pytest.raises(DestinationRefused, match=r"10\.0\.0\.7 \(private\) for mixed.test"):
        check_destination("mixed.test", 443, AllowList())


def test_check_destination_public_name_returns_all_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        fake_resolver({"ok.test": ["1.1.1.1", "2606:4700:4700::1111", "1.1.1.1"]}),
    )
    assert check_destination("OK.test.", 443, AllowList()) == [
        ipaddress.ip_address("1.1.1.1"),
        ipaddress.ip_address("2606:4700:4700::1111"),
    ]


def test_check_destination_allowed_host_name_passes_private_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", fake_resolver({"gitea.lan": ["10.0.0.7"]}))
    allow = AllowList.parse(["gitea.lan"])
    assert check_destination("gitea.lan", 3000, allow) == [ipaddress.ip_address("10.0.0.7")]


def test_check_destination_allowed_network_passes_only_its_addresses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", fake_resolver({"localhost": ["::1", "127.0.0.1"]}))
    with pytest.raises(DestinationRefused, match=r"::1 \(loopback\) for localhost"):
        check_destination("localhost", 80, AllowList.parse(["127.0.0.0/8"]))
    assert check_destination("localhost", 80, AllowList.parse(["127.0.0.0/8", "::1"])) == [
        ipaddress.ip_address("::1"),
        ipaddress.ip_address("127.0.0.1"),
    ]


def test_check_destination_unknown_name_raises_gaierror(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", fake_resolver({}))
    with pytest.raises(socket.gaierror):
        check_destination("nowhere.test", 80, AllowList())


def test_check_destination_empty_host_refused() -> None:
    with pytest.raises(DestinationRefused, match="without a host"):
        check_destination("", 80, AllowList())


def test_safe_client_defaults_time_out_and_ignore_env_proxies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    with safe_client(allow=[]) as client:
        assert client.timeout == httpx.Timeout(10.0)
        assert client.follow_redirects
        assert client.max_redirects == 5
        assert not client.trust_env


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("169.254.169.254", "169.254.169.254"),
        ("0251.0376.0251.0376", "169.254.169.254"),  # octal, as inet_aton reads it
        ("0xa9fea9fe", "169.254.169.254"),
        ("2852039166", "169.254.169.254"),
        ("[::ffff:169.254.169.254]", "::ffff:a9fe:a9fe"),
        ("127.1", "127.0.0.1"),
    ],
)
def test_literal_address_numeric_forms_read_as_the_resolver_would(host: str, address: str) -> None:
    assert str(literal_address(host)) == address


@pytest.mark.parametrize("host", ["example.com", "deadbeef.com", "git.internal", ""])
def test_literal_address_names_none(host: str) -> None:
    assert literal_address(host) is None


@pytest.mark.parametrize(
    "host", ["0251.0376.0251.0376", "[::ffff:169.254.169.254]", "10.0.0.1", "127.1"]
)
def test_check_literal_destination_forbidden_forms_refused(host: str) -> None:
    with pytest.raises(DestinationRefused, match="not a public address"):
        check_literal_destination(host, allow=[])


def test_check_literal_destination_names_and_public_addresses_pass() -> None:
    check_literal_destination("github.com", allow=[])
    check_literal_destination("140.82.112.3", allow=[])
    check_literal_destination("127.0.0.1", allow=["127.0.0.0/8"])
