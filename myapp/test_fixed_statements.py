"""Fixed statements (myapp/fixed_statements.py): compiled once, sent as the driver's SQL
in the request's transaction, with what the compiled execution would have done
for them, on PostgreSQL and SQLite."""

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import bindparam, insert, select
from sqlalchemy.exc import IntegrityError

from myapp.books.loans import LoanModel, LoanStatements
from myapp.books.models import BookModel
from myapp.db import sql
from myapp.fixed_statements import FixedStatement

BOOKS = BookModel.__table__
LOANS = LoanModel.__table__


def test_a_write_binds_its_literals_and_its_typed_values(app, add_book, member):
    """take_a_copy subtracts and adds the literal 1 it was written with; the
    datetime it is given is stored as a datetime (text on SQLite, converted both
    ways); RETURNING rows come back as named tuples of converted values."""
    book = add_book(copies_total=3)
    moment = datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc)
    with app.test_request_context("/", method="POST"):
        connection = sql.session.connection()
        taken = LoanStatements.take_a_copy.run(connection, book=book["id"], now=moment)
        assert (taken.rowcount, taken.rows) == (1, [])
        stored = sql.session.execute(
            select(BOOKS).where(BOOKS.c.id == book["id"])
        ).one()
        assert (stored.copies_available, stored.times_borrowed) == (2, 1)
        assert stored.updated_at.replace(tzinfo=timezone.utc) == moment
        loan = LoanStatements.add_loan.run(
            connection,
            book=book["id"],
            member=member.id,
            now=moment,
            due=moment + timedelta(days=14),
            limit=5,
        ).rows
        assert [type(loan[0]).__name__, loan[0].book_id] == ["Row", book["id"]]
        borrowed = loan[0].borrowed_at
        assert (
            isinstance(borrowed, datetime)
            and borrowed.replace(tzinfo=timezone.utc) == moment
        )
        sql.session.rollback()


def test_a_statement_that_matches_nothing_says_so(app):
    with app.test_request_context("/", method="POST"):
        ran = LoanStatements.take_a_copy.run(
            sql.session.connection(), book=424242, now=datetime.now(timezone.utc)
        )
        assert (ran.rowcount, ran.rows) == (0, [])
        sql.session.rollback()


def test_a_driver_error_is_sqlalchemys(app, add_book, member):
    """The unique index's refusal is SQLAlchemy's IntegrityError, as the callers
    (a second borrow of the same book) expect."""
    book = add_book()
    statement = FixedStatement(
        insert(LOANS).values(
            book_id=bindparam("book"),
            user_id=bindparam("member"),
            borrowed_at=bindparam("now"),
            due_at=bindparam("now"),
        )
    )
    now = datetime.now(timezone.utc)
    with app.test_request_context("/", method="POST"):
        connection = sql.session.connection()
        statement.run(connection, book=book["id"], member=member.id, now=now)
        with pytest.raises(IntegrityError):
            statement.run(connection, book=book["id"], member=member.id, now=now)
        sql.session.rollback()


def test_a_parameter_not_given_is_named(app):
    with app.test_request_context("/", method="POST"):
        with pytest.raises(KeyError, match="now"):
            LoanStatements.take_a_copy.run(sql.session.connection(), book=1)
        sql.session.rollback()
