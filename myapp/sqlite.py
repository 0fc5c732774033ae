"""SQLite as the app needs it: pysqlite's own transaction handling replaced, foreign
keys and WAL on, a Unicode lower(), and write requests that take the write lock
when they begin. create_app binds it to the app's engine when that is SQLite."""

from flask import has_request_context, request
from sqlalchemy import event
from sqlalchemy.engine import Engine

from myapp.db import SAFE_METHODS


def init_engine(engine: Engine) -> None:
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", configure_connection)
        event.listen(engine, "begin", begin)


def configure_connection(dbapi_connection, _record) -> None:
    """pysqlite's own BEGIN handling breaks SAVEPOINTs and delays locks; take it over,
    turn on what SQLite leaves off (foreign keys, WAL for concurrent readers) and
    give it a Unicode lower()."""
    dbapi_connection.isolation_level = None
    # SQLite's lower() folds ASCII only; emails compare case-insensitively in any
    # script, as they do on PostgreSQL.
    dbapi_connection.create_function("lower", 1, unicode_lower, deterministic=True)
    dbapi_connection.execute("PRAGMA foreign_keys = ON")
    dbapi_connection.execute("PRAGMA journal_mode = WAL")


def unicode_lower(text: str | None) -> str | None:
    return text.lower() if isinstance(text, str) else text


def begin(connection) -> None:
    """A write request takes the write lock when it begins, so concurrent writers
    queue (up to the busy timeout) instead of failing when a read snapshot they took
    turns out stale; reads stay concurrent."""
    writing = has_request_context() and request.method not in SAFE_METHODS
    connection.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")
