"""Faults, for real: a live gunicorn on its own PostgreSQL and Redis, which these
tests stop, freeze (SIGSTOP) and bring back, checking what clients see meanwhile
and that the service recovers without a restart. The same faults under a steady
load, on gunicorn and uWSGI: myapp/test_faults_under_load.py."""

import concurrent.futures
import contextlib
import time
import uuid

import psycopg
import pytest
import redis as redis_client
import requests
import sqlalchemy

from myapp.throwaway import server_log, wsgi_server
from myapp.books.models import isbn13
from myapp.db import sql
from myapp.ops import IN_MEMORY
from myapp.testing import (
    PASSWORD,
    assert_unavailable,
    eventually,
    free_port,
    post_as_a_client,
    staff_token,
)


@pytest.fixture(scope="module")
def server(backing, workdir):
    postgres, redis, _app = backing
    with wsgi_server(
        workdir,
        workers=2,
        DATABASE_URL=postgres.url,
        REDIS_URL=redis.url,
        DATABASE_LOCK_TIMEOUT_MS="500",
        RATELIMIT_DEFAULT="100000 per hour",
        RATELIMIT_LOGIN="100000 per minute",
    ) as base:
        yield base


@pytest.fixture
def staff_headers(backing, server):
    """A staff account, signed in through the live server."""
    return {"Authorization": f"Bearer {staff_token(backing[2], server)}"}


@pytest.fixture
def book(server, staff_headers):
    body = {
        "title": "Resilience",
        "author": "A. Uthor",
        "isbn": isbn13(uuid.uuid4().int % 10**9),
        "copies_total": 2,
    }
    response = post_as_a_client(f"{server}/books/", json=body, headers=staff_headers)
    assert response.status_code == 201, response.text
    return response.json()


# --- Redis


@pytest.mark.parametrize("fault", ["frozen", "down"])
def test_without_redis_the_catalog_reads_and_session_checks_are_503(
    backing, server, staff_headers, book, fault
):
    _postgres, redis, _app = backing
    redis.freeze() if fault == "frozen" else redis.stop()
    try:
        started = time.monotonic()
        assert requests.get(f"{server}/books/").status_code == 200
        assert requests.get(f"{server}/books/{book['id']}").status_code == 200
        assert requests.get(f"{server}/books/popular").status_code == 200
        assert time.monotonic() - started < 10  # socket timeouts, not hangs
        assert_unavailable(requests.get(f"{server}/users/me", headers=staff_headers))
        readiness = assert_unavailable(
            requests.get(f"{server}/readiness"), names="redis"
        )
        assert {"field": "rate_limits", "problem": IN_MEMORY} in readiness["details"]
    finally:
        redis.thaw() if fault == "frozen" else redis.start()

    def recovered():
        response = requests.get(f"{server}/readiness")
        assert response.status_code == 200, response.text
        me = requests.get(f"{server}/users/me", headers=staff_headers)
        # A restarted Redis lost its sessions: the token is then simply revoked.
        assert me.status_code == (200 if fault == "frozen" else 401)

    eventually(recovered)


@contextlib.contextmanager
def redis_refusing_writes(redis, fault: str):
    """A Redis that answers but takes no write: full (maxmemory reached under
    noeviction), or a replica (read-only, as during a failover)."""
    client = redis_client.Redis.from_url(redis.url)
    if fault == "full":
        client.config_set("maxmemory", 1)
    else:
        client.replicaof("127.0.0.1", free_port())  # a primary that never answers
    try:
        yield
    finally:
        if fault == "full":
            client.config_set("maxmemory", 0)
        else:
            client.replicaof("NO", "ONE")
        client.close()


def follow_up_failures(server: str, step: str) -> float:
    metrics = requests.get(f"{server}/metrics").text
    line = f'myapp_follow_up_failures_total{{step="{step}"}} '
    return sum(
        float(row.split()[-1]) for row in metrics.splitlines() if row.startswith(line)
    )


