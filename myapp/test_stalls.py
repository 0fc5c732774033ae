"""The breaker (myapp/breaker.py), and the client-side bounds on PostgreSQL
(myapp/stalls.py): a stalled database, and connections cut at any moment of any
request."""

import collections
import gc
import logging
import os
import random
import socket
import threading
import time
import uuid

import pytest
import sqlalchemy

from myapp import create_app
from myapp.books.loans import LoanModel
from myapp.books.models import BookModel, isbn13
from myapp.db import sql
from myapp.transactions import commit
from myapp.breaker import Breaker
from myapp.stalls import (
    DatabaseStalled,
    database_slot_on_first_use,
    take_database_slot,
)
from myapp.testing import assert_error
from myapp.users.models import UserModel

PASSWORD = "a password cut short"


class Refused(Exception):
    pass


@pytest.fixture
def breaker():
    return Breaker(Refused, open_seconds=60, trial_seconds=60)


def in_a_thread(function) -> BaseException | None:
    """What `function` raised in another thread (as another request would)."""
    raised = []

    def run():
        try:
            function()
        except BaseException as error:
            raised.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return raised[0] if raised else None


def test_it_trips_after_so_many_failures_in_a_row():
    breaker = Breaker(Refused, open_seconds=60, trial_seconds=60, trips_after=2)
    breaker.failed()
    breaker.check()  # one timeout: a busy moment, perhaps
    breaker.answered()
    breaker.failed()
    breaker.check()  # an answer came between: not in a row
    breaker.failed()
    with pytest.raises(Refused):
        breaker.check()


def open_time_passed(breaker: Breaker) -> None:
    breaker.open_until = time.monotonic() - 0.001


def test_a_tripped_breaker_refuses_every_thread_at_once(breaker):
    breaker.check()  # closed: nothing to refuse
    breaker.failed()
    with pytest.raises(Refused):
        breaker.check()
    assert isinstance(in_a_thread(breaker.check), Refused)


def test_then_one_thread_tries_again_and_the_others_wait_for_its_answer(breaker):
    breaker.failed()
    open_time_passed(breaker)
    breaker.check()  # this thread is the one to try
    breaker.check()  # ... for all its calls
    assert isinstance(in_a_thread(breaker.check), Refused)
    breaker.answered()
    assert in_a_thread(breaker.check) is None


def test_a_try_that_meets_the_stall_again_trips_it_again(breaker):
    breaker.failed()
    open_time_passed(breaker)
    breaker.check()
    breaker.failed()  # its wait passed the bound too
    with pytest.raises(Refused):
        breaker.check()


def test_a_try_that_never_answers_lets_another_thread_try_after_its_time(breaker):
    breaker.failed()
    open_time_passed(breaker)
    assert in_a_thread(breaker.check) is None  # tried, and its request ended
    with pytest.raises(Refused):
        breaker.check()
    breaker.trial = (breaker.trial[0], time.monotonic() - 0.001)  # its time passed
    breaker.check()


def test_a_request_meeting_a_stalled_database_does_not_wait_for_a_slot(backing):
    """Every slot held (as by requests waiting on the stalled database): a new
    request is refused as stalled at once, not after waiting for a slot."""
    _postgres, _redis, app = backing
    breaker = app.extensions["myapp.stall_guard"].breaker
    slots = app.extensions["myapp.database_slots"]
    held = 0
    while slots.acquire(blocking=False):
        held += 1
    breaker.failed()
    try:
        with app.test_request_context("/books/"):
            with pytest.raises(DatabaseStalled):
                with database_slot_on_first_use():
                    take_database_slot()
        response = app.test_client().get("/books/")
        assert_error(response, 503, "service_unavailable")
        assert response.headers["Retry-After"]
    finally:
        breaker.answered()
        for _ in range(held):
            slots.release()
    assert app.test_client().get("/books/?per_page=1").status_code == 200


