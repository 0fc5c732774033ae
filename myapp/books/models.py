"""The catalog (books) and its loans. Copy accounting is done by conditional SQL
updates, so it holds under any number of concurrent requests on both databases."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app
from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    and_,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from redis.exceptions import RedisError

from myapp.db import after_commit, cache, sql
from myapp.errors import conflict, not_found
from myapp.outages import is_outage
from myapp.pagination import ListQuery
from myapp.schema import TIMESTAMP, object_schema, patch_form, text_schema, validate
from myapp.sql_model import (
    SqlModel,
    Timestamped,
    contains_any_case,
    equals_any_case,
    iso,
    utcnow,
)
from myapp.users.models import UserModel

ISBN = {
    "type": "string",
    "pattern": "^[0-9]{9}[0-9X]$|^[0-9]{13}$",
    "format": "isbn",
    "description": "ISBN-10 or ISBN-13, digits only, with a valid check digit",
}
MAX_COPIES = 10_000
POPULAR_MAX = 50
POPULAR_CACHE_KEY = "books:popular"
# Entries expire soon, bounding staleness should a generation bump ever be lost
# (Redis unreachable at the moment a change committed).
POPULAR_CACHE_SECONDS = 60


def isbn13(number: int) -> str:
    """The ISBN-13 with prefix 978 and this 9-digit number, check digit computed."""
    body = f"978{number:09d}"
    total = sum((3 if index % 2 else 1) * int(d) for index, d in enumerate(body))
    return body + str((10 - total % 10) % 10)


class BookModel(SqlModel, Timestamped, sql.Model):
    __tablename__ = "books"
    label = "Book"
    counted = True  # migration 0004's triggers keep its row count

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    author: Mapped[str] = mapped_column(String(200))
    isbn: Mapped[str] = mapped_column(String(13), unique=True)
    published_year: Mapped[int | None] = mapped_column(Integer)
    copies_total: Mapped[int] = mapped_column(Integer)
    copies_available: Mapped[int] = mapped_column(Integer)
    times_borrowed: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        CheckConstraint(
            "copies_available >= 0 AND copies_available <= copies_total",
            name="copies",
        ),
        CheckConstraint("times_borrowed >= 0", name="times_borrowed"),
        # /books/popular reads its order from this index.
        Index("ix_books_popular", times_borrowed.desc(), id),
        Index("ix_books_title", title),
        Index("ix_books_author", author),
        Index("ix_books_published_year", published_year),
        # By name: created_at is the Timestamped mixin's, each table's own copy.
        Index("ix_books_created_at", "created_at"),
    )
    sort_columns = {
        "title": "title",
        "author": "author",
        "published_year": "published_year",
        "times_borrowed": "times_borrowed",
        "created_at": "created_at",
    }

    write_schema = {
        "title": "BookWrite",
        "type": "object",
        "additionalProperties": False,
        "required": ["title", "author", "isbn", "copies_total"],
        "properties": {
            "title": text_schema(300),
            "author": text_schema(200),
            "isbn": ISBN,
            "published_year": {
                "type": ["integer", "null"],
                "minimum": 0,
                "maximum": 2100,
            },
            "copies_total": {"type": "integer", "minimum": 0, "maximum": MAX_COPIES},
        },
    }
    patch_schema = patch_form(write_schema, title="BookPatch")
    read_schema = object_schema(
        "Book",
        {
            "id": {"type": "integer"},
            "title": {"type": "string"},
            "author": {"type": "string"},
            "isbn": {"type": "string"},
            "published_year": {"type": ["integer", "null"]},
            "copies_total": {"type": "integer", "minimum": 0},
            "copies_available": {"type": "integer", "minimum": 0},
            "times_borrowed": {"type": "integer", "minimum": 0},
            "created_at": TIMESTAMP,
            "updated_at": TIMESTAMP,
        },
    )

    def as_json(self) -> dict:
        return {
            "id": self.id,
            "title": self.title,
            "author": self.author,
            "isbn": self.isbn,
            "published_year": self.published_year,
            "copies_total": self.copies_total,
            "copies_available": self.copies_available,
            "times_borrowed": self.times_borrowed,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }

    @classmethod
    def list(cls, query: ListQuery) -> tuple[list["BookModel"], int]:
        statement = select(cls)
        filters = query.filters
        if "q" in filters:
            statement = statement.where(
                contains_any_case(filters["q"], cls.title, cls.author)
            )
        if "author" in filters:
            statement = statement.where(equals_any_case(cls.author, filters["author"]))
        if "available" in filters:
            available = cls.copies_available > 0
            statement = statement.where(
                available if filters["available"] else ~available
            )
        return cls.page(statement, query)

    @classmethod
    def create(cls, data: dict) -> "BookModel":
        validate(cls.write_schema, data)
        book = cls(**data, copies_available=data["copies_total"], times_borrowed=0)
        sql.session.add(book)
        book.flush_unique_isbn()
        after_catalog_change()
        return book

    def update(self, data: dict, *, replace: bool) -> None:
        """PUT (replace=True: every writable field) or PATCH. copies_total may not
        drop below the copies on loan; available copies move with it."""
        validate(self.write_schema if replace else self.patch_schema, data)
        if replace:
            data = {"published_year": None, **data}
        if "copies_total" in data:
            self.set_copies_total(data.pop("copies_total"))
        for key, value in data.items():
            setattr(self, key, value)
        self.flush_unique_isbn()
        after_catalog_change()

    def flush_unique_isbn(self) -> None:
        """The unique index decides, so two clients racing for one ISBN cannot
        both win."""
        self.flush_or_conflict("A book with this ISBN already exists", "isbn")

    def set_copies_total(self, total: int) -> None:
        on_loan = BookModel.copies_total - BookModel.copies_available
        changed = sql.session.execute(
            update(BookModel)
            .where(BookModel.id == self.id, on_loan <= total)
            .values(
                copies_available=BookModel.copies_available
                + (total - BookModel.copies_total),
                copies_total=total,
                updated_at=utcnow(),
            )
            .execution_options(synchronize_session=False)
        )
        if changed.rowcount == 0:
            raise conflict(
                "copies_total cannot drop below the copies on loan",
                [{"field": "copies_total", "problem": "below the copies on loan"}],
            )
        sql.session.refresh(self, ["copies_total", "copies_available", "updated_at"])

    def delete(self) -> None:
        """Refused while a copy is on loan; the book's returned loans go with it."""
        removed = sql.session.execute(
            delete(BookModel)
            .where(
                BookModel.id == self.id,
                BookModel.copies_available == BookModel.copies_total,
            )
            .execution_options(synchronize_session=False)
        )
        if removed.rowcount == 0:
            raise conflict("The book has copies on loan; they must be returned first")
        sql.session.expunge(self)
        after_catalog_change()

    @classmethod
    def popular(cls, limit: int) -> list[dict]:
        """The most borrowed books, from the index on (times_borrowed DESC, id);
        cached until the next change to the catalog or its loans."""
        generation = cache_generation()
        top = cache_get(f"{POPULAR_CACHE_KEY}:{generation}")
        if top is None:
            statement = (
                select(cls)
                .order_by(cls.times_borrowed.desc(), cls.id)
                .limit(POPULAR_MAX)
            )
            top = [book.as_json() for book in sql.session.scalars(statement)]
            if generation is not None:
                cache_set(f"{POPULAR_CACHE_KEY}:{generation}", top)
        return top[:limit]


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
        open loans, insert the loan, take a copy; Core statements on the tables,
        without the ORM's unit of work (each measured in bench/). The checks that
        refuse stop after the first."""
        open_loans, copies_left = cls.lock_member(user_id, book_id)
        if copies_left is None:
            raise not_found(BookModel.label)
        cls.check_member_may_borrow(book_id, open_loans)
        if copies_left == 0:
            raise conflict("No copy of this book is left to borrow")
        now = utcnow()
        config = current_app.config
        values = dict(
            book=book_id,
            member=user_id,
            now=now,
            due=now + timedelta(days=config["LOAN_DAYS"]),
            limit=config["MAX_OPEN_LOANS"],
        )
        # The loan goes in before the copy is taken, in the order a return locks
        # them (its loan, then the book): in the other order a borrow waiting on
        # the unique index for a return of the same book, which waits for the
        # book's row, would be a deadlock. A refused borrow writes nothing: no
        # savepoint (two round trips on every borrow), the transaction goes.
        try:
            loan = sql.session.execute(LoanStatements.add_loan, values).first()
        except IntegrityError:  # one open loan per book and member, or no book
            sql.session.rollback()
            BookModel.read_row_or_404(book_id)
            raise conflict("You already have this book on loan") from None
        if loan is None:  # a loan committed while this one waited for the member
            sql.session.rollback()
            raise cap_reached()
        taken = sql.session.execute(LoanStatements.take_a_copy, {"book": book_id})
        if taken.rowcount == 0:  # taken or deleted since the first statement
            sql.session.rollback()
            BookModel.read_row_or_404(book_id)
            raise conflict("No copy of this book is left to borrow")
        after_catalog_change()
        return loan

    @classmethod
    def lock_member(cls, user_id: int, book_id: int) -> tuple[list[int], int | None]:
        """Lock the member's row (one borrow at a time per member, so the open-loan
        count stays true) and read, in the same query, the books they have on loan
        and the copies of this book left (None: no such book; not locked)."""
        rows = sql.session.execute(
            LoanStatements.lock_member, {"member": user_id, "book": book_id}
        ).all()
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
    def list(cls, query: ListQuery, identity) -> tuple[list["LoanModel"], int]:
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
        it open). Two Core statements when it succeeds: mark the loan, put the copy
        back. Returns the loan's row."""
        own = not identity.has_role("staff")
        loan = sql.session.execute(
            LoanStatements.return_own if own else LoanStatements.return_any,
            {"loan": loan_id, "member": identity.user_id, "now": utcnow()},
        ).first()
        if loan is None:
            cls.get_for(loan_id, identity)  # 404 for no such loan, or not theirs
            raise conflict("This loan was already returned")
        sql.session.execute(LoanStatements.put_a_copy_back, {"book": loan.book_id})
        after_catalog_change()
        return loan


