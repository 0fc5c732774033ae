"""The ceiling: a bare Flask app doing myapp's `GET /books/<id>` with the raw
driver (one psycopg connection per worker, no ORM, no extensions), and the seed's
"load every book and sort in Python" popular books, for comparison.

Served by `bench/run.py` under the same servers and worker counts as myapp.
"""

import os
from collections import Counter
from datetime import datetime, timezone

import psycopg
from flask import Flask, request

app = Flask(__name__)
BOOK_COLUMNS = (
    "id, title, author, isbn, published_year, copies_total, copies_available,"
    " times_borrowed, created_at, updated_at"
)
FIELDS = [name.strip() for name in BOOK_COLUMNS.split(",")]
_connection = None


def connection() -> psycopg.Connection:
    """One autocommit connection per worker process, opened on first use (after
    the fork)."""
    global _connection
    if _connection is None or _connection.closed:
        url = os.environ["DATABASE_URL"]
        _connection = psycopg.connect(url, autocommit=True)
    return _connection


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def book_json(row) -> dict:
    book = dict(zip(FIELDS, row))
    book["created_at"] = iso(book["created_at"])
    book["updated_at"] = iso(book["updated_at"])
    return book


@app.get("/books/<int:book_id>")
def book(book_id: int):
    row = (
        connection()
        .execute(f"SELECT {BOOK_COLUMNS} FROM books WHERE id = %s", (book_id,))
        .fetchone()
    )
    if row is None:
        return {"code": "not_found", "message": "Book not found"}, 404
    return book_json(row)


@app.get("/books/popular")
def popular_sorted_in_python():
    """The seed's approach A: fetch every book, rank by its loans in Python, keep
    the top. (Loans are counted from one query, not one query per book, which is
    kinder to this approach than the seed's lazy `len(book.loans)`.)"""
    limit = int(request.args.get("limit", 10))
    db = connection()
    books = db.execute(f"SELECT {BOOK_COLUMNS} FROM books").fetchall()
    loans = Counter(book_id for (book_id,) in db.execute("SELECT book_id FROM loans"))
    books.sort(key=lambda row: (-loans[row[0]], row[0]))
    return {"items": [book_json(row) for row in books[:limit]], "limit": limit}
