"""The app through PgBouncer in transaction pooling mode (Debian's pgbouncer, in
front of the tests' PostgreSQL), with DATABASE_TRANSACTION_POOLER set: parallel
requests share two server connections, so a statement psycopg prepared on one
would be unknown (or already known) on the next; reads run in autocommit; the
timeouts the app can no longer send come from the database role and still cancel.
"""

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import flask_migrate
import pytest
import sqlalchemy

from conftest import PASSWORD, sign_in
from myapp import create_app
from myapp.db import sql
from myapp.testing import book_body, free_port
from myapp.users.models import UserModel

pytestmark = pytest.mark.skipif(
    not shutil.which("pgbouncer"), reason="needs Debian's pgbouncer"
)
STATEMENT_TIMEOUT_MS = 400


@pytest.fixture(scope="module")
def database(postgres_server_url):
    """A database of its own (its role settings must not reach other tests),
    migrated, with the timeouts set on the role in it."""
    name = f"myapp_pooled_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(
        postgres_server_url, isolation_level="AUTOCOMMIT", poolclass=sqlalchemy.NullPool
    )
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        role = connection.exec_driver_sql("SELECT current_user").scalar_one()
        for setting, value in (
            ("statement_timeout", STATEMENT_TIMEOUT_MS),
            ("lock_timeout", 200),
        ):
            connection.exec_driver_sql(
                f'ALTER ROLE "{role}" IN DATABASE "{name}" SET {setting} = {value}'
            )
    url = sqlalchemy.engine.make_url(postgres_server_url).set(database=name)
    yield url
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture(scope="module")
def pgbouncer(database, tmp_path_factory):
    """PgBouncer on a free port: transaction pooling, two server connections."""
    directory = tmp_path_factory.mktemp("pgbouncer")
    directory.chmod(0o777)  # pgbouncer will not run as root: as postgres, it logs here
    socket_dir = parse_qs(urlsplit(str(database)).query).get("host", ["127.0.0.1"])[0]
    port = free_port()
    user = database.username or "postgres"
    (directory / "users.txt").write_text(f'"{user}" ""\n')
    (directory / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"myapp = host={socket_dir} port={database.port or 5432} "
        f"dbname={database.database} user={user}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\n"
        f"unix_socket_dir =\nauth_type = trust\nauth_file = {directory}/users.txt\n"
        "pool_mode = transaction\ndefault_pool_size = 2\nmax_client_conn = 100\n"
        f"logfile = {directory}/pgbouncer.log\n"
    )
    server = subprocess.Popen(
        ["pgbouncer", str(directory / "pgbouncer.ini")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        **({"user": "postgres"} if os.geteuid() == 0 else {}),
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"postgresql://{user}@127.0.0.1:{port}/myapp"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=10)


@pytest.fixture(scope="module")
def pooled_app(pgbouncer, redis_url):
    app = create_app(
        "testing",
        {
            "SQLALCHEMY_DATABASE_URI": pgbouncer,
            "REDIS_URL": redis_url,
            "DATABASE_TRANSACTION_POOLER": True,
        },
    )
    with app.app_context():
        flask_migrate.upgrade()
    yield app
    with app.app_context():
        sql.engine.dispose()


def test_the_api_works_through_a_transaction_pooler(pooled_app):
    client = pooled_app.test_client()
    email = f"pooled-{uuid.uuid4().hex[:8]}@example.com"
    with pooled_app.app_context():
        UserModel.create({"email": email, "password": PASSWORD, "name": "A"}, "admin")
        sql.session.commit()
    headers = {
        "Authorization": f"Bearer {sign_in(client, email, PASSWORD)['access_token']}"
    }
    book = client.post("/books/", json=book_body(copies_total=50), headers=headers)
    assert book.status_code == 201
    book_id = book.get_json()["id"]

    def borrow_and_return(_):
        """The same statements, again and again, from many connections: past
        psycopg's threshold (5) for preparing them on the server."""
        loan = client.post(f"/books/{book_id}/loans", json={}, headers=headers)
        assert loan.status_code == 201, loan.get_json()
        back = client.post(
            f"/books/loans/{loan.get_json()['id']}/return", headers=headers
        )
        assert back.status_code == 200, back.get_json()
        read = client.get(f"/books/{book_id}")  # autocommit, on any server conn
        assert read.status_code == 200, read.get_json()
        return read.get_json()["copies_available"]

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(borrow_and_return, range(40)))
    final = client.get(f"/books/{book_id}").get_json()
    assert final["copies_available"] == 50 and final["times_borrowed"] == 40
    assert client.get("/readiness").status_code == 200


def test_the_roles_timeouts_hold_through_the_pooler(pooled_app):
    with pooled_app.app_context():
        with pytest.raises(sqlalchemy.exc.OperationalError, match="statement timeout"):
            sql.session.execute(sqlalchemy.text("SELECT pg_sleep(2)"))
        sql.session.rollback()
        setting = sql.session.execute(sqlalchemy.text("SHOW statement_timeout"))
        assert setting.scalar_one() == f"{STATEMENT_TIMEOUT_MS}ms"
