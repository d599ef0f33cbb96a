"""Who is asking: the client's address, the one answer for every limit and the audit trail.

Headers are the client's to write, so only the connection's address counts, unless the
connection comes from a trusted proxy (TRUSTED_PROXIES) and RATELIMIT_IP_META_KEY names the
header that proxy sets.
"""

import functools
import ipaddress

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# An IPv6 subscriber is given a /64 network or more: counted address by address, one client
# would have 2^64 allowances. (django-ratelimit's default mask is the same.)
IPV6_LIMIT_PREFIX = 64


def client_address(request) -> str | None:
    """The client's address; None when the connection has none (a Unix socket) and no trusted
    proxy named one.

    From a trusted proxy, the address in its header; in a list (X-Forwarded-For, where each
    proxy appends the address it was connected from) the rightmost that is not itself a trusted
    proxy: everything left of it was written by the client. A missing or malformed header gives
    the connection's address (the proxy's), never an error.
    """
    peer = _address(request.META.get("REMOTE_ADDR", ""))
    header = settings.RATELIMIT_IP_META_KEY
    if not header or not _is_trusted_proxy(peer):
        return None if peer is None else str(peer)
    for hop in reversed(request.META.get(header, "").split(",")):
        client = _address(hop)
        if client is None:
            return str(peer)
        if not _is_trusted_proxy(client):
            break
    return str(client)


def limit_key(request) -> str:
    """What the limits count under: the client's address, IPv6 by its /64 network."""
    address = client_address(request)
    if address is None:
        return ""  # the connection names no address: all such clients share one allowance
    if ":" in address:
        return str(ipaddress.ip_network(f"{address}/{IPV6_LIMIT_PREFIX}", strict=False).network_address)
    return address


def _address(text: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped:
        # A dual-stack socket reports an IPv4 client as ::ffff:a.b.c.d: the same client.
        return address.ipv4_mapped
    return address


def _is_trusted_proxy(address: IPAddress | None) -> bool:
    networks = _networks(tuple(settings.TRUSTED_PROXIES))
    return address is not None and any(address in network for network in networks)


@functools.lru_cache(maxsize=4)
def _networks(proxies: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(proxy, strict=False) for proxy in proxies)
