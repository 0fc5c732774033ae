"""The client flow: every operation of the API once or more, in an order a client
would take, each step with the status it must get. `flask --app myapp
export-clients` turns it into the Postman collection and api.http (myapp/clients.py),
taking each step's method, path and security from the OpenAPI document by its
operationId.

Values in {{double braces}} are variables: the accounts and generated values a run
starts with (VARIABLES), and what earlier steps keep from their responses (`keep`:
a variable from a JSON field of the body, or from a header as "header:Name").
"""

from dataclasses import dataclass, field

from myapp.cli import DEMO_PASSWORD

ADMIN, MEMBER, READER = "admin", "member", "reader"
# A step's actor is whose token it sends: the access token, or "...Refresh".
TOKENS = {
    ADMIN: "adminToken",
    MEMBER: "memberToken",
    READER: "readerToken",
    "memberRefresh": "memberRefreshToken",
}
# What a run starts with. The admin is the demo one of `make run`; the member is
# registered by the flow; every value that must be new on each run is made by the
# Postman collection's pre-request script (api.http keeps these fixed ones).
VARIABLES = {
    "baseUrl": "http://127.0.0.1:5000",
    "adminEmail": "admin@example.com",
    "adminPassword": DEMO_PASSWORD,
    "memberEmail": "flow-member@example.com",
    "readerEmail": "flow-reader@example.com",
    "memberPassword": "a long enough flow password",
    "isbn": "9780306406157",
    "mac": "02:00:00:00:00:01",
}
# Made new for each run by the collection's pre-request script.
GENERATED = ("memberEmail", "readerEmail", "isbn", "mac")


@dataclass(frozen=True)
class Number:
    """A variable holding a number: written without quotes in a JSON body."""

    variable: str


@dataclass(frozen=True)
class Step:
    name: str
    operation: str  # the operationId in /openapi.json
    expect: int
    actor: str | None = None
    path: dict = field(default_factory=dict)  # path parameter -> value
    query: dict = field(default_factory=dict)
    body: dict | None = None
    headers: dict = field(default_factory=dict)
    keep: dict = field(default_factory=dict)  # variable -> field or "header:Name"
    replayed: bool = False  # the answer must carry Idempotent-Replayed: true


def sign_in(name: str, who: str, email: str, password: str, **keep) -> Step:
    return Step(
        name,
        "post_tokens",
        201,
        body={"email": email, "password": password},
        keep={TOKENS[who]: "access_token", **keep},
    )


BOOK = {
    "title": "The Flow of Things",
    "author": "Ada Client",
    "isbn": "{{isbn}}",
    "published_year": 2024,
    "copies_total": 2,
}
MEMBER_CREDENTIALS = ("{{memberEmail}}", "{{memberPassword}}")

