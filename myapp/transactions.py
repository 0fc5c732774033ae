"""A request's transaction: its one commit and the work queued to follow it, reads
that survive a dead pooled connection, and the session's end."""

import time

from flask import current_app, g
from sqlalchemy.exc import DBAPIError, OperationalError

from myapp import telemetry
from myapp.db import sql
from myapp.stalls import give_back_database_slot

# How long a read keeps trying to reach a database that refused a connection: a
# restart of PgBouncer or PostgreSQL is gone in well under that; a longer outage is
# a 503 once it has passed.
RECONNECT_WINDOW = 1.0
RECONNECT_PAUSE = 0.25


def read_on_a_live_connection(read, *args, **kwargs):
    """Run a read, on a live connection. Pools are not pinged before use (a round
    trip on every request), so this is where a dead one is found: a pooled
    connection closed by a restarted PostgreSQL or PgBouncer is replaced at once
    (SQLAlchemy then recycles the rest of its pool; a key read's pool gives up its
    dead ones as they are met, myapp/key_reads.py), and a connection refused is
    tried again every RECONNECT_PAUSE seconds, both for RECONNECT_WINDOW. Reads
    only: a write may have been applied, and its client retries it with its
    Idempotency-Key."""
    deadline = time.monotonic() + RECONNECT_WINDOW
    while True:
        try:
            return read(*args, **kwargs)
        except DBAPIError as error:
            # No statement: the error came from connecting, not from a query.
            refused = error.statement is None and isinstance(error, OperationalError)
            pause = RECONNECT_PAUSE if refused else 0.0
            lost = error.connection_invalidated
            if not ((lost or refused) and time.monotonic() + pause < deadline):
                raise
            sql.session.rollback()
            time.sleep(pause)


def end_session(_error: BaseException | None = None) -> None:
    """End the request's session: registered after Flask-SQLAlchemy, so it runs
    first at teardown. Flask-SQLAlchemy's own ending lets a rollback on a
    connection lost after the response was made (a deadline cut it, or PostgreSQL
    went away) escape the app, and the server answers its own HTML 500 in place of
    the response. That rollback has nothing to undo: SQLAlchemy has discarded the
    connection, and the transaction died with it. So it is logged, and the response
    stands."""
    try:
        sql.session.remove()
    except DBAPIError as error:
        current_app.logger.warning(
            "The request's database connection was lost at its end: %s",
            type(error.orig).__name__,
        )
        sql.session.remove()  # what the failed rollback left: the connection back


def commit() -> None:
    """The request's one commit, then the work queued to follow it. Once committed,
    the request has succeeded: a failing follow-up is logged and counted, never
    turned into an error response for a write that happened."""
    try:
        sql.session.commit()
    except Exception:
        run_follow_ups("after_rollback")
        raise
    g.pop("after_rollback", None)
    run_follow_ups("after_commit")


def let_the_database_go() -> None:
    """Before CPU work in the middle of a request (checking a password): the
    request's transaction ends, its connection goes back to its pool and its
    database slot to the requests waiting for one; the next use of the database
    takes them again, in a new transaction. Only for a request that has written
    nothing yet (pending ORM changes are refused here; a flushed write or a Core
    statement would be rolled back: the caller answers for it). What it read may
    change meanwhile: what follows must make sure it did not (myapp/users/
    models.py: `replace_password_hash`, `unchanged_since`)."""
    if sql.session.new or sql.session.dirty or sql.session.deleted:
        raise RuntimeError("let_the_database_go with writes pending: commit first")
    sql.session.rollback()
    give_back_database_slot()


def after_commit(step: str, callback) -> None:
    """Run `callback` once this request's transaction has committed, so that no
    request can see the old data after the callback ran (revoking sessions, bumping
    a cache generation, keeping an idempotent response). `step` names it in the log
    and in /metrics if it fails."""
    g.setdefault("after_commit", []).append((step, callback))


def after_rollback(step: str, callback) -> None:
    """Run `callback` if this request's commit fails (releasing a claim in Redis)."""
    g.setdefault("after_rollback", []).append((step, callback))


def run_follow_ups(kind: str) -> None:
    for step, callback in g.pop(kind, []):
        try:
            callback()
        except Exception as error:
            telemetry.follow_up_failed(step, error)
