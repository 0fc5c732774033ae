"""A Python integration's flow through a client generated from /openapi.json by
openapi-python-client (the package `myapp_client`, on PYTHONPATH).
deploy/test_generated_clients.py generates it from a live server and runs:

    python clients/python/flow.py BASE_URL EMAIL PASSWORD

Every step checks the status the API documents for it, and the run stops with an
error at the first that differs.
"""

import sys
import uuid

from myapp_client import AuthenticatedClient, Client
from myapp_client.api.books import get_book, get_books
from myapp_client.api.loans import post_book_loans, post_loan_return
from myapp_client.api.profile import get_me, patch_me
from myapp_client.api.tokens import delete_current_token, post_tokens
from myapp_client.models import Book, Credentials, Error, Loan, ProfileUpdate


def expect(step: str, response, status: int):
    if response.status_code != status:
        raise SystemExit(f"{step}: expected {status}, got {response.status_code}")
    print(f"ok   {status} {step}")
    return response.parsed


def expect_problem(step: str, problem, code: str) -> None:
    if not isinstance(problem, Error) or problem.code != code:
        raise SystemExit(f"{step}: expected the error {code}, got {problem!r}")


def main(base_url: str, email: str, password: str) -> None:
    credentials = Credentials(email=email, password=password)
    with Client(base_url=base_url) as anonymous:
        response = post_tokens.sync_detailed(client=anonymous, body=credentials)
    tokens = expect("sign in", response, 201)
    with AuthenticatedClient(base_url=base_url, token=tokens.access_token) as api:
        run(api)


def run(api: AuthenticatedClient) -> None:
    page = expect(
        "list books",
        get_books.sync_detailed(client=api, available=True, per_page=5),
        200,
    )
    book: Book = page.items[0]

    key = f"python-flow-{uuid.uuid4()}"
    borrow = dict(client=api, book_id=book.id, idempotency_key=key)
    loan: Loan = expect("borrow", post_book_loans.sync_detailed(**borrow), 201)
    retried = post_book_loans.sync_detailed(**borrow)
    replay: Loan = expect("retry the borrow", retried, 201)
    if retried.headers.get("Idempotent-Replayed") != "true" or replay.id != loan.id:
        raise SystemExit("retry the borrow: not the first answer replayed")
    print(f"ok       the retry replayed loan {loan.id}")

    again = post_book_loans.sync_detailed(client=api, book_id=book.id)
    expect_problem("borrow it again", expect("borrow it again", again, 409), "conflict")

    read = get_book.sync_detailed(client=api, book_id=book.id)
    expect("read the book", read, 200)
    cached = get_book.sync_detailed(
        client=api, book_id=book.id, if_none_match=read.headers["ETag"]
    )
    expect("read it with If-None-Match", cached, 304)

    me = get_me.sync_detailed(client=api)
    expect("your profile", me, 200)
    change = dict(
        client=api, body=ProfileUpdate(name="Python Flow"), if_match=me.headers["ETag"]
    )
    expect("rename yourself", patch_me.sync_detailed(**change), 200)
    stale = expect("rename from a stale copy", patch_me.sync_detailed(**change), 412)
    expect_problem("rename from a stale copy", stale, "precondition_failed")

    returned: Loan = expect(
        "return the loan",
        post_loan_return.sync_detailed(client=api, loan_id=loan.id),
        200,
    )
    if not returned.returned_at:
        raise SystemExit("return the loan: no returned_at")

    expect("sign out", delete_current_token.sync_detailed(client=api), 204)
    expect("your profile after signing out", get_me.sync_detailed(client=api), 401)
    print("the Python flow completed")


if __name__ == "__main__":
    main(*sys.argv[1:4])