def cap_reached():
    limit = current_app.config["MAX_OPEN_LOANS"]
    return conflict(f"You already have {limit} books on loan; return one first")


# --- The popular-books cache: a generation number bumped after every committed
# change to the catalog or its loans. Readers take the generation first and store
# what they computed under it, so an entry computed before a change is never read
# after it. With Redis unreachable the catalog is served from the database.

GENERATION_KEY = f"{POPULAR_CACHE_KEY}:generation"


def after_catalog_change() -> None:
    # If Redis fails here, an entry cached before the change is served until it
    # expires: POPULAR_CACHE_SECONDS at most (logged, and counted in /metrics).
    after_commit("popular books cache invalidated", bump_generation)


def bump_generation() -> None:
    cache.cache.inc(GENERATION_KEY)


def cache_generation() -> int | None:
    try:
        return cache.get(GENERATION_KEY) or 0
    except RedisError as error:
        return unless_outage(error)


def cache_get(key: str):
    try:
        return cache.get(key)
    except RedisError as error:
        return unless_outage(error)


def cache_set(key: str, value) -> None:
    try:
        cache.set(key, value, timeout=POPULAR_CACHE_SECONDS)
    except RedisError as error:
        unless_outage(error)


def unless_outage(error: RedisError) -> None:
    """Redis unavailable (down, full, read-only): the catalog is read from the
    database. Any other Redis error is a bug, and raised."""
    if not is_outage(error):
        raise error


class LoanStatements:
    """The statements of a borrow and a return, built once with bound parameters:
    building a Core statement per request cost about as much Python as running it
    (bench/ANALYSIS.md). Parameters: member, book, loan, now."""

    loans, users, books = LoanModel.__table__, UserModel.__table__, BookModel.__table__
    lock_member = (
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
    take_a_copy = (
        update(books)
        .where(books.c.id == bindparam("book"), books.c.copies_available > 0)
        .values(
            copies_available=books.c.copies_available - 1,
            times_borrowed=books.c.times_borrowed + 1,
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
    add_loan = (
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
    return_any = (
        update(loans)
        .where(loans.c.id == bindparam("loan"), loans.c.returned_at.is_(None))
        .values(returned_at=bindparam("now"))
        .returning(*loans.c)
    )
    return_own = return_any.where(loans.c.user_id == bindparam("member"))
    put_a_copy_back = (
        update(books)
        .where(books.c.id == bindparam("book"))
        .values(copies_available=books.c.copies_available + 1)
    )
