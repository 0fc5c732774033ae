"""Helpers the books tests share: borrowing and reading back what was stored."""

import requests
from sqlalchemy import func, select

from myapp.testing import PASSWORD
from myapp.books.loans import LoanModel
from myapp.books.models import BookModel
from myapp import tokens
from myapp.db import sql
from myapp.testing import book_body, next_serial


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


def book_total(app) -> int:
    with app.app_context():
        return sql.session.scalar(select(func.count()).select_from(BookModel))


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


def open_loans_of(committing_app, member) -> int:
    token = member["Authorization"].split()[1]
    with committing_app.app_context():
        user_id = int(tokens.verified(token)["sub"])
        return sql.session.scalar(
            select(func.count()).where(
                LoanModel.user_id == user_id, LoanModel.returned_at.is_(None)
            )
        )
