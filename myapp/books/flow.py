"""The books feature's steps of the client flow (myapp/flow.py)."""

from myapp.steps import ADMIN, MEMBER, Step

BOOK = {
    "title": "The Flow of Things",
    "author": "Ada Client",
    "isbn": "{{isbn}}",
    "published_year": 2024,
    "copies_total": 2,
}

CATALOG = [
    Step(
        "Add a book",
        "post_books",
        201,
        ADMIN,
        body=BOOK,
        keep={"bookId": "id", "bookEtag": "header:ETag"},
    ),
    Step("Add it again: the ISBN is taken", "post_books", 409, ADMIN, body=BOOK),
    Step("A member may not add books", "post_books", 403, MEMBER, body=BOOK),
    Step("The catalog", "get_books", 200),
    Step("A bad sort is a bad request", "get_books", 400, query={"sort": "colour"}),
    Step("The book", "get_book", 200, path={"book_id": "{{bookId}}"}),
    Step(
        "The book, unchanged since you read it",
        "get_book",
        304,
        path={"book_id": "{{bookId}}"},
        headers={"If-None-Match": "{{bookEtag}}"},
    ),
    Step(
        "Replace the book",
        "put_book",
        200,
        ADMIN,
        path={"book_id": "{{bookId}}"},
        body={**BOOK, "copies_total": 3},
        headers={"If-Match": "{{bookEtag}}"},
        keep={"bookEtag": "header:ETag"},
    ),
    Step(
        "Change the book from a stale copy: refused",
        "patch_book",
        412,
        ADMIN,
        path={"book_id": "{{bookId}}"},
        body={"copies_total": 1},
        headers={"If-Match": '"stale"'},
    ),
    Step(
        "Change the book",
        "patch_book",
        200,
        ADMIN,
        path={"book_id": "{{bookId}}"},
        body={"published_year": 2025},
        headers={"If-Match": "{{bookEtag}}"},
    ),
]

LOANS = [
    Step(
        "Borrow the book",
        "post_book_loans",
        201,
        MEMBER,
        path={"book_id": "{{bookId}}"},
        headers={"Idempotency-Key": "flow-borrow-{{isbn}}"},
        keep={"loanId": "id"},
    ),
    Step(
        "Borrow again with the same Idempotency-Key: the first answer, replayed",
        "post_book_loans",
        201,
        MEMBER,
        path={"book_id": "{{bookId}}"},
        headers={"Idempotency-Key": "flow-borrow-{{isbn}}"},
        replayed=True,
    ),
    Step(
        "Borrow it a second time: you already have it",
        "post_book_loans",
        409,
        MEMBER,
        path={"book_id": "{{bookId}}"},
    ),
    Step(
        "Delete a book on loan: refused",
        "delete_book",
        409,
        ADMIN,
        path={"book_id": "{{bookId}}"},
    ),
    Step("Your loans", "get_loans", 200, MEMBER),
    Step("The loan", "get_loan", 200, MEMBER, path={"loan_id": "{{loanId}}"}),
    Step("The most borrowed books", "get_popular", 200),
    Step(
        "Return the loan",
        "post_loan_return",
        200,
        MEMBER,
        path={"loan_id": "{{loanId}}"},
    ),
    Step(
        "Return it again: already returned",
        "post_loan_return",
        409,
        MEMBER,
        path={"loan_id": "{{loanId}}"},
    ),
    Step(
        "Delete a member with loans on record: refused",
        "delete_user",
        409,
        ADMIN,
        path={"user_id": "{{memberId}}"},
    ),
    Step("Delete the book", "delete_book", 204, ADMIN, path={"book_id": "{{bookId}}"}),
    Step("The book is gone", "get_book", 404, path={"book_id": "{{bookId}}"}),
]