@pytest.mark.parametrize(
    "fault, problem",
    [
        ("full", "full: maxmemory reached, writes refused"),
        ("read-only", "read-only: a replica"),
    ],
)
def test_a_redis_refusing_writes_is_503_never_500(
    backing, server, staff_headers, book, fault, problem
):
    """Every write Redis refuses is a 503 with Retry-After wherever it happens;
    what happens after a commit is logged and counted; readiness says why."""
    _postgres, redis, _app = backing
    url = f"{server}/books/{book['id']}"
    body = {"email": f"member-{uuid.uuid4().hex[:8]}@example.com", "password": PASSWORD}
    assert requests.post(f"{server}/users/", json={**body, "name": "M"}).ok
    invalidations = follow_up_failures(server, "popular books cache invalidated")
    with redis_refusing_writes(redis, fault):
        assert_unavailable(requests.post(f"{server}/users/tokens", json=body))
        keyed = {**staff_headers, "Idempotency-Key": uuid.uuid4().hex}
        assert_unavailable(requests.post(f"{url}/loans", headers=keyed))
        assert requests.get(url).json()["copies_available"] == 2  # nothing written
        assert requests.get(f"{server}/users/me", headers=staff_headers).ok
        assert requests.get(f"{server}/books/popular").status_code == 200
        # A borrow without a key needs no Redis write before its commit: it is
        # made; the cache invalidation after it is not, and is counted.
        assert requests.post(f"{url}/loans", headers=staff_headers).status_code == 201

        def names_the_fault():
            readiness = assert_unavailable(requests.get(f"{server}/readiness"))
            assert {"field": "redis", "problem": problem} in readiness["details"]

        # On a loaded machine one check may pass its 0.5 s and be told "stalled",
        # which is true at that moment: the next names the fault.
        eventually(names_the_fault, seconds=5)
    assert follow_up_failures(server, "popular books cache invalidated") > invalidations

    def ready():
        response = requests.get(f"{server}/readiness")
        assert response.status_code == 200, response.text

    eventually(ready)  # `eventually` retries a failed assertion, not an HTTPError


@pytest.mark.parametrize("policy", ["allkeys-lru", "volatile-ttl"])
def test_readiness_refuses_an_eviction_policy_that_drops_sessions(
    backing, server, policy
):
    _postgres, redis, _app = backing
    client = redis_client.Redis.from_url(redis.url)
    client.config_set("maxmemory-policy", policy)
    try:
        body = assert_unavailable(requests.get(f"{server}/readiness"))
        problem = f"maxmemory-policy is {policy}: it can evict sessions and rate limits"
        assert {"field": "redis", "problem": problem} in body["details"]
    finally:
        client.config_set("maxmemory-policy", "noeviction")
        client.close()
    assert requests.get(f"{server}/readiness").status_code == 200


def test_rate_limits_hold_per_process_while_redis_is_down(backing, workdir):
    postgres, redis, _app = backing
    with wsgi_server(
        workdir,
        workers=1,
        DATABASE_URL=postgres.url,
        REDIS_URL=redis.url,
        RATELIMIT_DEFAULT="3 per minute",
    ) as base:
        redis.stop()
        try:
            statuses = [requests.get(f"{base}/books/").status_code for _ in range(4)]
        finally:
            redis.start()
        again = requests.get(f"{base}/books/")
    assert statuses == [200, 200, 200, 429]
    # Redis answers again: the next request counts there at once (a Redis restarted
    # empty: its first hit), and the log says so.
    assert again.status_code == 200
    assert again.headers["X-RateLimit-Remaining"] == "2"
    log = open(server_log(workdir, base)).read()
    assert "Rate limit storage unreachable" in log
    assert "Rate limits count in Redis again" in log


# --- PostgreSQL


