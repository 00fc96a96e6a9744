"""Who sent a request and whether it may: the client address behind trusted reverse proxies,
the optional IP allow-list and the optional inbound key (README, "Receiving real postbacks")."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass

from listener.parsing import Rejection
from store.records import Settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
KEY_HEADER = "X-Postwatch-Key"
MASK = "********"

# One element of RFC 7239 ``Forwarded``: for=192.0.2.1, for="[2001:db8::1]:4711", for=unknown.
_FORWARDED_FOR = re.compile(r'(?i)(?:^|[;,\s])for\s*=\s*("[^"]*"|[^;,\s]+)')
_KEY_PARAM = re.compile(r"(?:^|(?<=&))key=[^&]*")


def _networks(values: list[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(value, strict=False) for value in values)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip().strip('"')
    if text.startswith("["):  # [v6]:port
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # v4:port
        text = text.partition(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def is_loopback(host: str) -> bool:
    """Whether a host name or address is this machine's loopback."""
    if host == "localhost":
        return True
    address = _address(host)
    return address is not None and address.is_loopback


def forwarded_hops(headers: Mapping[str, str]) -> list[str]:
    """The client addresses a request says it was forwarded for, first hop first: from
    ``Forwarded`` when present, else from ``X-Forwarded-For``."""
    forwarded = headers.get("Forwarded")
    if forwarded:
        return [match.group(1).strip('"') for match in _FORWARDED_FOR.finditer(forwarded)]
    return [hop.strip() for hop in headers.get("X-Forwarded-For", "").split(",") if hop.strip()]


@dataclass(frozen=True)
class Access:
    """The listener's access settings, parsed once."""

    allow: tuple[Network, ...] = ()
    trusted: tuple[Network, ...] = ()
    key: str = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> Access:
        return cls(_networks(settings.allow_ips), _networks(settings.trusted_proxies), settings.key)

    def client(self, peer: str, headers: Mapping[str, str]) -> str:
        """The client's address: the connection's peer, unless the peer is a trusted proxy;
        then the nearest forwarded hop that is not itself a trusted proxy. Forwarding headers
        from anyone else are kept in the log but not believed."""
        if not self.trusted:
            return peer
        address = _address(peer)
        if address is None or not any(address in net for net in self.trusted):
            return peer
        hops = [address for hop in forwarded_hops(headers) if (address := _address(hop))]
        for address in reversed(hops):
            if not any(address in net for net in self.trusted):
                return str(address)
        return str(hops[0]) if hops else peer  # every hop is a trusted proxy

    def refusal(
        self, client: str, params: Mapping[str, str], headers: Mapping[str, str]
    ) -> Rejection | None:
        """Why a request from ``client`` is refused (allow-list, key), or None."""
        if self.allow:
            address = _address(client)
            if address is None or not any(address in net for net in self.allow):
                return Rejection(
                    403,
                    f"address {client} is not in the listener's allow_ips: add it, or, behind "
                    "a reverse proxy, list the proxy in trusted_proxies",
                )
        if self.key and (params.get("key") or headers.get(KEY_HEADER, "")) != self.key:
            return Rejection(403, f"missing or wrong key: pass ?key=… or the {KEY_HEADER} header")
        return None

    def masked_query(self, query: str) -> str:
        """The query as logged: the inbound key's value masked."""
        if not self.key or "key=" not in query:
            return query
        return _KEY_PARAM.sub(f"key={MASK}", query)
