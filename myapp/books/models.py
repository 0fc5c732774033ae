"""The catalog: books, and the cache of the most borrowed ones in Redis. Copies are
counted by conditional SQL updates, so the counts hold under any number of
concurrent requests on both databases; loans.py borrows and returns them."""

from __future__ import annotations

from redis.exceptions import RedisError
from sqlalchemy import (
    CheckConstraint,
    Index,
    Integer,
    String,
    delete,
    select,
    update,
)
from sqlalchemy.orm import Mapped, mapped_column

from myapp.db import cache, sql
from myapp.transactions import after_commit
from myapp.errors import conflict
from myapp.outages import is_outage
from myapp.pagination import ListQuery, Page
from myapp.schema import TIMESTAMP, object_schema, patch_form, text_schema, validate
from myapp.sql_model import (
    SqlModel,
    Timestamped,
    contains_any_case,
    equals_any_case,
    iso,
    utcnow,
)

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
        # Each sort column with its tiebreak, for pages read by cursor
        # (myapp/ordering.py; migration 0007).
        Index("ix_books_title_id", title, id),
        Index("ix_books_author_id", author, id),
        Index("ix_books_published_year_id", published_year, id),
        Index("ix_books_times_borrowed_id", times_borrowed, id),
        # By name: created_at is the Timestamped mixin's, each table's own copy.
        Index("ix_books_created_at_id", "created_at", id),
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
    def list(cls, query: ListQuery) -> Page:
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
