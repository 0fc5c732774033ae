"""The catalog, POST /books/ and GET /books/, on PostgreSQL and SQLite: adding
books, validating their bodies, filtering, sorting and paging."""

import json

import pytest
import requests
from sqlalchemy import func, select, text

from myapp.testing import PASSWORD
from myapp.books.models import BookModel
from myapp.db import sql
from myapp.pagination import list_schema
from myapp.testing import assert_error, assert_valid, book_body, next_serial
from myapp.users.models import UserModel
from myapp.books.testing import book_total, borrow


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
