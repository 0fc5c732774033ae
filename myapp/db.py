"""The extension objects, created unbound; create_app binds them. Features import
from here, never from the app."""

import sys
import time
import weakref
from functools import wraps

from flask import current_app, g, has_request_context, request
from flask_caching import Cache
from flask_cors import CORS
from flask_jwt_extended import JWTManager, decode_token
from flask_jwt_extended.config import config as jwt_config
from flask_limiter import Limiter
from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.session import Session
from redis.exceptions import RedisError
from limits.storage import RedisStorage
from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import DeclarativeBase

from myapp import redis_url, telemetry
from myapp.breaker import Breaker

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Stable constraint names, so migrations can alter them on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def limit_key(function):
    """A rate limit's key function that cannot raise. Flask-Limiter takes any
    exception while it counts for its storage failing, and counts in each
    process's memory from then on; a key that cannot be made is logged and counted
    against the client's address instead."""

    @wraps(function)
    def key() -> str:
        try:
            return function()
        except Exception:
            current_app.logger.error("A rate limit key failed", exc_info=True)
            return "ip:" + (request.remote_addr or "unknown")

    return key


@limit_key
def rate_limit_key() -> str:
    """Rate limits count per user when a valid token came with the request, else per
    client address (the proxy-corrected one when TRUSTED_PROXIES is set)."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        try:
            return "user:" + str(decode_token(header[len("Bearer ") :])["sub"])
        except Exception:  # an unverifiable token counts against its address
            pass
    return "ip:" + (request.remote_addr or "unknown")


def reading() -> bool:
    return has_request_context() and request.method in SAFE_METHODS


class RequestSession(Session):
    """On PostgreSQL, a GET reads in autocommit mode: each statement is its own
    transaction, so a read costs one round trip rather than BEGIN, the query and a
    ROLLBACK (measured in bench/). Writes keep one transaction per request."""

    _autocommit_engines: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def get_bind(self, *args, **kwargs):
        bind = super().get_bind(*args, **kwargs)
        # A Connection (the tests' outer transaction) is left as it is.
        if isinstance(bind, Engine) and bind.dialect.name == "postgresql" and reading():
            engines = self._autocommit_engines
            if bind not in engines:
                # Shares the engine's pool; only the isolation level differs.
                engines[bind] = bind.execution_options(isolation_level="AUTOCOMMIT")
            return engines[bind]
        return bind


sql = SQLAlchemy(model_class=Base, session_options={"class_": RequestSession})


# After a Redis timeout, how long each process refuses Redis calls at once (myapp/
# breaker.py) before one request tries again: short, as Redis recovers in moments.
REDIS_STALL_SECONDS = 1.0


class AppRedis:
    """The app's one Redis client, made from REDIS_URL (myapp/redis_url.py: a
    server, a socket or Sentinel) with REDIS_SOCKET_TIMEOUT on every connection,
    and a breaker that refuses calls at once for a moment after one timed out.
    The rate limiter's storage and the cache are given the same client, so all
    three follow one server. Each app has its own (two instances in a test never
    share one); `redis_store.<command>` goes to the current app's."""

    def init_app(self, app) -> None:
        timeout = app.config["REDIS_SOCKET_TIMEOUT"]
        breaker = Breaker(
            lambda: redis_url.RedisStalled(
                f"Redis did not answer within {timeout:g} s"
            ),
            REDIS_STALL_SECONDS,
            trial_seconds=2 * timeout,  # a connect and a command
            # One timeout can be a busy CPU (the fleet test's 2 cores saw one);
            # a frozen Redis gives the next at once.
            trips_after=2,
        )
        client = redis_url.connect(
            app.config["REDIS_URL"],
            breaker,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
        )
        app.extensions["myapp.redis"] = client
        app.config["RATELIMIT_STORAGE_OPTIONS"] = {
            "connection_pool": client.connection_pool
        }
        app.config["CACHE_REDIS_HOST"] = client  # cachelib takes a client as host

    def __getattr__(self, name):
        return getattr(current_app.extensions["myapp.redis"], name)


redis_store = AppRedis()


