"""REDIS_URL to a Redis client: one client (one connection pool) per app, shared by
the app's own records, the rate limits and the cache, so all three follow the same
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
from redis.sentinel import Sentinel, SentinelManagedConnection

from myapp.breaker import Breaker

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


class RedisStalled(redis.ConnectionError):
    """Redis did not answer within its timeout moments ago."""


class GuardedConnection:
    """A connection watched by its client's breaker (myapp/breaker.py): a timeout
    trips it, and while it is open a command is refused (RedisStalled) before it
    is sent, rather than wait out the timeout again. Any answer closes it. (Plain
    try blocks, not a context manager: these run on every Redis call.)"""

    breaker: Breaker

    def connect(self):
        self.breaker.check()
        try:
            super().connect()
        except redis.TimeoutError:
            self.breaker.failed()
            raise

    def send_packed_command(self, command, check_health=True):
        self.breaker.check()
        try:
            super().send_packed_command(command, check_health)
        except redis.TimeoutError:
            self.breaker.failed()
            raise

    def read_response(self, *args, **kwargs):
        try:
            response = super().read_response(*args, **kwargs)
        except redis.TimeoutError:
            self.breaker.failed()
            raise
        except redis.ResponseError:  # an answer, if a refusal
            self.breaker.answered()
            raise
        self.breaker.answered()
        return response


def connect(url: str, breaker: Breaker, **connection_options) -> redis.Redis:
    """A client for REDIS_URL, its connections watched by `breaker`;
    `connection_options` (timeouts) apply to every connection, the sentinels' too.
    Nothing connects until the first command."""
    parts = urlsplit(url)
    base = {
        SENTINEL_SCHEME: SentinelManagedConnection,
        "unix": redis.UnixDomainSocketConnection,
        "rediss": redis.SSLConnection,
    }.get(parts.scheme, redis.Connection)
    guarded = type(base.__name__, (GuardedConnection, base), {"breaker": breaker})
    if parts.scheme != SENTINEL_SCHEME:
        return redis.Redis.from_url(url, connection_class=guarded, **connection_options)
    service, db = service_and_db(parts)
    sentinel = Sentinel(
        sentinel_addresses(parts),
        sentinel_kwargs=connection_options,
        **connection_options,
    )
    password = unquote(parts.password) if parts.password else None
    return sentinel.master_for(
        service, db=db, password=password, connection_class=guarded
    )


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
