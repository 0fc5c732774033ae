"""Loans: borrowing and returning a copy, each a few Core statements built once
(LoanStatements). One open loan per member and book, and the cap on a member's
open loans, hold under any number of concurrent requests on both databases."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import (
    DateTime,
    ForeignKey,
    Index,
    and_,
    bindparam,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from myapp.books.models import BookModel, after_catalog_change
from myapp.db import sql
from myapp.errors import conflict, not_found
from myapp.pagination import ListQuery, Page
from myapp.fixed_statements import FixedStatement
from myapp.schema import TIMESTAMP, object_schema
from myapp.sql_model import SqlModel, iso, utcnow
from myapp.users.models import UserModel


class LoanModel(SqlModel, sql.Model):
    __tablename__ = "loans"
    label = "Loan"

    id: Mapped[int] = mapped_column(primary_key=True)
    book_id: Mapped[int] = mapped_column(ForeignKey("books.id", ondelete="CASCADE"))
    # A member with loans on record cannot be deleted (RESTRICT): the library's
    # history stays whole.
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    borrowed_at = mapped_column(DateTime(timezone=True), nullable=False)
    due_at = mapped_column(DateTime(timezone=True), nullable=False)
    returned_at = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        # One open loan per member and book: the database refuses a second.
        Index(
            "uq_loans_open_per_member_book",
            user_id,
            book_id,
            unique=True,
            postgresql_where=returned_at.is_(None),
            sqlite_where=returned_at.is_(None),
        ),
        Index("ix_loans_user_id_returned_at", user_id, returned_at),
        Index("ix_loans_book_id", book_id),
    )
    sort_columns = {
        "id": "id",
        "borrowed_at": "borrowed_at",
        "due_at": "due_at",
        "returned_at": "returned_at",
    }

    read_schema = object_schema(
        "Loan",
        {
            "id": {"type": "integer"},
            "book_id": {"type": "integer"},
            "user_id": {"type": "integer"},
            "borrowed_at": TIMESTAMP,
            "due_at": TIMESTAMP,
            "returned_at": {"type": ["string", "null"], "format": "date-time"},
        },
    )
    # Borrowing takes no body: the book is in the URL, the member is the caller.
    write_schema = {
        "title": "LoanWrite",
        "type": "object",
        "additionalProperties": False,
        "properties": {},
    }

    def as_json(self) -> dict:
        return {
            "id": self.id,
            "book_id": self.book_id,
            "user_id": self.user_id,
            "borrowed_at": iso(self.borrowed_at),
            "due_at": iso(self.due_at),
            "returned_at": iso(self.returned_at),
        }

    @classmethod
    def create(cls, book_id: int, user_id: int):
        """Borrow a copy: 404 for no such book, 409 when no copy is left, the member
        already has this book, or holds MAX_OPEN_LOANS loans. Returns the loan's row.

        Three statements on the way to the commit: lock the member and read their
        open loans, insert the loan, take a copy; statements compiled once, on the
        tables, without the ORM's unit of work (each measured in bench/). The checks
        that refuse stop after the first."""
        open_loans, copies_left = cls.lock_member(user_id, book_id)
        if copies_left is None:
            raise not_found(BookModel.label)
        cls.check_member_may_borrow(book_id, open_loans)
        if copies_left == 0:
            raise conflict("No copy of this book is left to borrow")
        # The loan goes in before the copy is taken, in the order a return locks
        # them (its loan, then the book): in the other order a borrow waiting on
        # the unique index for a return of the same book, which waits for the
        # book's row, would be a deadlock.
        now = utcnow()
        loan = cls.add_loan(book_id, user_id, now)
        taken = LoanStatements.take_a_copy.run(
            sql.session.connection(), book=book_id, now=now
        )
        if taken.rowcount == 0:  # taken or deleted since the first statement
            sql.session.rollback()
            BookModel.read_row_or_404(book_id)
            raise conflict("No copy of this book is left to borrow")
        after_catalog_change()
        return loan

    @staticmethod
    def add_loan(book_id: int, user_id: int, now: datetime):
        """Insert the loan, due LOAN_DAYS from now, if the member is under the cap
        as the insert itself counts it (LoanStatements.add_loan). Returns its row."""
        config = current_app.config
        # A refused borrow writes nothing: no savepoint (two round trips on every
        # borrow), the transaction goes.
        try:
            rows = LoanStatements.add_loan.run(
                sql.session.connection(),
                book=book_id,
                member=user_id,
                now=now,
                due=now + timedelta(days=config["LOAN_DAYS"]),
                limit=config["MAX_OPEN_LOANS"],
            ).rows
        except IntegrityError:  # one open loan per book and member, or no book
            sql.session.rollback()
            BookModel.read_row_or_404(book_id)
            raise conflict("You already have this book on loan") from None
        if not rows:  # a loan committed while this one waited for the member
            sql.session.rollback()
            raise cap_reached()
        return rows[0]

    @classmethod
    def lock_member(cls, user_id: int, book_id: int) -> tuple[list[int], int | None]:
        """Lock the member's row (one borrow at a time per member, so the open-loan
        count stays true) and read, in the same query, the books they have on loan
        and the copies of this book left (None: no such book; not locked)."""
        rows = LoanStatements.lock_member.run(
            sql.session.connection(), member=user_id, book=book_id
        ).rows
        if not rows:  # deleted since its token was checked
            raise not_found(UserModel.label)
        return [book for book, _ in rows if book is not None], rows[0][1]

    @staticmethod
    def check_member_may_borrow(book_id: int, open_loans: list[int]) -> None:
        if book_id in open_loans:
            raise conflict("You already have this book on loan")
        if len(open_loans) >= current_app.config["MAX_OPEN_LOANS"]:
            raise cap_reached()

    @classmethod
    def get_for(cls, loan_id: int, identity) -> "LoanModel":
        """A loan its owner or staff may see; to anyone else it does not exist."""
        loan = sql.session.get(cls, loan_id)
        if loan is None or not (
            loan.user_id == identity.user_id or identity.has_role("staff")
        ):
            raise not_found(cls.label)
        return loan

    @classmethod
    def list(cls, query: ListQuery, identity) -> Page:
        statement = select(cls)
        if not identity.has_role("staff"):
            statement = statement.where(cls.user_id == identity.user_id)
        if "user_id" in query.filters:
            statement = statement.where(cls.user_id == query.filters["user_id"])
        if "open" in query.filters:
            is_open = cls.returned_at.is_(None)
            statement = statement.where(is_open if query.filters["open"] else ~is_open)
        return cls.page(statement, query)

    @classmethod
    def give_back(cls, loan_id: int, identity):
        """Return a loan's copy (its borrower, or staff): 404 as for `get_for`, 409 if
        it was already returned (also when two returns race: only one UPDATE finds
        it open). Two statements compiled once when it succeeds: mark the loan, put the
        copy back. Returns the loan's row."""
        own = not identity.has_role("staff")
        now = utcnow()
        marked = (LoanStatements.return_own if own else LoanStatements.return_any).run(
            sql.session.connection(), loan=loan_id, member=identity.user_id, now=now
        )
        if not marked.rows:
            cls.get_for(loan_id, identity)  # 404 for no such loan, or not theirs
            raise conflict("This loan was already returned")
        loan = marked.rows[0]
        LoanStatements.put_a_copy_back.run(
            sql.session.connection(), book=loan.book_id, now=now
        )
        after_catalog_change()
        return loan


