"""Borrowing, POST /books/<id>/loans: the rules of a loan, the statements a
borrow takes, and the races between its check and its write."""

import threading
import time
from contextlib import contextmanager
from datetime import datetime, timedelta

import pytest
import requests
from sqlalchemy import delete, event

from myapp.books.loans import LoanModel
from myapp.books.models import BookModel
from myapp.db import sql
from myapp.testing import assert_error, assert_valid
from myapp.books.testing import (
    borrow,
    live_book,
    live_members,
    loan_count,
    open_loans_of,
    stored_book,
)


def test_borrowing_takes_a_copy_for_14_days(app, client, member, add_book):
    book = add_book(copies_total=2)
    response = borrow(client, member, book["id"])
    assert response.status_code == 201
    loan = response.get_json()
    assert_valid(LoanModel.read_schema, loan)
    assert (loan["book_id"], loan["user_id"], loan["returned_at"]) == (
        book["id"],
        member.id,
        None,
    )
    borrowed = datetime.fromisoformat(loan["borrowed_at"])
    assert datetime.fromisoformat(loan["due_at"]) - borrowed == timedelta(days=14)
    after = stored_book(app, book["id"])
    assert (after["copies_available"], after["times_borrowed"]) == (1, 1)


def test_a_borrow_and_a_return_are_the_books_last_change(client, member, add_book):
    """The statements that take and give back a copy write the book's updated_at
    themselves (no ORM onupdate runs for them): the loan's own times, so a client
    that caches the book sees it changed, and what changed it."""
    book = add_book(copies_total=1)
    loan = borrow(client, member, book["id"]).get_json()
    taken = client.get(f"/books/{book['id']}").get_json()
    assert taken["copies_available"] == 0
    assert taken["updated_at"] == loan["borrowed_at"] > book["updated_at"]
    returned = client.post(f"/books/loans/{loan['id']}/return", headers=member.headers)
    assert returned.status_code == 200
    back = client.get(f"/books/{book['id']}").get_json()
    assert back["copies_available"] == 1
    assert back["updated_at"] == returned.get_json()["returned_at"]


def test_borrowing_needs_a_signed_in_user(client, add_book):
    assert_error(client.post(f"/books/{add_book()['id']}/loans"), 401, "unauthorized")


def test_borrowing_an_unknown_book_is_404(client, member):
    assert_error(borrow(client, member, 424242), 404, "not_found")


def test_an_unknown_book_is_404_before_any_refusal(client, member, add_book):
    books = [add_book() for _ in range(5)]
    for book in books:
        assert borrow(client, member, book["id"]).status_code == 201
    assert_error(borrow(client, member, 424242), 404, "not_found")
    assert_error(borrow(client, member, books[0]["id"]), 409, "conflict")


@contextmanager
def statements(app):
    """The SQL statements the requests made inside the block run (the tests' own
    SAVEPOINTs left out)."""
    made = []

    def record(_connection, _cursor, statement, *_):
        if not statement.startswith(("SAVEPOINT", "RELEASE", "ROLLBACK")):
            made.append(statement.split(None, 1)[0])

    with app.app_context():
        engine = sql.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield made
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_a_borrow_and_a_return_take_three_and_two_statements(
    client, app, member, add_book, make_account
):
    """Each statement is a round trip made while holding row locks (bench/): a
    borrow locks the member and reads their loans in one, inserts the loan, takes
    a copy; a return marks the loan and puts the copy back (both lock the loan
    before the book, so neither waits for the other in a cycle)."""
    book = add_book(copies_total=1)
    with statements(app) as borrowing:
        loan = borrow(client, member, book["id"]).get_json()
    with statements(app) as returning:
        returned = client.post(
            f"/books/loans/{loan['id']}/return", headers=member.headers
        )
    assert borrow(client, member, book["id"]).status_code == 201
    other = make_account("member")
    with statements(app) as refusing:
        refused = borrow(client, other, book["id"])
    assert borrowing == ["SELECT", "INSERT", "UPDATE"]
    assert returning == ["UPDATE", "UPDATE"]
    assert returned.status_code == 200
    assert returned.get_json()["borrowed_at"] == loan["borrowed_at"]
    # no copy left: the first statement saw it, and nothing was written
    assert_error(refused, 409, "conflict")
    assert refusing == ["SELECT"]


def test_the_last_copy_gone_between_the_check_and_the_update(
    app, client, member, add_book
):
    """A concurrent borrow takes the last copy between this borrow's first
    statement and its UPDATE, done at that very moment on the borrow's own
    connection: the UPDATE finds no copy, and nothing is written."""
    book = add_book(copies_total=1)
    meanwhile, status, code, message = (
        "UPDATE books SET copies_available = 0",
        409,
        "conflict",
        "No copy",
    )

    def interleave(_connection, cursor, statement, *_):
        if statement.startswith("UPDATE books"):
            cursor.execute(f"{meanwhile} WHERE id = {int(book['id'])}")

    with app.app_context():
        engine = sql.engine
    event.listen(engine, "before_cursor_execute", interleave)
    try:
        response = borrow(client, member, book["id"])
    finally:
        event.remove(engine, "before_cursor_execute", interleave)
    assert message in assert_error(response, status, code)["message"]
    # the request's transaction, the change made meanwhile with it, rolled back
    assert stored_book(app, book["id"])["copies_available"] == 1
    assert loan_count(app, book_id=book["id"]) == 0


