"""Borrowing with an Idempotency-Key: retries replay the first answer, keys are
scoped and validated, and a failed commit or a lost record is handled."""

import pytest

from myapp.db import sql
from myapp.testing import assert_error
from myapp.books.testing import borrow, loan_count, stored_book


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
