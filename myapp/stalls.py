"""Bounded waits on PostgreSQL, enforced by the client.

The server's statement_timeout and lock_timeout end slow statements, but a server
that stops answering (frozen, cut off by the network, on a disk that hangs, in a
failover) enforces nothing, and a stopped process's kernel still acknowledges what
is sent to it, so no TCP timeout fires either. Here every wait on a connection (a
statement, a commit, a rollback) has a deadline: the server's statement_timeout
plus DEADLINE_MARGIN, so a slow statement is still cancelled by the server first,
cleanly. A watchdog thread in each process shuts down the socket of a connection
whose wait passes it; the driver sees the connection end, SQLAlchemy discards it
with the rest of the pool, and the request is a 503 (myapp/errors.py).

A wait past its deadline, or a connection attempt that timed out, means the
database is stalled: it trips the process's breaker for the database
(myapp/breaker.py), so for STALL_SECONDS requests do not wait on it at all, they
are a 503 at once (DatabaseStalled), and /readiness says so; then one request
tries it again, and any answer ends the stall.

Each request also holds one of its worker's database slots (WEB_THREADS - 1 of
them) from its first use of the database, so even while every slot waits on a
stalled database one thread is free for /healthz, /readiness and the requests that
need no database.
"""

import os
import socket
import threading
import time
import weakref
from contextlib import contextmanager
from contextvars import ContextVar

import psycopg
from flask import current_app
from sqlalchemy import event
from sqlalchemy.engine import Engine

from myapp.breaker import Breaker

DEADLINE_MARGIN = 0.5
STALL_SECONDS = 2.0
TICK = 0.05  # how often the watchdog looks: the deadline's precision


class DatabaseStalled(Exception):
    """The database did not answer within its deadline moments ago."""


class DatabaseBusy(Exception):
    """Every request slot of this process that may use the database is taken."""


class Watchdog:
    """One thread per process, for every guarded engine: it ends the waits that
    passed their deadline. It keeps its own handle on each connection's socket
    (a duplicate, from connecting to closing), so it can only ever shut down that
    connection's socket, never a file that later took the same number. Started by
    the first wait in each process; a forked worker starts afresh."""

    def __init__(self):
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._sockets: dict[int, socket.socket] = {}
        self._waits: dict[int, tuple[float, "StallGuard"]] = {}
        self._lock = threading.Lock()
        self._started = False

    def hold(self, connection) -> None:
        """Keep a handle on a new connection's socket. A connection never closed
        through a pool (its pool was discarded while it was checked out) closes
        it when it is collected: a handle kept would keep its socket open. (Only
        the socket: a collection can run in a thread holding the lock.)"""
        duplicate = socket.socket(fileno=os.dup(connection.fileno()))
        with self._lock:
            self._sockets[id(connection)] = duplicate
        weakref.finalize(connection, duplicate.close)

    def release(self, connection) -> None:
        """The connection is closing: drop its handle and any wait."""
        with self._lock:
            self._waits.pop(id(connection), None)
            duplicate = self._sockets.pop(id(connection), None)
        if duplicate is not None:
            duplicate.close()

    def arm(self, connection, deadline: float, guard: "StallGuard") -> None:
        with self._lock:
            if not self._started:
                self._started = True
                threading.Thread(
                    target=self._watch, name="db-deadlines", daemon=True
                ).start()
            self._waits[id(connection)] = (deadline, guard)

    def disarm(self, connection) -> None:
        with self._lock:
            self._waits.pop(id(connection), None)

    def _watch(self) -> None:
        while True:
            time.sleep(TICK)
            now = time.monotonic()
            with self._lock:
                late = [key for key, (due, _) in self._waits.items() if due <= now]
                for key in late:
                    _, guard = self._waits.pop(key)
                    guard.breaker.failed()
                    cut(self._sockets.get(key))


WATCHDOG = Watchdog()


def cut(duplicate: socket.socket | None) -> None:
    """End a connection from outside the thread waiting on it: its socket is shut
    down, so the wait returns and the driver reports the connection lost."""
    if duplicate is not None:
        try:
            duplicate.shutdown(socket.SHUT_RDWR)
        except OSError:  # the peer had closed it already
            pass