def test_a_book_deleted_between_the_check_and_the_insert_is_404(live, committing_app):
    """Another request deletes the book (and commits) after the borrow's first
    statement: the loan's INSERT finds no book, and the answer is 404. (PostgreSQL
    only: on SQLite a borrow holds the write lock from its first statement.)"""
    if committing_app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("SQLite serialises writers: nothing can delete meanwhile")
    (member,) = live_members(live, 1)
    book = live_book(live, committing_app, copies=1)
    with committing_app.app_context():
        engine = sql.engine

    def interleave(_connection, _cursor, statement, *_):
        if statement.startswith("INSERT INTO loans"):
            with engine.connect() as other:
                other.execute(delete(BookModel).where(BookModel.id == book))
                other.commit()

    event.listen(engine, "before_cursor_execute", interleave)
    try:
        response = committing_app.test_client().post(
            f"/books/{book}/loans", headers=member
        )
    finally:
        event.remove(engine, "before_cursor_execute", interleave)
    assert_error(response, 404, "not_found")
    assert open_loans_of(committing_app, member) == 0


def test_a_borrow_that_waited_for_the_member_counts_the_loan_it_waited_for(
    live, committing_app
):
    """Two borrows by a member one loan under the cap: the second begins while the
    first holds the member's lock (just before its INSERT), and goes on once that
    committed. It must count the loan it waited for, and be refused: PostgreSQL
    keeps the view a statement had when it began to wait, so the cap is counted
    again by the INSERT (on SQLite the second waits at BEGIN IMMEDIATE)."""
    (member,) = live_members(live, 1)
    for _ in range(4):
        book = live_book(live, committing_app, copies=1)
        assert requests.post(f"{live}/books/{book}/loans", headers=member).ok
    first_book, second_book = (live_book(live, committing_app, 1) for _ in range(2))
    second = {}
    waiting = threading.Thread(
        target=lambda: second.update(
            response=committing_app.test_client().post(
                f"/books/{second_book}/loans", headers=member
            )
        )
    )

    def interleave(_connection, _cursor, statement, *_):
        if statement.startswith("INSERT INTO loans") and not second:
            second["started"] = True
            waiting.start()
            time.sleep(0.5)  # the second borrow now waits for the member's lock

    with committing_app.app_context():
        engine = sql.engine
    event.listen(engine, "before_cursor_execute", interleave)
    try:
        first = committing_app.test_client().post(
            f"/books/{first_book}/loans", headers=member
        )
        waiting.join()
    finally:
        event.remove(engine, "before_cursor_execute", interleave)
    assert first.status_code == 201
    assert_error(second["response"], 409, "conflict")
    assert open_loans_of(committing_app, member) == 5


def test_no_copy_left_is_409(app, client, add_book, make_account):
    book = add_book(copies_total=1)
    assert borrow(client, make_account("member"), book["id"]).status_code == 201
    assert_error(borrow(client, make_account("member"), book["id"]), 409, "conflict")
    assert stored_book(app, book["id"])["copies_available"] == 0
    assert loan_count(app, book_id=book["id"]) == 1


def test_one_open_loan_per_book(app, client, member, add_book):
    book = add_book(copies_total=3)
    borrow(client, member, book["id"])
    body = assert_error(borrow(client, member, book["id"]), 409, "conflict")
    assert "already" in body["message"]
    assert stored_book(app, book["id"])["copies_available"] == 2


def test_at_most_five_open_loans(app, client, member, add_book):
    books = [add_book() for _ in range(6)]
    for book in books[:5]:
        assert borrow(client, member, book["id"]).status_code == 201
    assert_error(borrow(client, member, books[5]["id"]), 409, "conflict")
    assert stored_book(app, books[5]["id"])["copies_available"] == 3
    loans = client.get("/books/loans/?open=true", headers=member.headers).get_json()
    client.post(
        f"/books/loans/{loans['items'][0]['id']}/return", headers=member.headers
    )
    assert borrow(client, member, books[5]["id"]).status_code == 201


def test_borrowing_reads_no_body_but_rejects_a_bad_one(client, member, add_book):
    book = add_book()
    response = client.post(
        f"/books/{book['id']}/loans", json={}, headers=member.headers
    )
    assert response.status_code == 201
    book = add_book()
    response = client.post(
        f"/books/{book['id']}/loans", json={"due_at": "x"}, headers=member.headers
    )
    assert_error(response, 400, "validation_error")
    response = client.post(
        f"/books/{book['id']}/loans",
        data="x",
        content_type="text/plain",
        headers=member.headers,
    )
    assert_error(response, 415, "unsupported_media_type")
