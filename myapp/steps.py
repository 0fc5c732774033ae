"""The words of the client flow (myapp/flow.py): its steps, the accounts whose
tokens they send, and the variables a run starts with. A step names its operation
by operationId; myapp/clients.py takes its method, path and security from the
OpenAPI document.

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


MEMBER_CREDENTIALS = ("{{memberEmail}}", "{{memberPassword}}")
