"""The one way Ferry talks HTTP to URLs a user typed in (git providers, notification targets).

Such a URL is an SSRF vector: pointed at 127.0.0.1, 10.0.0.5 or 169.254.169.254 it would make the
control plane (or the Lambda it runs in) fetch its own metadata, databases or admin pages. So every
connection is checked on the *resolved* address, not on the name:

- the host is resolved once and refused if any answer is not a public address, unless an
  allow-list names the host or the address (the local stack allows loopback for its own sample
  repository);
- the socket is opened to that vetted address itself, so a DNS answer that changes between the
  check and the connect (rebinding) cannot slip a private address in, while TLS SNI, certificate
  checks and the Host header keep using the name;
- redirects are followed by httpx, and since every new connection goes through the same check,
  every hop is vetted; only http and https are spoken.

`check_destination` is the single place the decision is made; the notification sender
(ferry/outbound/notify.py) applies it to apprise's `requests` traffic as well.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from ferry.errors import InvalidInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_TIMEOUT_SECONDS = 10.0
DEFAULT_MAX_REDIRECTS = 5
DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024
ALLOWED_SCHEMES = frozenset({"http", "https"})

# Not covered by ipaddress' is_private: RFC 6598 space, which carrier-grade NAT and some clouds
# use for internal endpoints (Alibaba's metadata service lives at 100.100.100.200).
_SHARED_V4 = ipaddress.IPv4Network("100.64.0.0/10")
_RFC1918 = (
    ipaddress.IPv4Network("10.0.0.0/8"),
    ipaddress.IPv4Network("172.16.0.0/12"),
    ipaddress.IPv4Network("192.168.0.0/16"),
)
_UNIQUE_LOCAL_V6 = ipaddress.IPv6Network("fc00::/7")
# The well-known NAT64 prefix: a gateway translates it to the IPv4 address in the last 32 bits.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_METADATA = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")


class DestinationRefused(InvalidInput):
    """An outbound request was not sent: its destination is not a public http(s) address."""


class ResponseTooLarge(InvalidInput):
    """A remote answered with more bytes than the caller agreed to read."""


@dataclass(frozen=True)
class AllowList:
    """Destinations allowed despite not being public: networks (by resolved address) and host
    names (any address they resolve to)."""

    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowList:
        """Build an allow-list from CIDRs, single addresses and host names; blanks are skipped."""
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            host = normalize_host(entry)
            if not all(_HOST_LABEL.match(label) for label in host.split(".")):
                raise InvalidInput(
                    f"outbound allow-list entry {entry!r} is neither a network nor a host name"
                )
            hosts.add(host)
        return cls(networks=tuple(networks), hosts=frozenset(hosts))

    def allows_host(self, host: str) -> bool:
        """True when the host name itself is allowed, whatever it resolves to."""
        return normalize_host(host) in self.hosts

    def allows_address(self, address: IPAddress) -> bool:
        """True when the address, or the IPv4 address an IPv6 one wraps, is in an allowed
        network."""
        candidates: list[IPAddress] = [address]
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            candidates.append(embedded)
        return any(
            candidate.version == network.version and candidate in network
            for candidate in candidates
            for network in self.networks
        )


AllowSpec = AllowList | Iterable[str] | None


def default_allow_list() -> AllowList:
    """The process-wide allow-list: FERRY_OUTBOUND_ALLOW, comma-separated CIDRs and host names.

    It moves into Settings (ferry/settings.py) as `outbound_allow` later; it is read here only
    until then, and only in this function.
    """
    return AllowList.parse(os.environ.get("FERRY_OUTBOUND_ALLOW", "").split(","))


def resolve_allow_list(allow: AllowSpec) -> AllowList:
    """An explicit allow-list as given, entries parsed, or the process default for None."""
    if allow is None:
        return default_allow_list()
    if isinstance(allow, AllowList):
        return allow
    if isinstance(allow, str):
        return AllowList.parse(allow.split(","))
    return AllowList.parse(allow)


def normalize_host(host: str) -> str:
    """Lower-case, without IPv6 brackets or a trailing dot: the form names are compared in."""
    return host.strip().strip("[]").rstrip(".").lower()


def classify_address(address: IPAddress | str) -> str | None:
    """None for a public address; otherwise what it is ("loopback", "private", ...).

    `is_global` alone is not enough: it calls multicast addresses global, and it judges IPv4
    addresses wrapped in IPv6 (mapped, NAT64, 6to4) by the wrapper, not by where they lead.
    """
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        return classify_address(embedded)
    if ip in _METADATA:
        return "cloud metadata"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if isinstance(ip, ipaddress.IPv4Address):
        if ip in _SHARED_V4:
            return "shared address space"
        if any(ip in network for network in _RFC1918):
            return "private"
    else:
        if ip in _UNIQUE_LOCAL_V6:
            return "unique local"
        if ip.is_site_local:
            return "site-local"
    if ip.is_reserved:
        return "reserved"
    if not ip.is_global:
        return "not globally routable"
    return None


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address leads to (mapped, NAT64 or 6to4), if it wraps one."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def _parse_address(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def check_scheme(scheme: str, host: str) -> None:
    """Refuse anything but http and https (file:, gopher:, ftp: ... never leave Ferry)."""
    if scheme.lower() not in ALLOWED_SCHEMES:
        raise DestinationRefused(
            f"refusing {scheme or 'no'} scheme for {host or 'no host'}: "
            "only http and https are allowed"
        )


def literal_address(host: str) -> IPAddress | None:
    """The address a host names by itself, in any form a resolver accepts as a number
    (`169.254.169.254`, `0251.0376.0251.0376`, `0xa9fea9fe`, `2852039166`, `[::ffff:a9fe:a9fe]`),
    or None for a name."""
    name = normalize_host(host)
    literal = _parse_address(name)
    if literal is not None:
        return literal
    if not name or not all(c in "0123456789abcdefx." for c in name):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(name))
    except OSError:
        return None


def check_literal_destination(host: str, allow: AllowSpec = None) -> None:
    """Refuse (DestinationRefused) a host that is an address, written in any numeric form, which
    is not public and not allowed. Names are left to the connect-time check (what they resolve to
    may change): this is the check a URL can get before it is stored."""
    address = literal_address(host)
    if address is None:
        return
    allow_list = resolve_allow_list(allow)
    if allow_list.allows_host(normalize_host(host)) or allow_list.allows_address(address):
        return
    reason = classify_address(address)
    if reason is not None:
        raise DestinationRefused(
            f"refusing {host} ({address}, {reason}): not a public address and not in the "
            "outbound allow-list"
        )


def check_destination(host: str, port: int, allow: AllowSpec = None) -> list[IPAddress]:
    """Resolve `host` once and return the addresses it may be connected to, in resolver order.

    Raises DestinationRefused when any answer is not public and neither the host nor that address
    is allowed (one bad answer is enough: the client could pick it), and socket.gaierror when the
    name does not resolve. Callers must connect to the returned addresses, never to the name
    again, or a second lookup could answer differently.
    """
    allow_list = resolve_allow_list(allow)
    name = normalize_host(host)
    if not name:
        raise DestinationRefused("refusing a destination without a host")
    literal = _parse_address(name)
    if literal is not None:
        addresses = [literal]
    else:
        answers = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
        addresses = []
        for family, _type, _proto, _canonname, sockaddr in answers:
            if family not in (socket.AF_INET, socket.AF_INET6):
                continue
            address = _parse_address(str(sockaddr[0]))
            if address is not None and address not in addresses:
                addresses.append(address)
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, f"{name} has no IP address")
    if allow_list.allows_host(name):
        return addresses
    for address in addresses:
        reason = classify_address(address)
        if reason is not None and not allow_list.allows_address(address):
            target = "" if literal is not None else f" for {name}"
            raise DestinationRefused(
                f"refusing {address} ({reason}){target}: not a public address "
                "and not in the outbound allow-list"
            )
    return addresses


class _VettingBackend(httpcore.NetworkBackend):
    """httpcore's network layer with the check in front: the name httpcore asks for is resolved
    and vetted here, and the socket is opened to the vetted address. TLS is started afterwards by
    httpcore with the request's own host as server name, so certificates are checked as usual."""

    def __init__(self, allow: AllowList) -> None:
        self._allow = allow
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = check_destination(host, port, self._allow)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        options = list(socket_options or ())
        failure: Exception | None = None
        for address in addresses:
            try:
                return self._inner.connect_tcp(str(address), port, timeout, local_address, options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure or httpcore.ConnectError(f"{host} has no address to connect to")

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        raise DestinationRefused("refusing a Unix socket: only TCP destinations are allowed")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class SafeTransport(httpx.HTTPTransport):
    """httpx's transport with every connection vetted (see module docstring) and no proxies:
    a proxy would resolve the name itself, beyond the check."""

    def __init__(self, allow: AllowList, *, verify: ssl.SSLContext | bool = True) -> None:
        ssl_context = httpx.create_ssl_context(verify=verify, trust_env=False)
        super().__init__(verify=ssl_context, trust_env=False)
        # HTTPTransport takes no network backend (encode/httpx#3749 proposes one), so the pool it
        # built is swapped for one that connects through ours; handle_request uses it unchanged.
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=10,
            max_keepalive_connections=5,
            keepalive_expiry=5.0,
            network_backend=_VettingBackend(allow),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        check_scheme(request.url.scheme, request.url.host)
        return super().handle_request(request)


def safe_client(
    *,
    allow: AllowSpec = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    max_redirects: int = DEFAULT_MAX_REDIRECTS,
    headers: Mapping[str, str] | None = None,
    verify: ssl.SSLContext | bool = True,
) -> httpx.Client:
    """An httpx client for user-supplied URLs: refuses non-public destinations (on every redirect
    hop) unless `allow` (default: FERRY_OUTBOUND_ALLOW) names them, and times out.

    A refusal raises DestinationRefused; network failures raise httpx's usual errors.
    """
    return httpx.Client(
        transport=SafeTransport(resolve_allow_list(allow), verify=verify),
        follow_redirects=True,
        max_redirects=max_redirects,
        timeout=timeout,
        headers=headers,
        trust_env=False,
    )


def read_limited(response: httpx.Response, max_bytes: int = DEFAULT_MAX_RESPONSE_BYTES) -> bytes:
    """The (decoded) body of a streamed response, refusing to read more than `max_bytes`, so a
    hostile server cannot exhaust memory (also not with a small compressed body)."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        response.close()
        raise ResponseTooLarge(f"{response.url.host} announced {declared} bytes; limit {max_bytes}")
    chunks: list[bytes] = []
    total = 0
    for chunk in response.iter_bytes():
        total += len(chunk)
        if total > max_bytes:
            response.close()
            raise ResponseTooLarge(f"{response.url.host} sent more than {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
