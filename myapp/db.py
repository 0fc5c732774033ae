"""The extension objects, created unbound; create_app binds them. Features import
from here, never from the app."""

from flask import current_app, has_request_context, request
from flask_caching import Cache
from flask_cors import CORS
from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.session import Session
from sqlalchemy import MetaData
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase

from myapp import redis_url
from myapp.breaker import Breaker
from myapp.settings import READS
from myapp.stalls import take_database_slot

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


def reading() -> bool:
    return has_request_context() and request.method in SAFE_METHODS


class RequestSession(Session):
    """On PostgreSQL, a GET reads in autocommit mode: each statement is its own
    transaction, so a read costs one round trip rather than BEGIN, the query and a
    ROLLBACK. Its connections come from the READS engine, whose pool keeps them in
    autocommit: switching a pooled connection there and back on every read cost
    more CPU than the read itself (bench/COMPONENTS.md). Writes keep one
    transaction per request, on the default engine."""

    def get_bind(self, *args, **kwargs):
        return request_bind(super().get_bind(*args, **kwargs))


def request_bind(bind):
    """The bind this request reads and writes through, given the default one: a
    GET's is the READS engine on PostgreSQL. A Connection (the tests' outer
    transaction) is left as it is. Every use of the database in a request comes
    through here, so here the request takes its database slot (myapp/stalls.py)."""
    take_database_slot()
    if isinstance(bind, Engine) and reading():
        return sql.engines.get(READS, bind)
    return bind


sql = SQLAlchemy(model_class=Base, session_options={"class_": RequestSession})


# After a Redis timeout, how long each process refuses Redis calls at once (myapp/
# breaker.py) before one request tries again: short, as Redis recovers in moments.
REDIS_STALL_SECONDS = 1.0


class AppRedis:
    """The app's one Redis client, made from REDIS_URL (myapp/redis_url.py: a
    server, a socket or Sentinel) with REDIS_SOCKET_TIMEOUT on every connection,
    and a breaker that refuses calls at once for a moment after one timed out.
    The rate limits and the cache use the same client, so all three follow one
    server. Each app has its own (two instances in a test never
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
        app.config["CACHE_REDIS_HOST"] = client  # cachelib takes a client as host

    def __getattr__(self, name):
        return getattr(current_app.extensions["myapp.redis"], name)


redis_store = AppRedis()


cors = CORS()
cache = Cache()