def test_a_request_meeting_a_stalled_database_is_refused_before_any_work(backing):
    """A registration hashes its password before its first statement; while a
    stall is known it is refused before that (its body is not even checked), or
    every retry would burn a hash on the way to its 503."""
    _postgres, _redis, app = backing
    breaker = app.extensions["myapp.stall_guard"].breaker
    breaker.failed()
    try:
        response = app.test_client().post("/users/", json={"email": "not an address"})
        assert_error(response, 503, "service_unavailable")
    finally:
        breaker.answered()
    response = app.test_client().post("/users/", json={"email": "not an address"})
    assert_error(response, 400, "validation_error")


def test_a_connection_left_out_of_every_pool_lets_go_of_its_socket(backing):
    """A pool discarded while one of its connections is checked out (the other
    pool met a dead connection): that connection, returned to a pool nothing
    uses, is closed when it is collected, and so is the watchdog's handle on its
    socket, which would otherwise keep it open for good."""
    _postgres, _redis, app = backing
    with app.app_context():
        engine = sql.engine
        engine.dispose()
        gc.collect()  # what earlier tests left is closed first
        before = set(os.listdir("/proc/self/fd"))
        held = engine.connect()
        held.execute(sqlalchemy.text("SELECT 1"))
        opened = set(os.listdir("/proc/self/fd")) - before
        assert len(opened) == 2  # its socket, and the watchdog's handle on it
        engine.dispose()
        held.close()
        del held
        gc.collect()
        assert not opened & set(os.listdir("/proc/self/fd"))


