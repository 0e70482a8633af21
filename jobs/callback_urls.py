"""The SSRF guard: which callback URLs the service will ever send a webhook to.

A callback URL is checked twice: when the job is submitted (a refusal is a 400 there) and
again at every delivery, since DNS answers change. Each check

1. reads the URL: `http` or `https` only, a host, no user name or password, no control
   characters, at most `MAX_URL_LENGTH` characters;
2. resolves the host (an IP literal stands for itself) and refuses it unless *every* address
   is public: not loopback, private, link-local, CGNAT, multicast, documentation,
   benchmarking, reserved or otherwise special (`SPECIAL_NETWORKS`, IANA's special-purpose
   registries), including an IPv4 address carried inside IPv6 (mapped `::ffff:a.b.c.d`,
   NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) and Teredo. Python's `ipaddress.is_global`
   alone misses several of these (and changed across patch releases), so the table is ours;
3. yields the address it checked, and the delivery connects to exactly that address
   (`pinned_request`), with the URL's host in `Host` and in TLS's SNI and certificate check,
   so that a second DNS answer cannot point the connection elsewhere (DNS rebinding).

`IOPAINT_CALLBACK_ALLOWED_NETWORKS` lists ranges that pass although they are not public
(tests, private deployments); it is empty by default. Redirects are never followed (the
sender's business; see `jobs/webhooks.py`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]

MAX_URL_LENGTH = 2048
RESOLVE_TIMEOUT_S = 5.0
DEFAULT_PORTS = {"http": 80, "https": 443}

SPECIAL_NETWORKS: tuple[tuple[str, IPNetwork], ...] = tuple(
    (name, ipaddress.ip_network(network))
    for name, network in (
        ("a 'this network' address", "0.0.0.0/8"),
        ("a private address", "10.0.0.0/8"),
        ("a shared (CGNAT) address", "100.64.0.0/10"),
        ("a loopback address", "127.0.0.0/8"),
        ("a link-local address", "169.254.0.0/16"),
        ("a private address", "172.16.0.0/12"),
        ("an IETF protocol address", "192.0.0.0/24"),
        ("a documentation address", "192.0.2.0/24"),
        ("a 6to4 relay address", "192.88.99.0/24"),
        ("a private address", "192.168.0.0/16"),
        ("a benchmarking address", "198.18.0.0/15"),
        ("a documentation address", "198.51.100.0/24"),
        ("a documentation address", "203.0.113.0/24"),
        ("a multicast address", "224.0.0.0/4"),
        ("a reserved address", "240.0.0.0/4"),
        ("the unspecified address", "::/128"),
        ("a loopback address", "::1/128"),
        ("an IPv4-compatible address", "::/96"),
        ("a discard-only address", "100::/64"),
        ("a local-use NAT64 address", "64:ff9b:1::/48"),
        ("an IETF protocol or Teredo address", "2001::/23"),
        ("a documentation address", "2001:db8::/32"),
        ("a documentation address", "3fff::/20"),
        ("an SRv6 address", "5f00::/16"),
        ("a unique-local address", "fc00::/7"),
        ("a link-local address", "fe80::/10"),
        ("a site-local address", "fec0::/10"),
        ("a multicast address", "ff00::/8"),
    )
)
NAT64 = ipaddress.ip_network("64:ff9b::/96")
SIX_TO_FOUR = ipaddress.ip_network("2002::/16")


class RefusedCallback(ValueError):
    """Why a callback URL is not acceptable, in words for the client."""


@dataclass(frozen=True)
class CallbackUrl:
    """A syntactically acceptable callback URL, taken apart."""

    url: str
    scheme: str
    host: str
    """Lower-case, IDNA (ASCII) form; an IPv6 literal without brackets."""
    port: int
    target: str
    """Path and query, as sent in the request line."""

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


@dataclass(frozen=True)
class CheckedCallback:
    """A callback URL and the one address it was checked at: the delivery connects there."""

    callback: CallbackUrl
    address: IPAddress


def parse_callback_url(url: str) -> CallbackUrl:
    """Check the URL's form (not where it leads) or raise `RefusedCallback`."""
    if len(url) > MAX_URL_LENGTH:
        raise RefusedCallback(f"callback_url is longer than {MAX_URL_LENGTH} characters")
    if any(ord(character) < 33 or ord(character) == 127 for character in url):
        raise RefusedCallback("callback_url contains spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise RefusedCallback(f"callback_url is not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise RefusedCallback("callback_url must be an http:// or https:// URL")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise RefusedCallback("callback_url must not carry a user name or password")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise RefusedCallback("callback_url has no host")
    if "%" in host:
        raise RefusedCallback("callback_url must not name an IPv6 zone")
    try:
        ascii_host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise RefusedCallback("callback_url's host is not a valid domain name") from None
    if port == 0:
        raise RefusedCallback("callback_url's port must be 1 to 65535")
    target = parts.path or "/"
    if parts.query:
        target = f"{target}?{parts.query}"
    return CallbackUrl(url, scheme, ascii_host, port or DEFAULT_PORTS[scheme], target)


def refusal_of(address: IPAddress, allowed: Sequence[IPNetwork] = ()) -> str | None:
    """Why a callback may not connect to `address`; None when it may."""
    if any(address in network for network in allowed):
        return None
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            inner = refusal_of(embedded, allowed)
            return None if inner is None else f"{inner}, {embedded} inside an IPv6 address"
    for name, network in SPECIAL_NETWORKS:
        if address.version == network.version and address in network:
            return f"{name} ({network})"
    if not address.is_global:
        return "not a public address"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries to its destination, if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in SIX_TO_FOUR:
        return address.sixtofour
    return None


async def system_resolver(host: str, port: int) -> list[str]:
    """The host's addresses, as the operating system's resolver gives them."""
    loop = asyncio.get_running_loop()
    answers = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(answer[4][0]) for answer in answers]


