"""One book, GET/PUT/PATCH/DELETE /books/<id>: ETags, validation, If-Match,
staff-only writes, copies and deletes against loans."""

import pytest

from myapp.books.models import BookModel
from myapp.testing import assert_error, assert_valid, book_body
from myapp.books.testing import borrow, loan_count, stored_book


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


def test_patch_clears_published_year(client, staff, add_book):
    book = add_book()
    response = client.patch(
        f"/books/{book['id']}", json={"published_year": None}, headers=staff.headers
    )
    assert response.status_code == 200 and response.get_json()["published_year"] is None