def test_a_held_lock_is_503_and_writes_nothing(backing, server, staff_headers, book):
    postgres, _redis, _app = backing
    engine = sqlalchemy.create_engine(postgres.url, poolclass=sqlalchemy.NullPool)
    url = f"{server}/books/{book['id']}"
    with engine.connect() as holder:
        holder.execute(
            sqlalchemy.text("SELECT id FROM books WHERE id = :id FOR UPDATE"),
            {"id": book["id"]},
        )
        started = time.monotonic()
        response = requests.patch(url, json={"title": "Changed"}, headers=staff_headers)
        assert time.monotonic() - started < 5  # lock_timeout, not a hung worker
        assert_unavailable(response)
        response = requests.get(f"{server}/readiness")
        assert response.status_code == 200, response.text
        holder.rollback()
    engine.dispose()
    assert requests.get(url).json()["title"] == "Resilience"
    changed = requests.patch(url, json={"title": "Changed"}, headers=staff_headers)
    assert changed.status_code == 200


def test_a_restarted_postgres_costs_no_read(backing, server, book):
    """PostgreSQL restarted between two requests: every connection in the workers'
    pools is dead, and pools are not pinged. A worker's first read meets one, and
    runs again on a new connection: no read fails, whichever worker takes it."""
    postgres, _redis, app = backing
    for _ in range(6):  # every worker holds a pooled connection
        assert requests.get(f"{server}/books/{book['id']}").status_code == 200
    postgres.stop()
    postgres.start()
    for _ in range(6):
        assert requests.get(f"{server}/books/{book['id']}").status_code == 200
    with app.app_context():
        sql.engine.dispose()  # its pool still held connections from before


def test_a_slow_statement_is_cancelled_by_the_server_before_its_deadline(backing):
    """The server's statement_timeout ends a slow statement first, cleanly: the
    client's deadline (half a second later) never cuts a connection that is only
    slow, so it stays in the pool."""
    _postgres, _redis, app = backing
    with app.app_context():
        started = time.monotonic()
        with pytest.raises(sqlalchemy.exc.OperationalError) as refused:
            sql.session.execute(sqlalchemy.text("SELECT pg_sleep(5)"))
        assert isinstance(refused.value.orig, psycopg.errors.QueryCanceled)
        assert 2 <= time.monotonic() - started < 2.5
        assert not refused.value.connection_invalidated
        sql.session.rollback()
        assert sql.session.execute(sqlalchemy.text("SELECT 1")).scalar_one() == 1
        sql.session.remove()


def test_a_read_waits_out_a_database_restart(backing, server, book):
    """A read that finds the database gone (refused: a restart of PostgreSQL or
    PgBouncer takes about 0.1 s) tries again for up to a second, so the restart
    costs it some latency, not a 503."""
    postgres, _redis, app = backing
    postgres.stop()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        read = pool.submit(requests.get, f"{server}/books/{book['id']}")
        time.sleep(0.4)  # the read has met the refusal and is waiting
        postgres.start()
        assert read.result().status_code == 200
        assert time.monotonic() - started < 1.5
    for _ in range(6):  # and the other worker's dead pool is replaced by a read
        assert requests.get(f"{server}/books/{book['id']}").status_code == 200
    with app.app_context():
        sql.engine.dispose()  # its pool still held connections from before


def test_without_postgres_everything_is_503_then_recovers(
    backing, server, staff_headers, book
):
    postgres, _redis, app = backing
    postgres.stop()
    try:
        assert_unavailable(requests.get(f"{server}/books/"))
        borrow = requests.post(
            f"{server}/books/{book['id']}/loans", headers=staff_headers
        )
        assert_unavailable(borrow)
        assert_unavailable(requests.get(f"{server}/readiness"), names="database")
        assert requests.get(f"{server}/healthz").status_code == 200
    finally:
        postgres.start()

    def recovered():
        assert requests.get(f"{server}/books/").status_code == 200
        response = requests.get(f"{server}/readiness")
        assert response.status_code == 200, response.text
        # Reads that met the outage replaced their worker's pool; every worker
        # answers again once PostgreSQL is back.
        for _ in range(6):
            assert requests.get(f"{server}/books/{book['id']}").status_code == 200

    eventually(recovered)
    # The failed borrow left nothing behind.
    assert requests.get(f"{server}/books/{book['id']}").json()["copies_available"] == 2
    with app.app_context():
        sql.engine.dispose()  # its pool still held connections from before the stop
