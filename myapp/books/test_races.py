"""Races against a live gunicorn: real commits, real concurrency, borrowing
from many clients at once."""

import threading

import pytest
import requests
from sqlalchemy import func, select

from myapp.books.loans import LoanModel
from myapp.books.models import BookModel
from myapp.db import sql
from myapp.books.testing import live_book, live_members, open_loans_of


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
