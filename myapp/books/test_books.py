"""The books feature on PostgreSQL and SQLite with a real Redis: the catalog, loans,
idempotent borrowing, popular books, races against a live gunicorn, schemathesis."""

import json
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timedelta

import pytest
import requests
import schemathesis
from hypothesis import strategies as st
from sqlalchemy import delete, event, func, select, text

from conftest import PASSWORD, sign_in
from myapp.books.loans import LoanModel
from myapp.books.models import BookModel, isbn13
from myapp.db import sql
from myapp.pagination import list_schema
from myapp.testing import assert_error, assert_valid, book_body, next_serial
from myapp.users.models import UserModel


@pytest.fixture
def add_book(client, staff):
    def add(**overrides) -> dict:
        response = client.post(
            "/books/", json=book_body(**overrides), headers=staff.headers
        )
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    return add


def borrow(client, account, book_id, **headers):
    return client.post(
        f"/books/{book_id}/loans", headers={**account.headers, **headers}
    )


def stored_book(app, book_id):
    with app.app_context():
        book = sql.session.get(BookModel, book_id)
        return None if book is None else book.as_json()


def loan_count(app, **where) -> int:
    with app.app_context():
        statement = select(func.count()).select_from(LoanModel)
        for name, value in where.items():
            statement = statement.where(getattr(LoanModel, name) == value)
        return sql.session.scalar(statement)


# --- The catalog: POST /books/, GET /books/


def test_staff_add_a_book(client, staff):
    response = client.post("/books/", json=book_body(), headers=staff.headers)
    assert response.status_code == 201
    book = response.get_json()
    assert_valid(BookModel.read_schema, book)
    assert (book["copies_available"], book["times_borrowed"]) == (3, 0)
    assert response.headers["ETag"]


def test_published_year_is_optional_and_null(add_book):
    body = book_body()
    del body["published_year"]
    assert add_book(**{k: v for k, v in body.items() if k != "isbn"})


@pytest.mark.parametrize(
    "who, status, code", [("member", 403, "forbidden"), (None, 401, "unauthorized")]
)
def test_adding_books_needs_staff(app, client, make_account, who, status, code):
    headers = make_account(who).headers if who else {}
    assert_error(
        client.post("/books/", json=book_body(), headers=headers), status, code
    )
    assert book_total(app) == 0


def book_total(app) -> int:
    with app.app_context():
        return sql.session.scalar(select(func.count()).select_from(BookModel))


@pytest.mark.parametrize(
    "changes, fields",
    [
        ({"isbn": "12"}, {"isbn"}),
        ({"isbn": "9780306406158"}, {"isbn"}),  # bad check digit
        ({"isbn": "0306406153"}, {"isbn"}),  # bad ISBN-10 check digit
        ({"isbn": "978-0306406157"}, {"isbn"}),  # no repairing: digits only
        (
            {"copies_total": -1, "published_year": 3000},
            {"copies_total", "published_year"},
        ),
        (
            {"copies_available": 9, "times_borrowed": 4, "id": 1},
            {"copies_available", "times_borrowed", "id"},
        ),
        ({"title": "", "author": " "}, {"title", "author"}),
        ({"copies_total": "3"}, {"copies_total"}),
    ],
)
def test_book_bodies_are_validated_and_nothing_written(
    app, client, staff, changes, fields
):
    response = client.post("/books/", json=book_body(**changes), headers=staff.headers)
    body = assert_error(response, 400, "validation_error")
    assert {detail["field"] for detail in body["details"]} == fields
    assert book_total(app) == 0


def test_missing_fields_are_each_listed(client, staff):
    body = assert_error(
        client.post("/books/", json={}, headers=staff.headers), 400, "validation_error"
    )
    assert {d["field"] for d in body["details"]} == {
        "title",
        "author",
        "isbn",
        "copies_total",
    }


@pytest.mark.parametrize("isbn", ["0306406152", "080442957X", "9780306406157"])
def test_isbn_10_and_13_are_accepted(add_book, isbn):
    assert add_book(isbn=isbn)["isbn"] == isbn


def test_duplicate_isbn_is_409(app, client, staff, add_book):
    book = add_book()
    response = client.post(
        "/books/", json=book_body(isbn=book["isbn"]), headers=staff.headers
    )
    body = assert_error(response, 409, "conflict")
    assert body["details"] == [{"field": "isbn", "problem": "already exists"}]
    assert book_total(app) == 1