def cap_reached():
    limit = current_app.config["MAX_OPEN_LOANS"]
    return conflict(f"You already have {limit} books on loan; return one first")


class LoanStatements:
    """The statements of a borrow and a return, built once with bound parameters
    and compiled once (myapp/fixed_statements.py), in the request's transaction (the
    session's connection): building a Core statement per request cost about as
    much Python as running it, and running it through `Session.execute` about a
    half more than sending it compiled (bench/ANALYSIS.md). Parameters: member,
    book, loan, now. A book's `updated_at` is written by the statements that
    change it, as the ORM's onupdate would."""

    loans, users, books = LoanModel.__table__, UserModel.__table__, BookModel.__table__
    lock_member = FixedStatement(
        select(
            loans.c.book_id,
            select(books.c.copies_available)
            .where(books.c.id == bindparam("book"))
            .scalar_subquery(),
        )
        .select_from(
            users.outerjoin(
                loans,
                and_(loans.c.user_id == users.c.id, loans.c.returned_at.is_(None)),
            )
        )
        .where(users.c.id == bindparam("member"))
        .with_for_update(of=users)
    )
    take_a_copy = FixedStatement(
        update(books)
        .where(books.c.id == bindparam("book"), books.c.copies_available > 0)
        .values(
            copies_available=books.c.copies_available - 1,
            times_borrowed=books.c.times_borrowed + 1,
            updated_at=bindparam("now"),
        )
    )
    open_loans = (
        select(func.count())
        .select_from(loans)
        .where(loans.c.user_id == bindparam("member"), loans.c.returned_at.is_(None))
        .scalar_subquery()
    )
    # The loan goes in only while the member is under the cap, as this statement
    # counts it. It runs after the member's row was locked, so it sees every loan
    # committed before: the locking statement cannot, PostgreSQL keeping the view
    # it had when it began to wait for the lock (read committed).
    add_loan = FixedStatement(
        insert(loans)
        .from_select(
            ["book_id", "user_id", "borrowed_at", "due_at"],
            select(
                bindparam("book", type_=loans.c.book_id.type),
                bindparam("member", type_=loans.c.user_id.type),
                bindparam("now", type_=loans.c.borrowed_at.type),
                bindparam("due", type_=loans.c.due_at.type),
            ).where(open_loans < bindparam("limit")),
        )
        .returning(*loans.c)
    )
    return_any = FixedStatement(
        update(loans)
        .where(loans.c.id == bindparam("loan"), loans.c.returned_at.is_(None))
        .values(returned_at=bindparam("now"))
        .returning(*loans.c)
    )
    return_own = FixedStatement(
        return_any.statement.where(loans.c.user_id == bindparam("member"))
    )
    put_a_copy_back = FixedStatement(
        update(books)
        .where(books.c.id == bindparam("book"))
        .values(
            copies_available=books.c.copies_available + 1, updated_at=bindparam("now")
        )
    )
