"""REDIS_URL to a Redis client: one client (one connection pool) per app, shared by
the app's own records, the rate limiter and the cache, so all three follow the same
server, including across a Sentinel failover.

Forms (redis-py's own, plus Sentinel's as the `limits` package spells it):

    redis://[:password@]host:port/db     rediss://...     unix:///path/redis.sock
    redis+sentinel://[:password@]sentinel:26379,sentinel2:26379/service_name[/db]

With Sentinel, every connection asks the sentinels for the service's primary when
it connects; a connection the old primary refuses (gone, or demoted and read-only)
is dropped, so the next command reaches the primary Sentinel promoted. The password
is the primary's; the sentinels are asked without one.
"""

from urllib.parse import unquote, urlsplit

import redis
from redis.sentinel import Sentinel

SENTINEL_SCHEME = "redis+sentinel"
SCHEMES = {"redis", "rediss", "unix", SENTINEL_SCHEME}


def problem(url: str) -> str | None:
    """What is wrong with a REDIS_URL of a known scheme, if anything."""
    parts = urlsplit(url)
    if parts.scheme == "unix" and not parts.path:
        return "must name the socket path"
    if parts.scheme == SENTINEL_SCHEME:
        try:
            sentinel_addresses(parts)
            service_and_db(parts)
        except ValueError as error:
            return str(error)
    return None


def connect(url: str, **connection_options) -> redis.Redis:
    """A client for REDIS_URL; `connection_options` (timeouts) apply to every
    connection, the sentinels' too. Nothing connects until the first command."""
    parts = urlsplit(url)
    if parts.scheme != SENTINEL_SCHEME:
        return redis.Redis.from_url(url, **connection_options)
    service, db = service_and_db(parts)
    sentinel = Sentinel(
        sentinel_addresses(parts),
        sentinel_kwargs=connection_options,
        **connection_options,
    )
    password = unquote(parts.password) if parts.password else None
    return sentinel.master_for(service, db=db, password=password)


def sentinel_addresses(parts) -> list[tuple[str, int]]:
    hosts = parts.netloc.rpartition("@")[2]
    addresses = []
    for host in hosts.split(","):
        name, _, port = host.rpartition(":")
        if not name or not port.isdigit():
            raise ValueError(f"sentinel {host!r} is not host:port")
        addresses.append((name.strip("[]"), int(port)))
    return addresses


def service_and_db(parts) -> tuple[str, int]:
    segments = parts.path.strip("/").split("/")
    if not segments[0] or len(segments) > 2:
        raise ValueError("must end in /<service name> or /<service name>/<db>")
    if len(segments) == 2 and not segments[1].isdigit():
        raise ValueError(f"database {segments[1]!r} is not a number")
    return segments[0], int(segments[1]) if len(segments) == 2 else 0