class ErrorLog(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


CUT_SECONDS = 15
CLIENTS = 4


def test_a_connection_cut_at_any_moment_is_a_503_or_nothing(backing):
    """Four clients (reads, signed-in reads, borrows and returns of a book each,
    a cut return sent again, sign-ups and
    sign-ins) while another thread shuts down the socket of a random connection
    in use every few milliseconds: inside a statement, between two, during a
    commit or the rollback that ends a request, as a deadline or a network does.
    Both pools are cut: the one writes use, and the one GETs read on (by key on
    the DBAPI connection itself, myapp/key_reads.py). Every answer is a success,
    a conflict or a 503 in the error shape; nothing logs an unhandled error; no
    connection is left checked out; no copy of any book is lost; borrows and
    returns were both served and cut."""
    postgres, redis, _app = backing
    unlimited = "10000000 per hour"
    app = create_app(
        "testing",
        {
            "SQLALCHEMY_DATABASE_URI": postgres.url,
            "REDIS_URL": redis.url,
            "RATELIMIT_DEFAULT": unlimited,
            "RATELIMIT_LOGIN": unlimited,
            "RATELIMIT_REGISTER": unlimited,
        },
    )
    errors = ErrorLog()
    app.logger.addHandler(errors)
    email = f"cut-staff-{uuid.uuid4().hex[:8]}@example.com"
    with app.app_context():
        UserModel.create({"email": email, "password": PASSWORD, "name": "S"}, "staff")
        commit()
        engines = list(sql.engines.values())
    client = app.test_client()
    signed_in = client.post(
        "/users/tokens", json={"email": email, "password": PASSWORD}
    )
    auth = {"Authorization": f"Bearer {signed_in.json['access_token']}"}
    staff_id = client.get("/users/me", headers=auth).json["id"]
    # A book per client, so that each can borrow and return in turn: one open
    # loan per member and book would make the others' borrows conflicts.
    books = [
        client.post(
            "/books/",
            json={"title": "Cut", "author": "A"}
            | {"isbn": isbn13(uuid.uuid4().int % 10**9), "copies_total": 3},
            headers=auth,
        ).json
        for _ in range(CLIENTS)
    ]

    in_use, lock = set(), threading.Lock()

    def checked_out(connection, *_):
        with lock:
            in_use.add(connection)

    def checked_in(connection, *_):  # checked in, or closed (after invalidation)
        with lock:
            in_use.discard(connection)

    # A pool discarded passes its listeners on to the next; this test's app ends
    # with the test, and them with it.
    for engine in engines:
        sqlalchemy.event.listen(engine.pool, "checkout", checked_out)
        sqlalchemy.event.listen(engine.pool, "checkin", checked_in)
        sqlalchemy.event.listen(engine.pool, "close", checked_in)  # invalidated
    statuses, unexpected, failures = collections.Counter(), [], []
    by_step = collections.Counter()
    stop = threading.Event()

    def answered(what: str, response):
        with lock:
            statuses[response.status_code] += 1
            by_step[what, response.status_code] += 1
            if response.status_code not in (200, 201, 409, 503):
                unexpected.append((what, response.status_code, response.text[:300]))
            if response.status_code == 503:
                assert_error(response, 503, "service_unavailable")

    def open_loan_of(session, book) -> int | None:
        mine = session.get(f"/books/loans/?open=true&user_id={staff_id}", headers=auth)
        answered("loans", mine)
        if mine.status_code != 200:
            return None  # cut: the next borrow's 409 asks again
        held = (
            loan["id"] for loan in mine.json["items"] if loan["book_id"] == book["id"]
        )
        return next(held, None)

    def client_loop(book):
        session = app.test_client()
        key = {"Idempotency-Key": ""}
        open_loan = None  # a loan whose return was cut: returned again next time
        try:
            while not stop.is_set():
                answered("list", session.get("/books/?per_page=5"))
                answered("book", session.get(f"/books/{book['id']}"))
                answered("me", session.get("/users/me", headers=auth))
                if open_loan is None:
                    key["Idempotency-Key"] = str(uuid.uuid4())
                    path = f"/books/{book['id']}/loans"
                    loan = session.post(path, headers=auth | key)
                    answered("borrow", loan)
                    if loan.status_code == 201:
                        open_loan = loan.json["id"]
                    elif loan.status_code == 409:  # a cut borrow had committed
                        open_loan = open_loan_of(session, book)
                if open_loan is not None:
                    key["Idempotency-Key"] = str(uuid.uuid4())
                    path = f"/books/loans/{open_loan}/return"
                    returned = session.post(path, headers=auth | key)
                    answered("return", returned)
                    if returned.status_code != 503:  # 409: a cut one had committed
                        open_loan = None
                body = {"email": f"cut-{uuid.uuid4().hex[:10]}@example.com"}
                body |= {"password": PASSWORD, "name": "C"}
                answered("sign-up", session.post("/users/", json=body))
                answered(
                    "sign-in",
                    session.post(
                        "/users/tokens", json={"email": email, "password": PASSWORD}
                    ),
                )
        except BaseException as error:  # would otherwise vanish with its thread
            failures.append(error)

    def cut_loop():
        while not stop.is_set():
            time.sleep(random.uniform(0, 0.02))
            with lock:
                if not in_use:
                    continue
                connection = random.choice(list(in_use))
                try:  # a duplicate of its socket, taken while it is in use
                    duplicate = socket.socket(fileno=os.dup(connection.fileno()))
                except Exception:  # closed meanwhile
                    continue
            with duplicate:
                try:
                    duplicate.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    threads = [threading.Thread(target=client_loop, args=(book,)) for book in books]
    threads.append(threading.Thread(target=cut_loop))
    for thread in threads:
        thread.start()
    time.sleep(CUT_SECONDS)
    stop.set()
    for thread in threads:
        thread.join()

    assert not failures, failures
    assert not unexpected, unexpected
    assert statuses[503] > 0 and statuses[200] > 0, statuses  # cut, and served
    # The writes were served and cut too, not refused throughout.
    assert by_step["borrow", 201] > 0 and by_step["borrow", 503] > 0, by_step
    assert by_step["return", 200] > 0 and by_step["return", 503] > 0, by_step
    assert not errors.records, [record.getMessage() for record in errors.records]
    assert not in_use  # every connection back in its pool, or closed
    with app.app_context():
        for book in books:
            held = sql.session.scalar(
                sqlalchemy.select(sqlalchemy.func.count()).where(
                    LoanModel.book_id == book["id"], LoanModel.returned_at.is_(None)
                )
            )
            copies = sql.session.get(BookModel, book["id"])
            assert copies.copies_available + held == copies.copies_total
    assert app.test_client().get("/books/?per_page=1").status_code == 200
