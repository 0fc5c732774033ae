"""Migrations are the only source of the schema: they agree with the models, run
down and up, never give an id twice, and never load in a server."""

import os
import subprocess
import sys
import uuid

import pytest
import sqlalchemy
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from conftest import sign_in
from myapp.db import sql
from myapp.testing import migratable_app, book_body
from myapp.users.models import UserModel

# --- Migrations are the only source of the schema


def test_models_and_migrations_agree(app):
    with app.app_context():
        context = MigrationContext.configure(
            sql.session.connection(), opts={"compare_type": True}
        )
        assert compare_metadata(context, sql.metadata) == []


def test_emails_are_unique_in_any_case_in_the_database(app):
    with app.app_context():
        sql.session.add(
            UserModel(email="Same@Example.com", name="A", password_hash="x")
        )
        sql.session.flush()
        sql.session.add(
            UserModel(email="same@example.COM", name="B", password_hash="x")
        )
        with pytest.raises(sqlalchemy.exc.IntegrityError):
            sql.session.flush()
        sql.session.rollback()


def test_the_flask_db_commands_migrate_but_a_server_never_loads_alembic(
    tmp_path, redis_url
):
    """Flask-Migrate is set up for `flask db ...`; a worker importing wsgi.py does
    without it (12 MiB of Alembic per worker)."""
    env = {
        **os.environ,
        "MYAPP_ENV": "testing",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "REDIS_URL": redis_url,
    }
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    flask = [sys.executable, "-m", "flask", "--app", "myapp", "db"]
    upgraded = subprocess.run(
        flask + ["upgrade"], cwd=root, env=env, capture_output=True, text=True
    )
    assert upgraded.returncode == 0, upgraded.stderr
    current = subprocess.run(
        flask + ["current"], cwd=root, env=env, capture_output=True, text=True
    )
    assert "0007_keyset_indexes (head)" in current.stdout
    served = subprocess.run(
        [sys.executable, "-c", "import sys, wsgi; print('alembic' in sys.modules)"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    assert served.stdout.strip() == "False", served.stderr


def test_migrations_run_down_and_up_again(tmp_path, redis_url):
    import flask_migrate

    url = f"sqlite:///{tmp_path / 'roundtrip.db'}"
    app = migratable_app(url, redis_url)
    with app.app_context():
        flask_migrate.upgrade()
        flask_migrate.downgrade(revision="base")
        assert sqlalchemy.inspect(sql.engine).get_table_names() == ["alembic_version"]
        flask_migrate.upgrade()
        assert "users" in sqlalchemy.inspect(sql.engine).get_table_names()
        sql.engine.dispose()


@pytest.mark.parametrize(
    "collection, body",
    [
        (
            "/users/",
            lambda: {
                "email": f"{uuid.uuid4().hex}@example.com",
                "password": "correct horse battery",
                "name": "N",
            },
        ),
        ("/books/", book_body),
        ("/sites/", lambda: {"name": "Depot"}),
    ],
    ids=["users", "books", "sites"],
)
def test_an_id_is_never_given_again(client, admin, collection, body):
    """The newest row deleted, the next one made gets a new id: an old reference
    (a link, a log line, a token's subject) never points at a new owner."""
    made = client.post(collection, json=body(), headers=admin.headers)
    assert made.status_code == 201, made.get_json()
    first = made.get_json()["id"]
    gone = client.delete(f"{collection}{first}", headers=admin.headers)
    assert gone.status_code == 204
    again = client.post(collection, json=body(), headers=admin.headers)
    assert again.status_code == 201
    assert again.get_json()["id"] > first


def test_an_instruments_id_is_never_given_again(client, admin):
    site = client.post("/sites/", json={"name": "Lab"}, headers=admin.headers)
    instruments = f"/sites/{site.get_json()['id']}/freezers"
    first = client.post(instruments, json={"name": "A"}, headers=admin.headers)
    freezer = first.get_json()["id"]
    gone = client.delete(f"/sites/freezers/{freezer}", headers=admin.headers)
    assert gone.status_code == 204
    again = client.post(instruments, json={"name": "B"}, headers=admin.headers)
    assert again.status_code == 201 and again.get_json()["id"] > freezer


def test_sqlite_keeps_rows_ids_and_foreign_keys_through_the_autoincrement_rebuild(
    tmp_path, redis_url
):
    """Migration 0006 rebuilds SQLite's tables: the rows, their ids, the catalog's
    count triggers and foreign-key enforcement all come through, and an id given
    before the upgrade is not given again after a delete."""
    import flask_migrate

    url = f"sqlite:///{tmp_path / 'rebuild.db'}"
    app = migratable_app(url, redis_url)
    with app.app_context():
        flask_migrate.upgrade(revision="0005_canonical_emails")
        with sql.engine.begin() as connection:
            for statement in SEED_BEFORE_THE_REBUILD:
                connection.exec_driver_sql(statement)
        flask_migrate.upgrade()
        with sql.engine.begin() as connection:
            run = connection.exec_driver_sql
            assert run("SELECT id, title FROM books").all() == [(7, "Dune")]
            assert run("SELECT id, book_id, user_id FROM loans").all() == [(3, 7, 5)]
            assert run("SELECT row_count FROM row_counts").scalar_one() == 1
            assert run("PRAGMA foreign_keys").scalar_one() == 1
            with pytest.raises(sqlalchemy.exc.IntegrityError):
                run("DELETE FROM users WHERE id = 5")  # a member with a loan
        with sql.engine.begin() as connection:
            run = connection.exec_driver_sql
            run("DELETE FROM books WHERE id = 7")  # its loan goes with it
            assert run("SELECT count(*) FROM loans").scalar_one() == 0
            assert run("SELECT row_count FROM row_counts").scalar_one() == 0
            run(SEED_BEFORE_THE_REBUILD[1].replace("7, ", "NULL, "))
            assert run("SELECT id FROM books").scalar_one() == 8
        sql.engine.dispose()


SEED_BEFORE_THE_REBUILD = [
    "INSERT INTO users (id, email, email_canonical, name, role, password_hash, "
    "created_at, updated_at) VALUES (5, 'a@example.com', 'a@example.com', 'A', "
    "'member', 'x', '2026-01-01', '2026-01-01')",
    "INSERT INTO books (id, title, author, isbn, copies_total, copies_available, "
    "times_borrowed, created_at, updated_at) VALUES (7, 'Dune', 'Frank Herbert', "
    "'9780441013593', 1, 0, 1, '2026-01-01', '2026-01-01')",
    "INSERT INTO loans (id, book_id, user_id, borrowed_at, due_at) "
    "VALUES (3, 7, 5, '2026-01-01', '2026-01-15')",
]


def test_the_whole_flow_survives_a_real_commit(client, member):
    """Sanity: an account made through the API can sign in again later."""
    assert sign_in(client, member.email, member.password)["token_type"] == "Bearer"
