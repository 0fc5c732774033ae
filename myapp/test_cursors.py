"""Pages named by cursor (keyset paging): following each `next` Link walks the same
rows in the same order as the page numbers do, for every sort of every list, ties
and NULLs included, on PostgreSQL and SQLite; and a cursor the API did not give,
or gave for another list or sort, is a 400 in the error shape."""

import re
from urllib.parse import parse_qs, urlsplit

import pytest

from myapp.testing import assert_error

PER_PAGE = 4


def next_link(response) -> str | None:
    found = re.search(r'<([^>]+)>; rel="next"', response.headers["Link"])
    return found and found.group(1)


def walk_by_cursor(client, path: str, headers: dict) -> list:
    """Every item of the list, following `next` Links from page 1."""
    response = client.get(path, headers=headers)
    items, number = [], 1
    while True:
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["page"] == number
        items += response.get_json()["items"]
        link = next_link(response)
        if link is None:
            return items
        query = parse_qs(urlsplit(link).query)
        number += 1
        assert query["page"] == [str(number)] and query["cursor"]
        response = client.get(link.split("localhost", 1)[-1], headers=headers)


def walk_by_number(client, path: str, headers: dict) -> list:
    items, number = [], 1
    while True:
        response = client.get(f"{path}&page={number}", headers=headers)
        page = response.get_json()["items"]
        if not page:
            return items
        items += page
        number += 1


@pytest.fixture
def catalog(add_book):
    """Books with tied titles and years, and some years unknown (NULL)."""
    for number in range(11):
        add_book(
            title=f"Title {number % 4}",
            author=f"Author {number % 3}",
            published_year=None if number % 3 == 0 else 1990 + number % 5,
        )


BOOK_SORTS = ["title", "author", "published_year", "times_borrowed", "created_at"]


@pytest.mark.parametrize("direction", ["", "-"])
@pytest.mark.parametrize("sort", BOOK_SORTS)
def test_cursors_walk_the_catalog_as_page_numbers_do(
    client, catalog, staff, sort, direction
):
    path = f"/books/?per_page={PER_PAGE}&sort={direction}{sort}"
    by_cursor = walk_by_cursor(client, path, {})
    assert len(by_cursor) == 11
    assert by_cursor == walk_by_number(client, path, {})


@pytest.mark.parametrize("sort", ["email", "-name", "created_at", "-id"])
def test_cursors_walk_the_users(client, admin, make_account, sort):
    for _ in range(6):
        make_account()
    path = f"/users/?per_page=3&sort={sort}"
    by_cursor = walk_by_cursor(client, path, admin.headers)
    assert len(by_cursor) == 7
    assert by_cursor == walk_by_number(client, path, admin.headers)


@pytest.mark.parametrize("sort", ["name", "-type", "site_name", "-id"])
def test_cursors_walk_the_instruments_view(client, add, site, member, sort):
    for number in range(4):
        add(f"/sites/{site['id']}/freezers", {"name": f"Box {number % 2}"})
        mac = f"02:00:00:00:01:0{number}"
        add(f"/sites/{site['id']}/computers", {"name": f"Box {number}", "mac": mac})
    path = f"/sites/instruments/?per_page=3&sort={sort}"
    by_cursor = walk_by_cursor(client, path, member.headers)
    assert len(by_cursor) == 8
    assert by_cursor == walk_by_number(client, path, member.headers)


def test_the_last_page_has_no_next_link(client, catalog):
    last = client.get(f"/books/?per_page={PER_PAGE}&page=3")
    assert len(last.get_json()["items"]) == 3 and next_link(last) is None


def cursor_of(client, path: str) -> str:
    return parse_qs(urlsplit(next_link(client.get(path))).query)["cursor"][0]


def test_a_cursor_the_api_did_not_give_is_a_400(client, catalog):
    cursor = cursor_of(client, "/books/?per_page=2")
    altered = cursor[:-3] + ("AAA" if not cursor.endswith("AAA") else "BBB")
    for sent in (altered, "garbage", "", "x" * 1000):
        body = assert_error(client.get(f"/books/?cursor={sent}"), 400, "bad_request")
        assert body["details"][0]["field"] == "cursor"


def test_a_cursor_of_another_sort_or_list_is_a_400(client, catalog, member, site):
    cursor = cursor_of(client, "/books/?per_page=2&sort=title")
    refused = client.get(f"/books/?sort=-title&cursor={cursor}")
    body = assert_error(refused, 400, "bad_request")
    assert body["details"] == [
        {"field": "cursor", "problem": "belongs to another list or sort"}
    ]
    elsewhere = client.get(f"/sites/?cursor={cursor}", headers=member.headers)
    assert_error(elsewhere, 400, "bad_request")


def test_a_page_that_contradicts_the_cursor_is_a_400(client, catalog):
    cursor = cursor_of(client, "/books/?per_page=2")
    assert client.get(f"/books/?per_page=2&page=2&cursor={cursor}").status_code == 200
    body = assert_error(
        client.get(f"/books/?per_page=2&page=5&cursor={cursor}"), 400, "bad_request"
    )
    assert body["details"][0]["field"] == "page"


def test_sessions_are_paged_by_number_only(client, member):
    response = client.get("/users/me/sessions?cursor=abc", headers=member.headers)
    body = assert_error(response, 400, "bad_request")
    assert body["details"][0]["field"] == "cursor"


def test_a_cursor_after_the_longest_title_is_taken(client, add_book):
    """A cursor carries the sort value of the page's last row: 300 characters of
    any script still make one the list takes."""
    for number in range(3):
        add_book(title=chr(0x4E00 + number) * 300)
    walked = walk_by_cursor(client, "/books/?per_page=1&sort=title", {})
    assert [book["title"][0] for book in walked] == ["一", "丁", "丂"]