class RedisHitStorage(RedisStorage):
    """The limits package's Redis storage, with the rate-limit headers' reads (the
    count and expiry of the window this request just hit) answered from the hit
    itself: one Redis round trip per request instead of three. Selected by the
    RATELIMIT_STORAGE_URI myapp+redis://, it uses the app's Redis connection pool
    (AppRedis.init_app), not a URI of its own."""

    STORAGE_SCHEME = ["myapp+redis"]
    SCRIPT_HIT = """
    local count = redis.call('incrby', KEYS[1], ARGV[2])
    if count == tonumber(ARGV[2]) then redis.call('expire', KEYS[1], ARGV[1]) end
    return {count, redis.call('ttl', KEYS[1])}
    """

    def __init__(self, uri: str, **options):
        super().__init__(uri.removeprefix("myapp+"), **options)
        self.lua_hit = self.get_connection().register_script(self.SCRIPT_HIT)

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        try:
            count, ttl = self.lua_hit([self.prefixed_key(key)], [expiry, amount])
        except RedisError:
            # Flask-Limiter counts in memory from here on: say so, where operators
            # look (the log, /metrics; /readiness names Redis).
            telemetry.rate_limits_in_memory()
            raise
        if has_request_context():
            g.setdefault("rate_limit_hits", {})[key] = (count, time.time() + ttl)
        return count

    def get(self, key: str) -> int:
        hit = self._hit(key)
        return hit[0] if hit else super().get(key)

    def get_expiry(self, key: str) -> float:
        hit = self._hit(key)
        return hit[1] if hit else super().get_expiry(key)

    @staticmethod
    def _hit(key: str):
        return g.get("rate_limit_hits", {}).get(key) if has_request_context() else None


cors = CORS()
# RATELIMIT_DEFAULT is one budget per identity across all endpoints (an application
# limit), read per request from the app's config. Flask-Limiter would also read that
# key, once, as per-endpoint defaults: those are switched off.
limiter = Limiter(
    rate_limit_key,
    application_limits=[lambda: current_app.config["RATELIMIT_DEFAULT"]],
    default_limits_exempt_when=lambda: True,
)


@limiter.request_filter
def is_cors_preflight() -> bool:
    """A browser asks before a cross-origin request; only the request it then
    sends counts. A counted preflight could spend an anonymous budget shared by
    everyone behind one address, and a refused one reaches the page as a CORS
    error it cannot read."""
    return request.method == "OPTIONS" and "Access-Control-Request-Method" in (
        request.headers
    )


cache = Cache()


class VerifiedTokenCache(JWTManager):
    """Verifies each access or refresh token once per app and process. Verifying
    (flask-jwt-extended parses a token three times, PyJWT checks every character,
    then the HMAC) cost more than the rest of an authenticated request's Python
    (bench/ANALYSIS.md), and a client sends the same token for its whole life.

    A token's signature cannot change, so the claims of a token that verified are
    kept, keyed by the exact token string, and only what time changes is checked
    again: its expiry, with the configured leeway. Revocation is checked on every
    request as before (users.models). A token that fails is not kept, and an
    expired one goes through the full check again, which refuses it."""

    MAX_TOKENS = 1024  # about 1 KiB each; when full, it starts again empty

    def _decode_jwt_from_config(
        self, encoded_token, csrf_value=None, allow_expired=False
    ):
        if csrf_value is not None or allow_expired:
            return super()._decode_jwt_from_config(
                encoded_token, csrf_value, allow_expired
            )
        verified = current_app.extensions.setdefault("myapp.verified_tokens", {})
        claims = verified.get(encoded_token)
        if claims is None or claims["exp"] <= time.time() - jwt_config.leeway:
            claims = super()._decode_jwt_from_config(encoded_token)
            if "exp" not in claims:  # never issued here; not kept
                return claims
            if len(verified) >= self.MAX_TOKENS:
                # clear(), not evicting by iteration: safe under threaded servers
                verified.clear()
            verified[encoded_token] = claims
        return dict(claims)  # the caller's own copy


jwt = VerifiedTokenCache()


# How long a read keeps trying to reach a database that refused a connection: a
# restart of PgBouncer or PostgreSQL is gone in well under that; a longer outage is
# a 503 once it has passed.
RECONNECT_WINDOW = 1.0
RECONNECT_PAUSE = 0.25


