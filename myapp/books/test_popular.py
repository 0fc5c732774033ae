"""Popular books, GET /books/popular: ordering, freshness after every change,
and the catalog read without Redis."""

import pytest

from myapp.books.models import BookModel
from myapp.testing import assert_error, assert_valid
from myapp.books.testing import borrow


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
