"""Who may read /metrics: the addresses and networks of METRICS_ALLOWED_ADDRESSES, or a
request carrying ``Authorization: Bearer <METRICS_TOKEN>``.

The address is the one the application sees: behind a reverse proxy every request comes
from the proxy, so set PROXY_HOPS (the client's address is then read from
X-Forwarded-For) or keep the proxy from forwarding /metrics.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

TOKEN_MIN_LENGTH = 16

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(setting) -> tuple[Network, ...]:
    if setting is None:
        return ()
    items: Iterable = setting.replace(",", " ").split() if isinstance(setting, str) else setting
    networks = []
    for item in items:
        try:
            networks.append(ipaddress.ip_network(str(item).strip(), strict=False))
        except ValueError:
            raise RuntimeError(
                f"METRICS_ALLOWED_ADDRESSES: {item!r} is neither an address nor a network "
                "(such as 127.0.0.1, ::1 or 10.0.0.0/8)."
            ) from None
    return tuple(networks)


def _address(text: str | None):
    try:
        address = ipaddress.ip_address((text or "").strip())
    except ValueError:
        return None
    # An IPv4 client seen through an IPv6 socket (::ffff:10.1.2.3) is that IPv4 client.
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


@dataclass(frozen=True)
class Access:
    networks: tuple[Network, ...]
    token: bytes | None

    @classmethod
    def from_config(cls, config) -> Access:
        token = config.get("METRICS_TOKEN") or None
        if token is not None and len(str(token).strip()) < TOKEN_MIN_LENGTH:
            raise RuntimeError(
                f"METRICS_TOKEN must have at least {TOKEN_MIN_LENGTH} characters (a random "
                "one: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'), or be "
                "left unset."
            )
        return cls(
            networks=_networks(config.get("METRICS_ALLOWED_ADDRESSES")),
            token=str(token).strip().encode() if token else None,
        )

    def allows(self, remote_addr: str | None, authorization: str | None) -> bool:
        """Whether a request from ``remote_addr`` with this Authorization header may read
        the metrics. The token is compared in constant time."""
        address = _address(remote_addr)
        if address is not None and any(address in network for network in self.networks):
            return True
        if self.token is None:
            return False
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(given.strip().encode(), self.token)