class StallGuard:
    """The deadlines and the stall state of one app's database, over each of its
    engines (the default one, and on PostgreSQL the one GETs read on)."""

    def __init__(self, engines: list[Engine], statement_timeout_ms: int):
        self.seconds = statement_timeout_ms / 1000 + DEADLINE_MARGIN
        self.breaker = Breaker(self.refusal, STALL_SECONDS, trial_seconds=self.seconds)
        self.engines = engines
        for engine in engines:
            self.watch(engine)

    def watch(self, engine: Engine) -> None:
        listen = event.listen
        listen(engine.pool, "connect", self.on_connect)
        listen(engine.pool, "close", lambda connection, _: WATCHDOG.release(connection))
        listen(engine.pool, "close_detached", WATCHDOG.release)
        listen(engine, "do_connect", self.before_connecting)
        listen(engine, "before_cursor_execute", self.before_statement)
        listen(engine, "after_cursor_execute", self.after_statement)
        listen(engine, "commit", self.before_commit_or_rollback)
        listen(engine, "rollback", self.before_commit_or_rollback)
        listen(engine, "handle_error", self.on_error)
        listen(engine.pool, "reset", self.before_reset)
        listen(engine.pool, "checkin", self.on_checkin)

    def refusal(self) -> DatabaseStalled:
        return DatabaseStalled(f"PostgreSQL did not answer within {self.seconds:g} s")

    def arm(self, dbapi_connection) -> None:
        WATCHDOG.arm(dbapi_connection, time.monotonic() + self.seconds, self)

    @contextmanager
    def waiting_on(self, dbapi_connection):
        """A wait made on a pooled DBAPI connection outside SQLAlchemy's Connection
        (myapp/key_reads.py): checked, given its deadline and answered as a
        statement is."""
        self.breaker.check()
        self.arm(dbapi_connection)
        try:
            yield
        finally:
            WATCHDOG.disarm(dbapi_connection)
        self.breaker.answered()

    def before_connecting(self, _dialect, _record, _args, _params) -> None:
        self.breaker.check()

    def on_connect(self, dbapi_connection, _record) -> None:
        WATCHDOG.hold(dbapi_connection)
        self.breaker.answered()

    def before_statement(self, _conn, cursor, *_args) -> None:
        self.breaker.check()
        self.arm(cursor.connection)

    def after_statement(self, _conn, cursor, *_args) -> None:
        WATCHDOG.disarm(cursor.connection)
        self.breaker.answered()

    def before_commit_or_rollback(self, conn) -> None:
        # Disarmed when the connection goes back to its pool. An invalidated one
        # has no connection left to wait on.
        if not conn.invalidated:
            self.arm(conn.connection.dbapi_connection)

    def before_reset(self, dbapi_connection, _record, _state) -> None:
        self.arm(dbapi_connection)

    def on_checkin(self, dbapi_connection, _record) -> None:
        if dbapi_connection is not None:
            WATCHDOG.disarm(dbapi_connection)

    def on_error(self, context) -> None:
        if context.connection is not None and not context.connection.invalidated:
            WATCHDOG.disarm(context.connection.connection.dbapi_connection)
        if isinstance(context.original_exception, psycopg.errors.ConnectionTimeout):
            self.breaker.failed()
        if context.is_disconnect:
            self.discard_other_pools(context.engine)

    def discard_other_pools(self, engine: Engine) -> None:
        """`engine` met a dead connection (SQLAlchemy recycles that pool's older
        ones); the other pool's connections died with the same server (a
        restart), so a write must not meet them after a read found out."""
        for other in self.engines:
            if other is not engine:
                other.dispose()


# A request waits this long for a database slot of its process (a healthy
# database frees one within milliseconds, a busy CPU within tenths of a second:
# 0.5 s failed a write while the fleet test's deploys built on its 2 cores), then
# is a 503: short enough that a health check queued behind such a wait is still
# answered within a second. Once a stall is known, nothing waits (the breaker).
SLOT_WAIT_SECONDS = 0.75

# The current request's claim on a slot; None outside an API request.
_CLAIM: ContextVar["SlotClaim | None"] = ContextVar("database_slot", default=None)


class SlotClaim:
    """One request's claim on one of its process's database slots: taken at the
    request's first use of the database, held until the request ends or gives it
    back (`give_back_database_slot`)."""

    __slots__ = ("slots", "breaker", "held")

    def __init__(self, slots: threading.BoundedSemaphore, breaker: Breaker | None):
        self.slots, self.breaker, self.held = slots, breaker, False

    def take(self) -> None:
        if self.breaker is not None:
            self.breaker.check()  # a stalled database: no wait for a slot either
        if not self.slots.acquire(timeout=SLOT_WAIT_SECONDS):
            raise DatabaseBusy("every database slot of this process is busy")
        self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            self.slots.release()


@contextmanager
def database_slot_on_first_use():
    """Let the request hold one of its process's database slots (one fewer than its
    threads, WEB_THREADS), so that while every slot waits on a stalled database a
    thread is still free for /healthz, /readiness and requests needing none. The
    slot is taken only when the request first uses the database
    (`take_database_slot`): CPU work before that, such as a registration hashing
    its password (measured in the fleet test: 1.8 s while a deploy built), keeps
    no slot from the requests that wait on the database."""
    guard = current_app.extensions.get("myapp.stall_guard")
    breaker = guard.breaker if guard is not None else None
    if breaker is not None:
        # A stall known: refused before any work (hashing a password, then
        # refused, would burn CPU on every retry).
        breaker.refuse_while_open()
    claim = SlotClaim(current_app.extensions["myapp.database_slots"], breaker)
    token = _CLAIM.set(claim)
    try:
        yield
    finally:
        claim.release()
        _CLAIM.reset(token)


def take_database_slot() -> None:
    """Called wherever a request picks the bind it uses (myapp/db.py): from there on
    it holds a slot, after waiting SLOT_WAIT_SECONDS at most (else DatabaseBusy)."""
    claim = _CLAIM.get()
    if claim is not None and not claim.held:
        claim.take()


def give_back_database_slot() -> None:
    """The request is done with the database for now (myapp/transactions.py:
    `let_the_database_go`): its slot is free for another; its next use takes one
    again."""
    claim = _CLAIM.get()
    if claim is not None:
        claim.release()


def init_app(app, engines: list[Engine]) -> None:
    """The database slots, and the deadlines if the database is PostgreSQL (SQLite
    runs in the process: its lock waits are bounded by its busy timeout)."""
    slots = max(1, app.config["WEB_THREADS"] - 1)
    app.extensions["myapp.database_slots"] = threading.BoundedSemaphore(slots)
    if engines[0].dialect.name == "postgresql":
        app.extensions["myapp.stall_guard"] = StallGuard(
            engines, app.config["DATABASE_STATEMENT_TIMEOUT_MS"]
        )
