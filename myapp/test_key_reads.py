"""A GET's read by key on the pool's DBAPI connection (myapp/key_reads.py): the
same row the ORM reads, on PostgreSQL and SQLite, without the request's session."""

from datetime import datetime

import pytest
from sqlalchemy import text

from myapp.books.models import BookModel
from myapp.db import sql
from myapp.settings import READS
from myapp.transactions import commit
from myapp.users.models import UserModel


def test_a_key_read_gives_what_the_orm_reads(committing_app):
    with committing_app.test_request_context("/books/", method="POST"):
        book = BookModel.create(
            {
                "title": "Keyed",
                "author": "A",
                "isbn": "9780306406157",
                "copies_total": 2,
            }
        )
        commit()
        key = book.id
    with committing_app.test_request_context(f"/books/{key}"):
        row = BookModel.read_row(key)
        assert not sql.session.registry().in_transaction()  # not the session's
        assert type(row).__name__ == "Row" and isinstance(row, tuple)
        assert isinstance(row.created_at, datetime)  # SQLite keeps it as text
        assert BookModel.read_row(key + 1000) is None
        orm = sql.session.get(BookModel, key)
        assert BookModel.as_json(row) == orm.as_json()
        assert UserModel.read_row(key + 1000) is None


def test_a_write_reads_by_key_in_its_own_transaction(committing_app):
    """A borrow reads the book it changes: in the request's transaction, so it
    sees the request's own writes."""
    with committing_app.test_request_context("/books/", method="POST"):
        book = BookModel.create(
            {"title": "Mine", "author": "A", "isbn": "9780306406157", "copies_total": 1}
        )
        sql.session.flush()  # written, not committed
        assert BookModel.read_row(book.id).title == "Mine"
        sql.session.rollback()


def test_dead_pooled_connections_cost_a_read_nothing_and_held_ones_stay_pooled(
    committing_app, database_url
):
    """Every idle connection of the reads pool killed on the server (as a restart
    of PgBouncer would): the next read by key gives up each dead one it meets and
    answers 200. A healthy connection another request holds meanwhile goes back
    to the same pool, not to one discarded under it."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite's connections are files of the process")
    client = committing_app.test_client()
    with committing_app.test_request_context("/books/", method="POST"):
        book = BookModel.create(
            {"title": "Dead", "author": "A", "isbn": "9780306406157"}
            | {"copies_total": 1}
        )
        commit()
        key = book.id
    with committing_app.app_context():
        reads = sql.engines[READS]
        pool = reads.pool
        idle = [reads.connect() for _ in range(3)]
        pids = [c.connection.dbapi_connection.info.backend_pid for c in idle]
        for connection in idle:
            connection.close()  # back to the pool, idle
        held = reads.connect()
        with sql.engine.connect() as admin:
            for pid in pids:
                admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        response = client.get(f"/books/{key}")
        assert response.status_code == 200, response.json
        assert response.json["title"] == "Dead"
        held.close()
        assert reads.pool is pool  # not discarded
        assert pool.checkedin() >= 1 and pool.checkedout() == 0