async def check_callback(
    url: str,
    *,
    allowed: Sequence[IPNetwork] = (),
    resolver: Resolver = system_resolver,
    timeout_s: float = RESOLVE_TIMEOUT_S,
) -> CheckedCallback:
    """Read, resolve and check `url`; the address to connect to, or `RefusedCallback`."""
    callback = parse_callback_url(url)
    try:
        addresses = [ipaddress.ip_address(callback.host)]
        literal = True
    except ValueError:
        addresses = await _resolved(callback.host, callback.port, resolver, timeout_s)
        literal = False
    for address in addresses:
        reason = refusal_of(address, allowed)
        if reason is None:
            continue
        if literal:
            raise RefusedCallback(f"callback_url must point to a public address, not {reason}")
        raise RefusedCallback(
            f"callback_url must point to a public address; {callback.host} resolves to "
            f"{address}, {reason}"
        )
    return CheckedCallback(callback, addresses[0])


async def _resolved(host: str, port: int, resolver: Resolver, timeout_s: float) -> list[IPAddress]:
    try:
        answers = await asyncio.wait_for(resolver(host, port), timeout_s)
    except (OSError, TimeoutError, UnicodeError):
        answers = []
    addresses = []
    for answer in answers:
        try:
            addresses.append(ipaddress.ip_address(answer.split("%")[0]))
        except ValueError:
            continue
    if not addresses:
        raise RefusedCallback(f"callback_url's host {host} cannot be resolved")
    return addresses


def pinned_request(
    client: httpx.AsyncClient, checked: CheckedCallback, *, body: bytes, headers: dict[str, str]
) -> httpx.Request:
    """A POST to the checked address itself, the URL's host in `Host` and in TLS."""
    callback = checked.callback
    address = checked.address
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    extensions: dict[str, Any] = {}
    if callback.scheme == "https":
        extensions["sni_hostname"] = callback.host
    # raw_path, not a join: a path such as //elsewhere/x must not become another host.
    url = httpx.URL(
        scheme=callback.scheme,
        host=str(address),
        port=callback.port,
        raw_path=callback.target.encode("ascii"),
    )
    return client.build_request(
        "POST",
        url,
        content=body,
        headers={**headers, "Host": callback.host_header},
        extensions=extensions,
    )