def read_on_a_live_connection(read, *args, **kwargs):
    """Run a read, on a live connection. Pools are not pinged before use (a round
    trip on every request), so this is where a dead one is found: a pooled
    connection closed by a restarted PostgreSQL or PgBouncer (SQLAlchemy has then
    discarded the whole pool) is replaced at once; a connection refused is tried
    again every RECONNECT_PAUSE seconds for RECONNECT_WINDOW. Reads only: a write
    may have been applied, and its client retries it with its Idempotency-Key."""
    deadline = time.monotonic() + RECONNECT_WINDOW
    replaced = False
    while True:
        try:
            return read(*args, **kwargs)
        except DBAPIError as error:
            # No statement: the error came from connecting, not from a query.
            refused = error.statement is None and isinstance(error, OperationalError)
            lost = error.connection_invalidated and not replaced
            if not (lost or refused and time.monotonic() + RECONNECT_PAUSE < deadline):
                raise
            sql.session.rollback()
            replaced = replaced or lost
            if refused:
                time.sleep(RECONNECT_PAUSE)


def end_session(_error: BaseException | None = None) -> None:
    """End the request's session: registered after Flask-SQLAlchemy, so it runs
    first at teardown. Flask-SQLAlchemy's own ending lets a rollback on a
    connection lost after the response was made (a deadline cut it, or PostgreSQL
    went away) escape the app, and the server answers its own HTML 500 in place of
    the response. That rollback has nothing to undo: SQLAlchemy has discarded the
    connection, and the transaction died with it. So it is logged, and the response
    stands."""
    try:
        sql.session.remove()
    except DBAPIError as error:
        current_app.logger.warning(
            "The request's database connection was lost at its end: %s",
            type(error.orig).__name__,
        )
        sql.session.remove()  # what the failed rollback left: the connection back


def commit() -> None:
    """The request's one commit, then the work queued to follow it. Once committed,
    the request has succeeded: a failing follow-up is logged and counted, never
    turned into an error response for a write that happened."""
    try:
        sql.session.commit()
    except Exception:
        run_follow_ups("after_rollback")
        raise
    g.pop("after_rollback", None)
    run_follow_ups("after_commit")


def after_commit(step: str, callback) -> None:
    """Run `callback` once this request's transaction has committed, so that no
    request can see the old data after the callback ran (revoking sessions, bumping
    a cache generation, keeping an idempotent response). `step` names it in the log
    and in /metrics if it fails."""
    g.setdefault("after_commit", []).append((step, callback))


def after_rollback(step: str, callback) -> None:
    """Run `callback` if this request's commit fails (releasing a claim in Redis)."""
    g.setdefault("after_rollback", []).append((step, callback))


def run_follow_ups(kind: str) -> None:
    for step, callback in g.pop(kind, []):
        try:
            callback()
        except Exception as error:
            telemetry.follow_up_failed(step, error)


@event.listens_for(Engine, "connect")
def _configure_sqlite(dbapi_connection, _record) -> None:
    """pysqlite's own BEGIN handling breaks SAVEPOINTs and delays locks; take it over,
    turn on what SQLite leaves off (foreign keys, WAL for concurrent readers) and
    give it a Unicode lower()."""
    sqlite3 = sys.modules.get("sqlite3")  # imported by the driver, only where used
    if sqlite3 and isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.isolation_level = None
        # SQLite's lower() folds ASCII only; emails compare case-insensitively in
        # any script, as they do on PostgreSQL.
        dbapi_connection.create_function("lower", 1, _lower, deterministic=True)
        dbapi_connection.execute("PRAGMA foreign_keys = ON")
        dbapi_connection.execute("PRAGMA journal_mode = WAL")


def _lower(text: str | None) -> str | None:
    return text.lower() if isinstance(text, str) else text


@event.listens_for(Engine, "begin")
def _begin_sqlite(connection) -> None:
    """On SQLite a write request takes the write lock when it begins, so concurrent
    writers queue (up to the busy timeout) instead of failing when a read snapshot
    they took turns out stale; reads stay concurrent."""
    if connection.dialect.name == "sqlite":
        writing = has_request_context() and request.method not in SAFE_METHODS
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")