FLOW = [
    # Accounts and tokens
    sign_in("Sign in as the admin", ADMIN, "{{adminEmail}}", "{{adminPassword}}"),
    Step(
        "Register a member",
        "post_users",
        201,
        body={
            "email": "{{memberEmail}}",
            "password": "{{memberPassword}}",
            "name": "Flow Member",
        },
        keep={"memberId": "id"},
    ),
    Step(
        "Register the same email again: a conflict",
        "post_users",
        409,
        body={
            "email": "{{memberEmail}}",
            "password": "{{memberPassword}}",
            "name": "Flow Member",
        },
    ),
    sign_in(
        "Sign in as the member",
        MEMBER,
        *MEMBER_CREDENTIALS,
        memberRefreshToken="refresh_token",
    ),
    Step(
        "A wrong password is refused",
        "post_tokens",
        401,
        body={"email": "{{memberEmail}}", "password": "not the password"},
    ),
    Step(
        "Refresh the member's tokens",
        "post_token_refresh",
        201,
        "memberRefresh",
        keep={"memberToken": "access_token", "memberRefreshToken": "refresh_token"},
    ),
    Step("Your profile", "get_me", 200, MEMBER, keep={"meEtag": "header:ETag"}),
    Step(
        "Your profile, unchanged since you read it",
        "get_me",
        304,
        MEMBER,
        headers={"If-None-Match": "{{meEtag}}"},
    ),
    Step(
        "Rename yourself",
        "patch_me",
        200,
        MEMBER,
        body={"name": "Flow Member Renamed"},
        headers={"If-Match": "{{meEtag}}"},
    ),
    Step(
        "Rename yourself from a stale copy: refused",
        "patch_me",
        412,
        MEMBER,
        body={"name": "Stale"},
        headers={"If-Match": "{{meEtag}}"},
    ),
    Step(
        "Your sessions",
        "get_my_sessions",
        200,
        MEMBER,
        keep={"memberSessionId": "items.0.id"},
    ),
    Step("A member may not list users", "get_users", 403, MEMBER),
    Step("Users (admin)", "get_users", 200, ADMIN),
    Step(
        "The member (admin)",
        "get_user",
        200,
        ADMIN,
        path={"user_id": "{{memberId}}"},
        keep={"memberEtag": "header:ETag"},
    ),
    Step(
        "Rename the member (admin)",
        "patch_user",
        200,
        ADMIN,
        path={"user_id": "{{memberId}}"},
        body={"name": "Flow Member"},
        headers={"If-Match": "{{memberEtag}}"},
    ),
    # The catalog
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
    # Loans
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
    # Sites, their instruments and containers
    Step(
        "Add a site",
        "post_sites",
        201,
        ADMIN,
        body={"name": "Flow Lab", "country": "Norway"},
        keep={"siteId": "id"},
    ),
    Step("Sites", "get_sites", 200, MEMBER),
    Step(
        "The site",
        "get_site",
        200,
        MEMBER,
        path={"site_id": "{{siteId}}"},
        keep={"siteEtag": "header:ETag"},
    ),
    Step(
        "Replace the site",
        "put_site",
        200,
        ADMIN,
        path={"site_id": "{{siteId}}"},
        body={"name": "Flow Lab", "country": "Norway", "contact": "lab@example.com"},
        headers={"If-Match": "{{siteEtag}}"},
    ),
    Step(
        "Change the site",
        "patch_site",
        200,
        ADMIN,
        path={"site_id": "{{siteId}}"},
        body={"postcode_or_zip": "0150"},
    ),
    Step(
        "Add a freezer",
        "post_site_freezers",
        201,
        ADMIN,
        path={"site_id": "{{siteId}}"},
        body={"name": "Flow Freezer"},
        keep={"freezerId": "id"},
    ),
    Step(
        "The site's freezers",
        "get_site_freezers",
        200,
        MEMBER,
        path={"site_id": "{{siteId}}"},
    ),
    Step(
        "The freezer", "get_freezer", 200, MEMBER, path={"freezer_id": "{{freezerId}}"}
    ),
    Step(
        "Replace the freezer",
        "put_freezer",
        200,
        ADMIN,
        path={"freezer_id": "{{freezerId}}"},
        body={"name": "Flow Freezer -80", "site_id": Number("siteId")},
    ),
    Step(
        "Rename the freezer",
        "patch_freezer",
        200,
        ADMIN,
        path={"freezer_id": "{{freezerId}}"},
        body={"name": "Flow Freezer -80C"},
    ),
    Step(
        "Put a container in the freezer",
        "post_freezer_containers",
        201,
        ADMIN,
        path={"freezer_id": "{{freezerId}}"},
        body={"description": "Flow samples"},
        keep={"containerUuid": "uuid"},
    ),
    Step(
        "The freezer's containers",
        "get_freezer_containers",
        200,
        MEMBER,
        path={"freezer_id": "{{freezerId}}"},
    ),
    Step(
        "The container",
        "get_container",
        200,
        MEMBER,
        path={"container_uuid": "{{containerUuid}}"},
    ),
    Step(
        "Describe the container",
        "patch_container",
        200,
        ADMIN,
        path={"container_uuid": "{{containerUuid}}"},
        body={"description": "Flow samples, batch 2"},
    ),
    Step(
        "Delete a freezer that holds containers: refused",
        "delete_freezer",
        409,
        ADMIN,
        path={"freezer_id": "{{freezerId}}"},
    ),
    Step(
        "Add a computer",
        "post_site_computers",
        201,
        ADMIN,
        path={"site_id": "{{siteId}}"},
        body={"name": "Flow Computer", "mac": "{{mac}}"},
        keep={"computerId": "id"},
    ),
    Step(
        "The site's computers",
        "get_site_computers",
        200,
        MEMBER,
        path={"site_id": "{{siteId}}"},
    ),
    Step(
        "The computer",
        "get_computer",
        200,
        MEMBER,
        path={"computer_id": "{{computerId}}"},
    ),
    Step(
        "Replace the computer",
        "put_computer",
        200,
        ADMIN,
        path={"computer_id": "{{computerId}}"},
        body={"name": "Flow Computer", "mac": "{{mac}}", "site_id": Number("siteId")},
    ),
    Step(
        "Rename the computer",
        "patch_computer",
        200,
        ADMIN,
        path={"computer_id": "{{computerId}}"},
        body={"name": "Flow Workstation"},
    ),
    Step("Every instrument", "get_instruments", 200, MEMBER),
    Step(
        "The site's instruments",
        "get_site_instruments",
        200,
        MEMBER,
        path={"site_id": "{{siteId}}"},
    ),
    Step(
        "Delete a site with instruments: refused",
        "delete_site",
        409,
        ADMIN,
        path={"site_id": "{{siteId}}"},
    ),
    Step(
        "Take the container out",
        "delete_container",
        204,
        ADMIN,
        path={"container_uuid": "{{containerUuid}}"},
    ),
    Step(
        "Remove the freezer",
        "delete_freezer",
        204,
        ADMIN,
        path={"freezer_id": "{{freezerId}}"},
    ),
    Step(
        "Remove the computer",
        "delete_computer",
        204,
        ADMIN,
        path={"computer_id": "{{computerId}}"},
    ),
    Step("Remove the site", "delete_site", 204, ADMIN, path={"site_id": "{{siteId}}"}),
    # A second account, its sessions, and deleting it
    Step(
        "Register a reader",
        "post_users",
        201,
        body={
            "email": "{{readerEmail}}",
            "password": "{{memberPassword}}",
            "name": "Flow Reader",
        },
        keep={"readerId": "id"},
    ),
    sign_in("Sign in as the reader", READER, "{{readerEmail}}", "{{memberPassword}}"),
    sign_in("Sign in as the member again", MEMBER, *MEMBER_CREDENTIALS),
    Step(
        "Revoke the member's first session",
        "delete_my_session",
        204,
        MEMBER,
        path={"session_id": "{{memberSessionId}}"},
    ),
    Step(
        "Delete the reader (admin)",
        "delete_user",
        204,
        ADMIN,
        path={"user_id": "{{readerId}}"},
    ),
    Step("The reader's token no longer works", "get_me", 401, READER),
    # Signing out comes last
    Step("Sign the member out", "delete_current_token", 204, MEMBER),
    Step("The member's token no longer works", "get_me", 401, MEMBER),
    Step("Sign the admin out", "delete_current_token", 204, ADMIN),
]