@pytest.mark.parametrize(
    "query, titles",
    [
        ("", ["Dune", "Emma", "Persuasion"]),
        ("q=AUST", ["Emma", "Persuasion"]),
        ("q=dun", ["Dune"]),
        ("author=jane austen", ["Emma", "Persuasion"]),
        ("available=true", ["Dune", "Persuasion"]),
        ("available=false", ["Emma"]),
        ("sort=-title", ["Persuasion", "Emma", "Dune"]),
        ("sort=published_year", ["Emma", "Persuasion", "Dune"]),
        ("sort=-times_borrowed&per_page=1", ["Emma"]),
        ("sort=title&per_page=2&page=2", ["Persuasion"]),
        ("q=100%25", []),
    ],
)
def test_catalog_filters_and_sorts(client, add_book, member, query, titles):
    add_book(title="Dune", author="Frank Herbert", published_year=1965)
    emma = add_book(
        title="Emma", author="Jane Austen", published_year=1815, copies_total=1
    )
    add_book(title="Persuasion", author="Jane Austen", published_year=1817)
    borrow(client, member, emma["id"])
    response = client.get(f"/books/?{query}")
    assert response.status_code == 200
    body = response.get_json()
    assert_valid(list_schema(BookModel.read_schema), body)
    assert [book["title"] for book in body["items"]] == titles


def test_catalog_pages_with_links(client, add_book):
    for _ in range(5):
        add_book()
    response = client.get("/books/?per_page=2&page=2")
    body = response.get_json()
    assert body["total"] == 5 and len(body["items"]) == 2
    for rel in ("first", "prev", "next", "last"):
        assert f'rel="{rel}"' in response.headers["Link"]
    past = client.get("/books/?per_page=2&page=9").get_json()
    assert past["items"] == [] and past["total"] == 5


def test_the_unfiltered_total_is_kept_by_the_database(app, client, staff, add_book):
    """The total without filters comes from row_counts, kept by triggers for every
    insert and delete, also those made around the API (bulk loads, SQL)."""
    add_book()
    doomed = add_book()
    deleted = client.delete(f"/books/{doomed['id']}", headers=staff.headers)
    assert deleted.status_code == 204
    with app.app_context():
        rows = [book_body(copies_available=1, times_borrowed=0) for _ in range(3)]
        sql.session.execute(BookModel.__table__.insert(), rows)
        sql.session.execute(
            BookModel.__table__.delete().where(BookModel.isbn == rows[0]["isbn"])
        )
        sql.session.commit()
        counted = sql.session.scalar(select(func.count()).select_from(BookModel))
    assert counted == 3
    assert client.get("/books/").get_json()["total"] == 3
    assert client.get("/books/?q=dune").get_json()["total"] == 3


