"""Rate limits, counted in Redis so that every process and host shares them.

RATELIMIT_DEFAULT is one budget per identity across every API endpoint: the user
of a valid token, else the client's network (`client_network`: its IPv4 address,
or its IPv6 /64; the proxy-corrected one when TRUSTED_PROXIES is set). Signing
in, re-authenticating and registering also have tighter limits of their own
(`Limit`, a decorator). The docs, health and metrics, and CORS preflights count
nothing.

Each limit a request meets is one call of one Redis script that counts the hit in
its fixed window and answers the count and the window's end. If Redis fails, the
process counts that hit in its own memory (the `limits` package's storage) and
says so where operators look: a WARNING line when it starts and an INFO line when
Redis answers again, `myapp_rate_limit_storage_failures_total`, and /readiness.
Every request asks Redis first, so the limits are shared again at once.

A counted response carries X-RateLimit-Limit, -Remaining, -Reset (epoch seconds)
and -Retry-After (seconds) for its tightest limit: the spent one, else the one with
the fewest hits left. A spent limit is a 429 in the error shape with Retry-After.
"""

import hashlib
import threading
import time
from dataclasses import dataclass
from functools import cache, wraps
from ipaddress import ip_address, ip_network

from flask import Flask, current_app, g, request
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter
from redis.exceptions import RedisError

from myapp import auth, telemetry
from myapp.errors import ApiError

# Every window of a config key's limits ("1000/hour;50/minute") in one atomic call:
# each counts the hit, starts with its first, and answers its count and its end.
SCRIPT = """
local answers = {}
for i, key in ipairs(KEYS) do
  local count = redis.call('incrby', key, 1)
  if count == 1 then redis.call('expire', key, ARGV[i]) end
  answers[i] = {count, redis.call('ttl', key)}
end
return answers
"""
KEY_PREFIX = "myapp:rate"
# A key made of what a client sent (an email) is hashed past this length, so no
# request can make Redis keep a megabyte-long key.
MAX_KEY_LENGTH = 200

EXEMPT_BLUEPRINTS: set[str] = set()
EXEMPT_WHEN: list = []


@dataclass(frozen=True)
class Hit:
    """One limit as this request met it."""

    limit: RateLimitItem
    count: int
    reset_at: float

    @property
    def remaining(self) -> int:
        return max(0, self.limit.amount - self.count)

    @property
    def spent(self) -> bool:
        return self.count > self.limit.amount

    def seconds_left(self) -> int:
        return max(1, int(self.reset_at - time.time()))


def init_app(app: Flask) -> None:
    """Count RATELIMIT_DEFAULT before each request (before its body is read: a
    body that is not JSON spends the budget like any request), and put the
    headers on each response."""
    client = app.extensions["myapp.redis"]  # made by redis_store.init_app
    app.extensions["myapp.rate_limits"] = WindowCounter(client.register_script(SCRIPT))
    app.before_request(count_identity)
    app.after_request(add_headers)


def exempt(blueprint_name: str) -> None:
    EXEMPT_BLUEPRINTS.add(blueprint_name)


def exempt_when(predicate):
    """Decorator: a request for which `predicate()` is true counts nothing."""
    EXEMPT_WHEN.append(predicate)
    return predicate


@exempt_when
def is_cors_preflight() -> bool:
    """A browser asks before a cross-origin request; only the request it then
    sends counts. A counted preflight could spend an anonymous budget shared by
    everyone behind one address, and a refused one reaches the page as a CORS
    error it cannot read."""
    return request.method == "OPTIONS" and "Access-Control-Request-Method" in (
        request.headers
    )


def count_identity() -> None:
    if request.endpoint is None or request.blueprint in EXEMPT_BLUEPRINTS:
        return  # unrouted (the 404 or 405 costs nothing), or exempt
    if any(predicate() for predicate in EXEMPT_WHEN):
        return
    count("RATELIMIT_DEFAULT", identity())


def identity_key() -> str:
    """The user of a token that verifies and whose session lives: a revoked one
    (a leaked refresh token, say) cannot spend its user's budget."""
    if "Authorization" not in request.headers:
        return address_key()  # most anonymous requests: nothing to verify
    try:
        return "user:" + auth.unrevoked_claims()["sub"]
    except (ApiError, RedisError):  # a bad or revoked token; Redis failing
        return address_key()


def address_key() -> str:
    """The client's network (`client_network`) as a key."""
    return "ip:" + client_network()


# An IPv6 client is given a /64 at least (RFC 6177) and picks addresses within it
# at will (RFC 8981 makes new ones every day): counted per address, it would have
# 2^64 budgets. So an IPv6 client is counted per /64, an IPv4 one per address.
IPV6_PREFIX = 64


