"""A read of one row by primary key, a `FixedStatement`. A GET's runs on a
connection of its own from the reads pool, on its DBAPI connection: through the
session such a read cost about 440 µs of CPU, through a SQLAlchemy Connection
about 240, on the DBAPI connection about 100 (bench/COMPONENTS.md, the read
alone). Anything else's runs in the request's transaction, so that it sees the
request's own writes (a borrow reads the book it changes).

On the DBAPI connection, the read keeps what the Connection would have done:
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
  half-way through a reply in the pool.
"""

from contextlib import nullcontext

from flask import current_app
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from myapp.db import reading, request_bind, sql
from myapp.fixed_statements import FixedStatement


class KeyRead(FixedStatement):
    """SELECT one model's table by its primary key (the parameter "key"); its rows
    are named tuples of the table's columns. The key is sent as given: an integer
    or text, which no dialect converts."""

    def first_row(self, key):
        """The row, or None."""
        # Not the session's bind: asking it would make the request a session.
        bind = request_bind(sql.engines[None])
        if isinstance(bind, Engine) and reading():
            rows = self.read_on(bind, key)
        else:
            rows = self.run(sql.session.connection(), key=key).rows
        return rows[0] if rows else None

    def read_on(self, engine: Engine, key) -> list:
        compiled = self.for_dialect(engine.dialect)
        params = self.params(compiled, {"key": key})
        guard = current_app.extensions.get("myapp.stall_guard")
        with engine.connect() as connection:
            dbapi_connection = connection.connection.dbapi_connection
            try:
                cursor = dbapi_connection.cursor()
                with guard.waiting_on(dbapi_connection) if guard else nullcontext():
                    cursor.execute(compiled.text, params)
                    rows = cursor.fetchall()
                cursor.close()
            except engine.dialect.loaded_dbapi.Error as error:
                raise as_sqlalchemy_error(
                    connection, dbapi_connection, error, compiled.text, params
                ) from None
            except (KeyboardInterrupt, SystemExit):  # its reply may be half-read
                connection.invalidate()
                raise
        return self.rows(compiled, rows)


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
