"""A GET's read of one row by primary key, on the DBAPI connection of a pooled one.

The hot reads (a book by id, the signed-in user) are one fixed statement each. Run
through a SQLAlchemy Connection, such a read cost about 240 µs of CPU; on the
DBAPI connection itself about 100 (bench/COMPONENTS.md, the read alone): the
Connection's execution context, events and result set-up were a fifth of a whole
request. So the read checks a connection out of the same pool as ever
(`Engine.connect`, which keeps SQLAlchemy's handling of a refused or timed-out
connect), runs its statement as compiled once for the engine's dialect on the
DBAPI connection, and keeps what the Connection would have done for it:
- the stall guard's deadline and breaker around the wait (myapp/stalls.py);
- a driver error raised as SQLAlchemy's (`DBAPIError.instance`), so the error
  shape and `read_on_a_live_connection` treat it as any other;
- a lost connection invalidated (closed, never pooled again), and the other
  pool discarded as the stall guard does. The rest of its own pool is left: a
  dead one is given up as a read meets it, and the read tries the next
  (`read_on_a_live_connection`). Discarding the whole pool, as SQLAlchemy's
  private bookkeeping lets it, would leave the connections other threads hold
  out of every pool;
- an interruption mid-statement (a worker told to exit) leaves no connection
  half-way through a reply in the pool;
- the column types' result processing (SQLite keeps datetimes as text). A type
  whose conversion needs the driver's type code (Numeric on psycopg) is not
  supported: today's tables have none.
"""

from collections import namedtuple
from contextlib import nullcontext

from flask import current_app
from sqlalchemy import Select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from myapp.db import reading, request_bind, sql


class KeyRead:
    """SELECT one model's table by its primary key (the parameter "key"), compiled
    once per dialect; its rows are named tuples of the table's columns. The key is
    sent as given: an integer or text, which no dialect converts."""

    def __init__(self, statement: Select):
        self.statement = statement
        columns = statement.selected_columns
        self.row_type = namedtuple("Row", [column.key for column in columns])
        self.columns = columns
        self.compiled: dict[str, tuple] = {}  # dialect name: (sql, positional, types)

    def for_dialect(self, dialect) -> tuple:
        known = self.compiled.get(dialect.name)
        if known is None:
            compiled = self.statement.compile(dialect=dialect)
            processors = [
                column.type.dialect_impl(dialect).result_processor(dialect, None)
                for column in self.columns
            ]
            known = (compiled.string, compiled.positional, processors)
            self.compiled[dialect.name] = known
        return known

    def first_row(self, key):
        """The row, or None. A GET's is read on a connection of its own; anything
        else's in the request's transaction, so that it sees the request's own
        writes (a borrow reads the book it changes)."""
        # Not the session's bind: asking it would make the request a session.
        bind = request_bind(sql.engines[None])
        if isinstance(bind, Engine) and reading():
            return self.read_on(bind, key)
        return sql.session.execute(self.statement, {"key": key}).first()

    def read_on(self, engine: Engine, key):
        text, positional, processors = self.for_dialect(engine.dialect)
        params = (key,) if positional else {"key": key}
        guard = current_app.extensions.get("myapp.stall_guard")
        with engine.connect() as connection:
            dbapi_connection = connection.connection.dbapi_connection
            try:
                cursor = dbapi_connection.cursor()
                with guard.waiting_on(dbapi_connection) if guard else nullcontext():
                    cursor.execute(text, params)
                    values = cursor.fetchone()
                cursor.close()
            except engine.dialect.loaded_dbapi.Error as error:
                raise as_sqlalchemy_error(
                    connection, dbapi_connection, error, text, params
                ) from None
            except (KeyboardInterrupt, SystemExit):  # its reply may be half-read
                connection.invalidate()
                raise
        if values is None:
            return None
        return self.row_type(
            *(
                value if process is None else process(value)
                for value, process in zip(values, processors)
            )
        )


def as_sqlalchemy_error(
    connection, dbapi_connection, error, text, params
) -> DBAPIError:
    """What SQLAlchemy's Connection raises for a driver error; a connection the
    error says is gone is invalidated, and the other pool discarded."""
    dialect = connection.dialect
    lost = dialect.is_disconnect(error, dbapi_connection, None)
    if lost:
        connection.invalidate(error)
        guard = current_app.extensions.get("myapp.stall_guard")
        if guard is not None:
            guard.discard_other_pools(connection.engine)
    return DBAPIError.instance(
        text,
        params,
        error,
        dialect.loaded_dbapi.Error,
        hide_parameters=True,
        connection_invalidated=lost,
        dialect=dialect,
    )
