"""What every SQL-backed model shares: lookup by id, set-based paging, timestamps,
and writing its changes with the database's refusals answered as 409s."""

from datetime import datetime, timezone
from functools import cache

from sqlalchemy import (
    BigInteger,
    DateTime,
    Select,
    String,
    bindparam,
    func,
    inspect,
    or_,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from myapp.db import sql
from myapp.errors import conflict, not_found
from myapp.ordering import ordered_rows
from myapp.pagination import ListQuery, Page
from myapp.key_reads import KeyRead


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime | None) -> str | None:
    """RFC 3339 in UTC. SQLite hands back naive datetimes; they were stored as UTC."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def contains_any_case(text: str, *columns):
    """The `q` filters: `text` is a substring of any of the columns, in any case
    (LIKE with its wildcards escaped, so '%' and '_' mean themselves)."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    return or_(*(func.lower(column).like(pattern, escape="\\") for column in columns))


def equals_any_case(column, value: str):
    """Exact match in any case (SQLite gets a Unicode lower() in myapp/db.py)."""
    return func.lower(column) == func.lower(value)


class Timestamped:
    """created_at and updated_at, in UTC, kept by the ORM."""

    created_at = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)
    updated_at = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow, nullable=False
    )


class RowCount(sql.Model):
    """The row count of each table in COUNTED_TABLES, kept exact by triggers in the
    database (migration 0004): an unfiltered list's total without a full count."""

    __tablename__ = "row_counts"

    table_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    row_count: Mapped[int] = mapped_column(BigInteger)


class SqlModel:
    """Mixin for sql.Model classes; each sets `label`, `sort_columns` (each sort
    key its lists take, and the attribute it sorts by: names, as mixin columns are
    only a table's own once the class is made), and `counted` when triggers keep
    its table's row count in RowCount."""

    label = "Resource"
    sort_columns: dict[str, str] = {}
    counted = False

    @classmethod
    def find(cls, key, *, for_update: bool = False):
        """The row with this primary key or None (locked for the transaction's
        writes when for_update)."""
        return sql.session.get(cls, key, with_for_update=for_update or None)

    @classmethod
    def read_row(cls, key):
        """The row with this primary key as a plain row, or None (no ORM object,
        identity map or unit of work: the hot paths, measured in bench/)."""
        return read_by_key(cls).first_row(key)

    @classmethod
    def read_row_or_404(cls, key):
        row = cls.read_row(key)
        if row is None:
            raise not_found(cls.label)
        return row

    @classmethod
    def read_json_or_404(cls, key) -> dict:
        """The JSON of the row with this primary key. `as_json` only reads
        attributes, which a row has as an object does."""
        return cls.as_json(cls.read_row_or_404(key))

    @classmethod
    def get_or_404(cls, key, *, for_update: bool = False):
        item = cls.find(key, for_update=for_update)
        if item is None:
            raise not_found(cls.label)
        return item

    @classmethod
    def page(cls, statement: Select, query: ListQuery) -> Page:
        """One page of `statement` in the requested order, and the true total."""
        if cls.counted and statement.whereclause is None:
            total = sql.session.scalar(
                select(RowCount.row_count).where(
                    RowCount.table_name == cls.__tablename__
                )
            )
        else:
            total = sql.session.scalar(
                select(func.count()).select_from(statement.order_by(None).subquery())
            )
        key = inspect(cls).primary_key[0]  # the tiebreak that makes the order total
        attribute = cls.sort_columns[query.sort]
        column = getattr(cls, attribute)
        rows = ordered_rows(
            statement,
            [column, key],
            query,
            sql.session.scalars,
            nullable=column.expression.nullable,
        )
        full = len(rows) == query.per_page
        last = (
            (getattr(rows[-1], attribute), getattr(rows[-1], key.key)) if full else None
        )
        return Page(rows, total, last)

    @classmethod
    def flush_or_conflict(
        cls, message: str, field: str | None = None, problem: str = "already exists"
    ) -> None:
        """Write the pending changes now, in a savepoint: if the database refuses
        them (a unique index, a foreign key), that is a 409 with `message`, naming
        `field` when one field is the cause. The database decides, so of two
        requests racing for one value only one can win, and the savepoint keeps
        the rest of the transaction usable."""
        try:
            with sql.session.begin_nested():
                sql.session.flush()
        except IntegrityError:
            details = [{"field": field, "problem": problem}] if field else None
            raise conflict(message, details) from None

    def delete(self) -> None:
        """Delete the row, flushed at once: what the database refuses surfaces in
        the request's handler, not at its commit."""
        sql.session.delete(self)
        sql.session.flush()


@cache
def read_by_key(model) -> KeyRead:
    """SELECT a model's table by primary key, built once per model."""
    key_column = inspect(model).primary_key[0]
    return KeyRead(select(model.__table__).where(key_column == bindparam("key")))