def test_the_kept_total_survives_a_truncate(app, client, add_book, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has no TRUNCATE (a DELETE fires the row triggers)")
    add_book()
    with app.app_context():
        sql.session.execute(text("TRUNCATE books CASCADE"))
        sql.session.commit()
    assert client.get("/books/").get_json()["total"] == 0
    add_book()
    assert client.get("/books/").get_json()["total"] == 1


@pytest.mark.parametrize(
    "query", ["per_page=101", "sort=isbn", "available=yes", "page=0", "q=", "color=red"]
)
def test_catalog_rejects_bad_params(client, query):
    assert_error(client.get(f"/books/?{query}"), 400, "bad_request")


# --- One book: GET/PUT/PATCH/DELETE /books/<id>


def test_anyone_reads_a_book_with_an_etag(client, add_book):
    book = add_book()
    response = client.get(f"/books/{book['id']}")
    assert response.status_code == 200 and response.get_json() == book
    again = client.get(
        f"/books/{book['id']}", headers={"If-None-Match": response.headers["ETag"]}
    )
    assert again.status_code == 304


def test_unknown_book_is_404(client, staff):
    assert_error(client.get("/books/424242"), 404, "not_found")
    for method in ("put", "patch"):
        response = getattr(client, method)(
            "/books/424242", json=book_body(), headers=staff.headers
        )
        assert_error(response, 404, "not_found")
    assert_error(
        client.delete("/books/424242", headers=staff.headers), 404, "not_found"
    )


def test_put_replaces_every_writable_field(client, staff, add_book):
    book = add_book()
    before = client.get(f"/books/{book['id']}").headers["ETag"]
    replacement = book_body(title="Dune Messiah", copies_total=5)
    del replacement["published_year"]
    response = client.put(
        f"/books/{book['id']}", json=replacement, headers=staff.headers
    )
    assert response.status_code == 200
    updated = response.get_json()
    assert_valid(BookModel.read_schema, updated)
    assert updated["title"] == "Dune Messiah" and updated["published_year"] is None
    assert (updated["copies_total"], updated["copies_available"]) == (5, 5)
    assert response.headers["ETag"] != before
    assert (
        response.headers["ETag"] == client.get(f"/books/{book['id']}").headers["ETag"]
    )


def test_put_needs_every_required_field(app, client, staff, add_book):
    book = add_book()
    response = client.put(
        f"/books/{book['id']}", json={"title": "Only"}, headers=staff.headers
    )
    assert_error(response, 400, "validation_error")
    assert stored_book(app, book["id"])["title"] == book["title"]


def test_patch_changes_some_fields(client, staff, add_book):
    book = add_book()
    response = client.patch(
        f"/books/{book['id']}", json={"author": "F. Herbert"}, headers=staff.headers
    )
    assert response.status_code == 200
    assert response.get_json()["author"] == "F. Herbert"
    assert response.get_json()["title"] == book["title"]


@pytest.mark.parametrize("body", [{}, {"copies_available": 1}, {"isbn": "123"}])
def test_patch_validates(app, client, staff, add_book, body):
    book = add_book()
    response = client.patch(f"/books/{book['id']}", json=body, headers=staff.headers)
    assert_error(response, 400, "validation_error")
    assert stored_book(app, book["id"]) == book


def test_changing_to_an_existing_isbn_is_409(app, client, staff, add_book):
    first, second = add_book(), add_book()
    response = client.patch(
        f"/books/{second['id']}", json={"isbn": first["isbn"]}, headers=staff.headers
    )
    assert_error(response, 409, "conflict")
    assert stored_book(app, second["id"])["isbn"] == second["isbn"]


def test_copies_total_moves_available_copies_and_never_drops_below_loans(
    app, client, staff, add_book, make_account
):
    book = add_book(copies_total=3)
    for _ in range(2):
        assert borrow(client, make_account("member"), book["id"]).status_code == 201
    too_few = client.patch(
        f"/books/{book['id']}", json={"copies_total": 1}, headers=staff.headers
    )
    body = assert_error(too_few, 409, "conflict")
    assert body["details"][0]["field"] == "copies_total"
    assert stored_book(app, book["id"])["copies_total"] == 3
    exact = client.patch(
        f"/books/{book['id']}", json={"copies_total": 2}, headers=staff.headers
    )
    assert (exact.get_json()["copies_total"], exact.get_json()["copies_available"]) == (
        2,
        0,
    )
    more = client.patch(
        f"/books/{book['id']}", json={"copies_total": 6}, headers=staff.headers
    )
    assert (more.get_json()["copies_total"], more.get_json()["copies_available"]) == (
        6,
        4,
    )


def test_writes_honour_if_match(app, client, staff, add_book):
    book = add_book()
    stale = client.get(f"/books/{book['id']}").headers["ETag"]
    client.patch(f"/books/{book['id']}", json={"title": "New"}, headers=staff.headers)
    for method, body in (
        ("put", book_body(isbn=book["isbn"])),
        ("patch", {"title": "Old"}),
        ("delete", None),
    ):
        response = getattr(client, method)(
            f"/books/{book['id']}",
            json=body,
            headers={**staff.headers, "If-Match": stale},
        )
        assert_error(response, 412, "precondition_failed")
    assert stored_book(app, book["id"])["title"] == "New"
    current = client.get(f"/books/{book['id']}").headers["ETag"]
    response = client.delete(
        f"/books/{book['id']}", headers={**staff.headers, "If-Match": current}
    )
    assert response.status_code == 204


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_book_writes_need_staff(client, member, add_book, method):
    book = add_book()
    response = getattr(client, method)(
        f"/books/{book['id']}", json=book_body(), headers=member.headers
    )
    assert_error(response, 403, "forbidden")
    assert_error(
        getattr(client, method)(f"/books/{book['id']}", json=book_body()),
        401,
        "unauthorized",
    )


def test_delete_is_refused_while_on_loan_and_takes_history_after(
    app, client, staff, member, add_book
):
    book = add_book()
    loan = borrow(client, member, book["id"]).get_json()
    assert_error(
        client.delete(f"/books/{book['id']}", headers=staff.headers), 409, "conflict"
    )
    assert stored_book(app, book["id"]) is not None
    client.post(f"/books/loans/{loan['id']}/return", headers=member.headers)
    assert (
        client.delete(f"/books/{book['id']}", headers=staff.headers).status_code == 204
    )
    assert (
        stored_book(app, book["id"]) is None
        and loan_count(app, book_id=book["id"]) == 0
    )
    assert_error(client.get(f"/books/{book['id']}"), 404, "not_found")


# --- Borrowing: POST /books/<id>/loans


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


# --- Idempotency-Key


def test_a_retry_with_the_same_key_returns_the_first_loan(
    app, client, member, add_book
):
    book = add_book()
    first = borrow(client, member, book["id"], **{"Idempotency-Key": "borrow-1"})
    retry = borrow(client, member, book["id"], **{"Idempotency-Key": "borrow-1"})
    assert first.status_code == retry.status_code == 201
    assert first.get_json() == retry.get_json()
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert loan_count(app, book_id=book["id"]) == 1
    assert stored_book(app, book["id"])["copies_available"] == 2


def test_a_failed_first_attempt_is_replayed_too(client, add_book, make_account):
    book = add_book(copies_total=1)
    holder, member = make_account("member"), make_account("member")
    loan = borrow(client, holder, book["id"]).get_json()
    first = borrow(client, member, book["id"], **{"Idempotency-Key": "k"})
    assert_error(first, 409, "conflict")
    client.post(f"/books/loans/{loan['id']}/return", headers=holder.headers)
    retry = borrow(client, member, book["id"], **{"Idempotency-Key": "k"})
    assert_error(retry, 409, "conflict")
    assert retry.get_json()["message"] == first.get_json()["message"]
    assert (
        borrow(client, member, book["id"], **{"Idempotency-Key": "k2"}).status_code
        == 201
    )


def test_keys_are_scoped_to_the_user(client, add_book, make_account):
    book = add_book()
    one, two = make_account("member"), make_account("member")
    first = borrow(client, one, book["id"], **{"Idempotency-Key": "same"}).get_json()
    second = borrow(client, two, book["id"], **{"Idempotency-Key": "same"}).get_json()
    assert first["id"] != second["id"] and second["user_id"] == two.id


def test_a_key_reused_for_another_request_is_409(client, member, add_book):
    first, second = add_book(), add_book()
    borrow(client, member, first["id"], **{"Idempotency-Key": "reused"})
    response = borrow(client, member, second["id"], **{"Idempotency-Key": "reused"})
    assert_error(response, 409, "conflict")


@pytest.mark.parametrize("key", ["", "x" * 256, "has space"])
def test_malformed_keys_are_400(app, client, member, add_book, key):
    book = add_book()
    response = borrow(client, member, book["id"], **{"Idempotency-Key": key})
    assert_error(response, 400, "bad_request")
    assert loan_count(app) == 0


# --- Loans: GET /books/loans/, GET /books/loans/<id>, POST .../return


def test_members_see_their_own_loans_and_staff_see_all(
    client, staff, add_book, make_account
):
    one, two = make_account("member"), make_account("member")
    book = add_book()
    for account in (one, two):
        borrow(client, account, book["id"])
    mine = client.get("/books/loans/", headers=one.headers)
    assert_valid(list_schema(LoanModel.read_schema), mine.get_json())
    assert [loan["user_id"] for loan in mine.get_json()["items"]] == [one.id]
    assert client.get("/books/loans/", headers=staff.headers).get_json()["total"] == 2
    filtered = client.get(
        f"/books/loans/?user_id={two.id}", headers=staff.headers
    ).get_json()
    assert [loan["user_id"] for loan in filtered["items"]] == [two.id]
    peeking = client.get(
        f"/books/loans/?user_id={two.id}", headers=one.headers
    ).get_json()
    assert peeking["items"] == [] and peeking["total"] == 0


def test_loans_filter_open_and_sort(client, member, add_book):
    loans = [borrow(client, member, add_book()["id"]).get_json() for _ in range(3)]
    client.post(f"/books/loans/{loans[0]['id']}/return", headers=member.headers)
    open_ids = [
        loan["id"]
        for loan in client.get(
            "/books/loans/?open=true&sort=id", headers=member.headers
        ).get_json()["items"]
    ]
    assert open_ids == [loans[1]["id"], loans[2]["id"]]
    closed = client.get("/books/loans/?open=false", headers=member.headers).get_json()[
        "items"
    ]
    assert [loan["id"] for loan in closed] == [loans[0]["id"]]
    newest = client.get("/books/loans/", headers=member.headers).get_json()["items"]
    assert newest[0]["id"] == loans[2]["id"]


@pytest.mark.parametrize(
    "query", ["open=maybe", "user_id=0", "sort=book_id", "per_page=500"]
)
def test_loan_list_rejects_bad_params(client, member, query):
    assert_error(
        client.get(f"/books/loans/?{query}", headers=member.headers), 400, "bad_request"
    )


def test_loan_lists_need_a_token(client):
    assert_error(client.get("/books/loans/"), 401, "unauthorized")


def test_a_loan_is_visible_to_its_borrower_and_staff_only(
    client, staff, add_book, make_account
):
    owner, other = make_account("member"), make_account("member")
    loan = borrow(client, owner, add_book()["id"]).get_json()
    mine = client.get(f"/books/loans/{loan['id']}", headers=owner.headers)
    assert mine.status_code == 200 and mine.get_json() == loan
    assert (
        client.get(
            f"/books/loans/{loan['id']}",
            headers={**owner.headers, "If-None-Match": mine.headers["ETag"]},
        ).status_code
        == 304
    )
    assert (
        client.get(f"/books/loans/{loan['id']}", headers=staff.headers).status_code
        == 200
    )
    assert_error(
        client.get(f"/books/loans/{loan['id']}", headers=other.headers),
        404,
        "not_found",
    )
    assert_error(
        client.get("/books/loans/424242", headers=owner.headers), 404, "not_found"
    )
    assert_error(client.get(f"/books/loans/{loan['id']}"), 401, "unauthorized")


def test_returning_a_loan(app, client, member, add_book):
    book = add_book(copies_total=1)
    loan = borrow(client, member, book["id"]).get_json()
    response = client.post(f"/books/loans/{loan['id']}/return", headers=member.headers)
    assert response.status_code == 200
    returned = response.get_json()
    assert_valid(LoanModel.read_schema, returned)
    assert returned["returned_at"] is not None and returned["id"] == loan["id"]
    assert stored_book(app, book["id"])["copies_available"] == 1
    again = client.post(f"/books/loans/{loan['id']}/return", headers=member.headers)
    assert_error(again, 409, "conflict")
    assert stored_book(app, book["id"])["copies_available"] == 1


def test_only_the_borrower_or_staff_return_a_loan(
    app, client, staff, add_book, make_account
):
    owner, other = make_account("member"), make_account("member")
    book = add_book()
    loan = borrow(client, owner, book["id"]).get_json()
    response = client.post(f"/books/loans/{loan['id']}/return", headers=other.headers)
    assert_error(response, 404, "not_found")
    assert_error(client.post(f"/books/loans/{loan['id']}/return"), 401, "unauthorized")
    assert_error(
        client.post("/books/loans/424242/return", headers=staff.headers),
        404,
        "not_found",
    )
    assert (
        client.post(
            f"/books/loans/{loan['id']}/return", headers=staff.headers
        ).status_code
        == 200
    )


def test_members_with_loans_on_record_are_not_deleted(
    app, client, admin, member, add_book
):
    borrow(client, member, add_book()["id"])
    assert_error(
        client.delete(f"/users/{member.id}", headers=admin.headers), 409, "conflict"
    )
    with app.app_context():
        assert sql.session.get(UserModel, member.id) is not None


# --- Popular books


def test_popular_orders_by_times_borrowed_then_id(client, add_book, make_account):
    books = [add_book(title=f"B{n}", copies_total=5) for n in range(4)]
    for book, times in zip(books, (1, 3, 0, 3)):
        for _ in range(times):
            borrow(client, make_account("member"), book["id"])
    response = client.get("/books/popular?limit=3")
    assert response.status_code == 200
    body = response.get_json()
    assert [book["title"] for book in body["items"]] == ["B1", "B3", "B0"]
    assert body["limit"] == 3
    for book in body["items"]:
        assert_valid(BookModel.read_schema, book)
    assert len(client.get("/books/popular").get_json()["items"]) == 4


def test_popular_is_fresh_after_every_change(client, staff, member, add_book):
    first, second = add_book(title="First"), add_book(title="Second")
    borrow(client, member, first["id"])
    assert (
        client.get("/books/popular?limit=1").get_json()["items"][0]["title"] == "First"
    )
    other = borrow(client, member, second["id"]).get_json()
    borrow(client, staff, second["id"])
    top = client.get("/books/popular?limit=1").get_json()["items"][0]
    assert (top["title"], top["times_borrowed"], top["copies_available"]) == (
        "Second",
        2,
        1,
    )
    client.post(f"/books/loans/{other['id']}/return", headers=member.headers)
    assert (
        client.get("/books/popular?limit=1").get_json()["items"][0]["copies_available"]
        == 2
    )
    client.patch(
        f"/books/{second['id']}", json={"title": "Renamed"}, headers=staff.headers
    )
    assert (
        client.get("/books/popular?limit=1").get_json()["items"][0]["title"]
        == "Renamed"
    )


@pytest.mark.parametrize("limit", ["0", "51", "ten", "-1"])
def test_popular_limit_is_1_to_50(client, limit):
    assert_error(client.get(f"/books/popular?limit={limit}"), 400, "bad_request")


def test_the_catalog_reads_without_redis(make_app, add_book):
    add_book()
    cut_off = make_app(REDIS_URL="redis://127.0.0.1:1/0").test_client()
    assert cut_off.get("/books/popular").status_code == 200
    assert cut_off.get("/books/").get_json()["total"] == 1


# --- Demo data


def test_seed_loads_demo_data_once(app):
    runner = app.test_cli_runner()
    for _ in range(2):
        result = runner.invoke(args=["seed"])
        assert result.exit_code == 0, result.output
        assert "Demo data ready: 4 users" in result.output
    with app.app_context():
        from myapp.sites.containers import ContainerModel
        from myapp.sites.instruments import ComputerModel
        from myapp.sites.models import SiteModel

        counts = [
            sql.session.scalar(select(func.count()).select_from(model))
            for model in (UserModel, BookModel, LoanModel, SiteModel)
        ]
        assert counts == [4, 16, 6, 2]
        for model, expected in ((ComputerModel, 3), (ContainerModel, 3)):
            assert (
                sql.session.scalar(select(func.count()).select_from(model)) == expected
            )
        top = BookModel.popular(1)[0]
        assert (top["title"], top["times_borrowed"]) == ("Dracula", 3)
    client = app.test_client()
    sign_in(client, "member@example.com", "demo password 123")


def test_the_dev_server_loads_demo_data(app):
    """devserver.py (make run) seeds through this function."""
    from myapp.cli import load_demo_data

    with app.app_context():
        users, books = load_demo_data()
    assert len(users) == 4 and len(books) == 16
    assert client_sees_books(app) == 16


def client_sees_books(app) -> int:
    return app.test_client().get("/books/").get_json()["total"]


def test_seed_refuses_production(app):
    app.config["MYAPP_ENV"] = "production"
    result = app.test_cli_runner().invoke(args=["seed"])
    assert result.exit_code != 0 and "public passwords" in result.output
    assert book_total(app) == 0


# --- Races against a live gunicorn: real commits, real concurrency


def live_members(live, count):
    session = requests.Session()
    tokens = []
    for number in range(count):
        email = f"racer{number}-{next_serial()}@example.com"
        body = {"email": email, "password": PASSWORD, "name": "Racer"}
        assert session.post(f"{live}/users/", json=body).status_code == 201
        pair = session.post(
            f"{live}/users/tokens", json={"email": email, "password": PASSWORD}
        ).json()
        tokens.append({"Authorization": f"Bearer {pair['access_token']}"})
    return tokens


def live_book(live, committing_app, copies):
    with committing_app.app_context():
        book = BookModel(
            **book_body(copies_total=copies), copies_available=copies, times_borrowed=0
        )
        sql.session.add(book)
        sql.session.commit()
        return book.id


def race(url, headers_list):
    barrier, results = threading.Barrier(len(headers_list)), []

    def run(headers):
        barrier.wait()
        response = requests.post(url, headers=headers, timeout=30)
        results.append((response.status_code, response.json()))

    threads = [
        threading.Thread(target=run, args=(headers,)) for headers in headers_list
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.parametrize("attempt", range(3))
def test_fifty_borrowers_race_for_three_copies(live, committing_app, attempt):
    members = live_members(live, 50)
    book_id = live_book(live, committing_app, copies=3)
    results = race(f"{live}/books/{book_id}/loans", members)
    statuses = sorted(status for status, _ in results)
    assert statuses == [201] * 3 + [409] * 47, statuses
    with committing_app.app_context():
        book = sql.session.get(BookModel, book_id)
        loans = sql.session.scalar(
            select(func.count()).where(LoanModel.book_id == book_id)
        )
        assert (loans, book.copies_available, book.times_borrowed) == (3, 0, 3)


@pytest.mark.parametrize("attempt", range(3))
def test_ten_parallel_retries_with_one_key_borrow_once(live, committing_app, attempt):
    (member,) = live_members(live, 1)
    book_id = live_book(live, committing_app, copies=3)
    headers = {**member, "Idempotency-Key": f"parallel-{attempt}"}
    results = race(f"{live}/books/{book_id}/loans", [headers] * 10)
    assert {status for status, _ in results} == {201}
    assert len({body["id"] for _, body in results}) == 1
    with committing_app.app_context():
        loans = sql.session.scalar(
            select(func.count()).where(LoanModel.book_id == book_id)
        )
        assert loans == 1 and sql.session.get(BookModel, book_id).copies_available == 2


def race_borrows(live, member, book_ids):
    """Borrow these books for one member, all at once: the statuses."""
    barrier, statuses = threading.Barrier(len(book_ids)), []

    def run(book_id):
        barrier.wait()
        url = f"{live}/books/{book_id}/loans"
        statuses.append(requests.post(url, headers=member, timeout=30).status_code)

    threads = [threading.Thread(target=run, args=(book,)) for book in book_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(statuses)


def open_loans_of(committing_app, member) -> int:
    token = member["Authorization"].split()[1]
    with committing_app.app_context():
        from flask_jwt_extended import decode_token

        user_id = int(decode_token(token)["sub"])
        return sql.session.scalar(
            select(func.count()).where(
                LoanModel.user_id == user_id, LoanModel.returned_at.is_(None)
            )
        )


@pytest.mark.parametrize("attempt", range(5))
def test_borrows_at_once_keep_the_open_loan_cap(live, committing_app, attempt):
    """A member with four open loans borrows four more books at once: one loan
    fits under the cap of five, whichever worker each borrow reaches."""
    (member,) = live_members(live, 1)
    for book in [live_book(live, committing_app, copies=1) for _ in range(4)]:
        assert requests.post(f"{live}/books/{book}/loans", headers=member).ok
    more = [live_book(live, committing_app, copies=1) for _ in range(4)]
    assert race_borrows(live, member, more) == [201, 409, 409, 409]
    assert open_loans_of(committing_app, member) == 5


@pytest.mark.parametrize("attempt", range(5))
def test_one_book_borrowed_at_once_by_one_member_is_one_loan(
    live, committing_app, attempt
):
    (member,) = live_members(live, 1)
    book = live_book(live, committing_app, copies=5)
    assert race_borrows(live, member, [book] * 6) == [201] + [409] * 5
    assert open_loans_of(committing_app, member) == 1
    with committing_app.app_context():
        assert sql.session.get(BookModel, book).copies_available == 4


# --- The spec, fuzzed


# Generated ISBNs come from a range the tests' own serial numbers never reach.
ISBN13 = st.integers(10**8, 10**9 - 1).map(isbn13)
schemathesis.openapi.format("isbn", ISBN13)


@pytest.fixture
def books_schema(make_app, add_book, member):
    """The spec of an app with a book on loan, and a budget fuzzing cannot exhaust."""
    app = make_app(RATELIMIT_DEFAULT="100000 per hour")
    book = add_book()
    app.test_client().post(f"/books/{book['id']}/loans", headers=member.headers)
    return schemathesis.openapi.from_wsgi("/books/openapi.json", app)


books_api = schemathesis.pytest.from_fixture("books_schema")


@books_api.parametrize()
def test_books_api_conforms_to_its_spec(case, staff):
    if case.headers and "Authorization" in case.headers:
        case.headers["Authorization"] = staff.headers["Authorization"]
    case.call_and_validate()


# --- Edge cases found in review


def test_patch_clears_published_year(client, staff, add_book):
    book = add_book()
    response = client.patch(
        f"/books/{book['id']}", json={"published_year": None}, headers=staff.headers
    )
    assert response.status_code == 200 and response.get_json()["published_year"] is None


@pytest.mark.parametrize(
    "sort, first", [("published_year", "Known"), ("-published_year", "Unknown")]
)
def test_nulls_sort_as_largest_on_both_databases(client, add_book, sort, first):
    add_book(title="Unknown", published_year=None)
    add_book(title="Known", published_year=1900)
    titles = [
        book["title"] for book in client.get(f"/books/?sort={sort}").get_json()["items"]
    ]
    assert titles[0] == first


@pytest.mark.parametrize("field", ["title", "author"])
@pytest.mark.parametrize(
    "value",
    ["Dune\n", "Du\u0085ne", "\u00a0", "\u3000\u2003", "\ufeff"],
    ids=["newline", "C1-control", "no-break-space", "ideographic-spaces", "bom"],
)
def test_control_characters_and_blanks_are_not_text(app, client, staff, field, value):
    response = client.post(
        "/books/", json=book_body(**{field: value}), headers=staff.headers
    )
    assert_error(response, 400, "validation_error")
    assert book_total(app) == 0


def test_text_in_any_script_with_inner_spaces_is_text(client, staff):
    body = book_body(title="\u00a0Война\u3000и мир ", author="Лев Толстой")
    response = client.post("/books/", json=body, headers=staff.headers)
    assert response.status_code == 201 and response.get_json()["title"] == body["title"]


@pytest.mark.parametrize("spelling", ["2.0", "2e0", "0.2e1", "20E-1"])
def test_a_whole_number_is_an_integer_however_it_is_spelled(client, staff, spelling):
    """JSON Schema takes 2.0 for the integer 2: it is stored, answered and tagged
    as 2, so the 201's ETag is the one a later read gives."""
    raw = json.dumps(book_body(copies_total=0)).replace(
        '"copies_total": 0', f'"copies_total": {spelling}'
    )
    created = client.post(
        "/books/", data=raw, content_type="application/json", headers=staff.headers
    )
    assert created.status_code == 201
    assert created.get_json()["copies_total"] == 2
    assert '"copies_total":2,' in created.get_data(as_text=True).replace(" ", "")
    read = client.get(f"/books/{created.get_json()['id']}")
    assert read.headers["ETag"] == created.headers["ETag"]


@pytest.mark.parametrize("padding, status", [(2 * 1024 * 1024, 413), (100, 201)])
def test_a_body_sent_in_chunks_is_held_to_the_same_limit(
    live, committing_app, padding, status
):
    """Through gunicorn, without Content-Length: a body past MAX_CONTENT_LENGTH is
    a 413 and writes nothing, even when its first MiB alone would be valid JSON."""
    email = f"chunks-{next_serial()}@example.com"
    with committing_app.app_context():
        UserModel.create({"email": email, "password": PASSWORD, "name": "S"}, "staff")
        sql.session.commit()
    token = requests.post(
        f"{live}/users/tokens", json={"email": email, "password": PASSWORD}
    ).json()["access_token"]
    staff = {"Authorization": f"Bearer {token}"}
    body = json.dumps(book_body()).encode() + b" " * padding
    chunks = (body[i : i + 65536] for i in range(0, len(body), 65536))
    response = requests.post(
        f"{live}/books/",
        data=chunks,
        headers={**staff, "Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == status
    with committing_app.app_context():
        assert book_total(committing_app) == (1 if status == 201 else 0)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_json_numbers_are_a_bad_request(app, client, staff, literal):
    raw = json.dumps(book_body(copies_total=0)).replace(
        '"copies_total": 0', f'"copies_total": {literal}'
    )
    response = client.post(
        "/books/", data=raw, content_type="application/json", headers=staff.headers
    )
    assert_error(response, 400, "bad_request")
    assert book_total(app) == 0


def test_popular_is_fresh_after_delete_and_copy_changes(
    client, staff, member, add_book
):
    gone = add_book(title="Gone")
    add_book(title="Kept")
    loan = borrow(client, member, gone["id"]).get_json()
    assert (
        client.get("/books/popular?limit=1").get_json()["items"][0]["title"] == "Gone"
    )
    client.patch(
        f"/books/{gone['id']}", json={"copies_total": 9}, headers=staff.headers
    )
    assert (
        client.get("/books/popular?limit=1").get_json()["items"][0]["copies_total"] == 9
    )
    client.post(f"/books/loans/{loan['id']}/return", headers=member.headers)
    client.delete(f"/books/{gone['id']}", headers=staff.headers)
    assert [
        book["title"] for book in client.get("/books/popular").get_json()["items"]
    ] == ["Kept"]


@pytest.mark.parametrize("retry_body", ["{}", " { } ", ""])
def test_a_retry_with_or_without_an_empty_body_is_the_same_request(
    client, member, add_book, retry_body
):
    """A generated client may send {} where another sends nothing: one request."""
    book = add_book()
    first = borrow(client, member, book["id"], **{"Idempotency-Key": "same-body"})
    retry = client.post(
        f"/books/{book['id']}/loans",
        data=retry_body,
        content_type="application/json",
        headers={**member.headers, "Idempotency-Key": "same-body"},
    )
    assert retry.status_code == 201 and retry.headers["Idempotent-Replayed"] == "true"
    assert retry.get_json() == first.get_json()


def test_an_idempotency_record_lives_24_hours(client, member, add_book, redis_client):
    borrow(client, member, add_book()["id"], **{"Idempotency-Key": "ttl"})
    (key,) = redis_client.keys("*idempotency*")
    assert 86400 - 5 <= redis_client.ttl(key) <= 86400


def test_a_failed_commit_releases_the_key(app, client, member, add_book, monkeypatch):
    import sqlalchemy

    book = add_book()

    def fail():
        raise sqlalchemy.exc.OperationalError("COMMIT", {}, Exception("database gone"))

    monkeypatch.setattr(sql.session, "commit", fail)
    first = borrow(client, member, book["id"], **{"Idempotency-Key": "retry-me"})
    assert_error(first, 503, "service_unavailable")
    monkeypatch.undo()
    retry = borrow(client, member, book["id"], **{"Idempotency-Key": "retry-me"})
    assert retry.status_code == 201 and "Idempotent-Replayed" not in retry.headers


def test_a_committed_borrow_is_201_even_if_its_record_cannot_be_kept(
    app, client, member, add_book, monkeypatch
):
    import redis

    import myapp.idempotency

    def fail(*args, **kwargs):
        raise redis.exceptions.ConnectionError("Redis went away")

    monkeypatch.setattr(myapp.idempotency, "store", fail)
    book = add_book()
    response = borrow(client, member, book["id"], **{"Idempotency-Key": "lost"})
    assert response.status_code == 201
    assert loan_count(app, book_id=book["id"]) == 1