def client_network() -> str:
    """The network a client's address limits count against: the address for IPv4
    (also when written IPv4-mapped, ::ffff:a.b.c.d), its /64 for IPv6. The address
    is the proxy-corrected one when TRUSTED_PROXIES is set."""
    try:
        address = ip_address(request.remote_addr or "")
    except ValueError:  # none (a Unix socket's peer), or not an address: one key
        return "unknown"  # for all, not a budget per spelling
    if address.version == 6 and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    if address.version == 6:
        return str(ip_network(f"{address}/{IPV6_PREFIX}", strict=False))
    return str(address)


class Limit:
    """Decorator: a limit of its own for one operation, from the config key
    `config_key`, counted per `key()` before the operation runs, unless `unless()`.
    Place it below `requires` when the key needs the caller's identity."""

    def __init__(self, config_key: str, key, *, unless=lambda: False):
        self.config_key, self.key, self.unless = config_key, key_or_address(key), unless

    def __call__(self, method):
        @wraps(method)
        def limited(*args, **kwargs):
            if not self.unless():
                count(self.config_key, self.key())
            return method(*args, **kwargs)

        return limited


def key_or_address(function):
    """A key function that cannot raise: a key that cannot be made is logged, and
    counted against the client's address."""

    @wraps(function)
    def key() -> str:
        try:
            return function()
        except Exception:
            current_app.logger.error("A rate limit key failed", exc_info=True)
            return address_key()

    return key


identity = key_or_address(identity_key)


def count(config_key: str, key: str) -> None:
    """Count this request against the limits in `config_key` for `key`; a 429 when
    that spends one."""
    limits = parsed(current_app.config[config_key])
    hits = current_app.extensions["myapp.rate_limits"].hit(limits, config_key, key)
    g.setdefault("rate_limit_hits", []).extend(hits)
    for hit in hits:
        if hit.spent:
            raise ApiError(
                429,
                "rate_limited",
                f"Rate limit exceeded: {hit.limit}",
                retry_after=hit.seconds_left(),
            )


@cache
def parsed(text: str) -> tuple[RateLimitItem, ...]:
    return tuple(parse_many(text))


class WindowCounter:
    """One app's counting: in Redis, or in this process's memory while Redis
    fails."""

    def __init__(self, script):
        self.script = script
        self.in_memory: FixedWindowRateLimiter | None = None  # made on first need
        self.counting_in_memory = False
        self.lock = threading.Lock()  # threads of a worker switch it together

    def hit(self, limits: tuple, config_key: str, key: str) -> list[Hit]:
        if len(key) > MAX_KEY_LENGTH:
            key = hashlib.sha256(key.encode()).hexdigest()
        names = [
            f"{KEY_PREFIX}:{config_key}:{key}:{one.amount}/{one.get_expiry()}"
            for one in limits
        ]
        try:
            answers = self.script(names, [one.get_expiry() for one in limits])
        except RedisError:
            self.fall_back()
            return [self.hit_in_memory(*pair) for pair in zip(limits, names)]
        if self.counting_in_memory:
            with self.lock:
                back, self.counting_in_memory = self.counting_in_memory, False
            if back:
                current_app.logger.info("Rate limits count in Redis again")
        now = time.time()
        return [
            Hit(one, count, now + ttl) for one, (count, ttl) in zip(limits, answers)
        ]

    def fall_back(self) -> None:
        telemetry.RATE_LIMITS_IN_MEMORY.inc()
        with self.lock:
            started, self.counting_in_memory = not self.counting_in_memory, True
            if self.in_memory is None:
                self.in_memory = FixedWindowRateLimiter(MemoryStorage())
        if started:
            current_app.logger.warning(
                "Rate limit storage unreachable: limits count in this process's "
                "memory until Redis answers again"
            )

    def hit_in_memory(self, limit: RateLimitItem, name: str) -> Hit:
        allowed = self.in_memory.hit(limit, name)
        reset_at, remaining = self.in_memory.get_window_stats(limit, name)
        count = limit.amount + 1 if not allowed else limit.amount - remaining
        return Hit(limit, count, reset_at)


def add_headers(response):
    hits = g.get("rate_limit_hits")
    if hits:
        tightest = min(hits, key=lambda hit: (not hit.spent, hit.remaining))
        response.headers.update(
            {
                "X-RateLimit-Limit": str(tightest.limit.amount),
                "X-RateLimit-Remaining": str(tightest.remaining),
                "X-RateLimit-Reset": str(int(tightest.reset_at)),
                "X-RateLimit-Retry-After": str(tightest.seconds_left()),
            }
        )
    return response
