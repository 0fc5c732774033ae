"""Loans, GET /books/loans/, GET /books/loans/<id> and POST .../return: who
sees and returns which loan."""

import pytest

from myapp.books.loans import LoanModel
from myapp.db import sql
from myapp.pagination import list_schema
from myapp.testing import assert_error, assert_valid
from myapp.users.models import UserModel
from myapp.books.testing import borrow, stored_book


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
