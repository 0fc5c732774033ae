"""The OpenAPI document says what the server does, checked by doing it.

Every test client of the suite holds each answer to the document
(myapp.testing.ContractClient): an undocumented status or header, a missing
required header or a body that breaks its schema fails the test that caused it.
This module makes every documented status of every operation happen, on
PostgreSQL and SQLite, so a status the document promises that the server can
never answer fails here. Its happy requests also carry each request header the
operation does not document, with a value that would change the answer were it
honoured: an operation reacts to If-Match, If-None-Match and Idempotency-Key
exactly when its document lists them.
"""

import uuid
from dataclasses import dataclass

import pytest
from sqlalchemy import delete

from myapp.testing import Account
from myapp import create_app
from myapp.clients import operations
from myapp.db import sql
from myapp.openapi import WHOLE_API
from myapp.schema import MAX_ID
from myapp.sites.models import FREE_ID_ATTEMPTS, SiteModel
from myapp.testing import ContractClient, book_body

DOCUMENT = (
    create_app(
        "testing", {"SQLALCHEMY_DATABASE_URI": "sqlite://", "REDIS_URL": "redis://x"}
    )
    .extensions["myapp.openapi"]
    .documents[WHOLE_API]
)
OPERATIONS = operations(DOCUMENT)  # operationId -> (METHOD, path, operation)


@dataclass
class World:
    """What every operation's requests can name: one of each resource."""

    app: object
    client: object
    admin: Account
    member: Account
    book: dict  # no copy on loan
    loan: dict  # the member's open loan of another book
    site: dict
    freezer: dict
    computer: dict
    container: dict
    session_id: str  # another session of the member's

    def post(self, path: str, body: dict, who: Account) -> dict:
        response = self.client.post(path, json=body, headers=who.headers)
        assert response.status_code == 201, response.get_json()
        return response.get_json()


@pytest.fixture
def world(app, client, make_account) -> World:
    admin, member = make_account("admin"), make_account("member")
    session_id = client.get("/users/me/sessions", headers=member.headers).get_json()
    credentials = {"email": member.email, "password": member.password}
    tokens = client.post("/users/tokens", json=credentials).get_json()
    member.access_token, member.refresh_token = (
        tokens["access_token"],
        tokens["refresh_token"],
    )
    made = World(app, client, admin, member, {}, {}, {}, {}, {}, {}, "")
    made.session_id = session_id["items"][0]["id"]
    made.book = made.post("/books/", book_body(), admin)
    loaned = made.post("/books/", book_body(), admin)
    made.loan = made.post(f"/books/{loaned['id']}/loans", {}, member)
    made.site = made.post("/sites/", {"name": "Contract Lab"}, admin)
    made.freezer = made.post(f"/sites/{made.site['id']}/freezers", {"name": "F"}, admin)
    made.computer = made.post(
        f"/sites/{made.site['id']}/computers",
        {"name": "C", "mac": "02:00:00:00:00:01"},
        admin,
    )
    made.container = made.post(
        f"/sites/freezers/{made.freezer['id']}/containers", {"description": "C"}, admin
    )
    return made


def path_values(world: World) -> dict:
    return {
        "book_id": world.book["id"],
        "loan_id": world.loan["id"],
        "user_id": world.member.id,
        "site_id": world.site["id"],
        "freezer_id": world.freezer["id"],
        "computer_id": world.computer["id"],
        "container_uuid": world.container["uuid"],
        "session_id": world.session_id,
    }


# Values no resource has. PUT /sites/<id> creates any id it is given, so only an
# id past the database's range (a routing 404) is missing for it.
MISSING = {
    "session_id": "no-such-session",
    "container_uuid": str(uuid.UUID(int=0)),
}
PUT_SITE_MISSING = MAX_ID + 1

# A body each writing operation accepts.
BODIES = {
    "post_users": lambda w: {
        "email": f"new-{uuid.uuid4().hex[:8]}@example.com",
        "password": "a long enough password",
        "name": "New",
    },
    "post_tokens": lambda w: {"email": w.member.email, "password": w.member.password},
    "patch_me": lambda w: {"name": "Renamed"},
    "patch_user": lambda w: {"name": "Renamed"},
    "post_books": lambda w: book_body(),
    "put_book": lambda w: book_body(copies_total=3),
    "patch_book": lambda w: {"copies_total": 4},
    "post_book_loans": lambda w: {},
    "post_sites": lambda w: {"name": "Another Lab"},
    "put_site": lambda w: {"name": "Contract Lab", "country": "Norway"},
    "patch_site": lambda w: {"country": "Chile"},
    "post_site_freezers": lambda w: {"name": "F2"},
    "put_freezer": lambda w: {"name": "F3", "site_id": w.site["id"]},
    "patch_freezer": lambda w: {"name": "F4"},
    "post_site_computers": lambda w: {"name": "C2"},
    "put_computer": lambda w: {"name": "C3", "site_id": w.site["id"]},
    "patch_computer": lambda w: {"name": "C4"},
    "post_freezer_containers": lambda w: {"description": "D"},
    "patch_container": lambda w: {"description": "E"},
}


# What a successful delete removes, where the world's own resource cannot go.
DELETABLE = {
    "delete_site": lambda w: {
        "site_id": w.post("/sites/", {"name": "Empty"}, w.admin)["id"]
    },
    "delete_freezer": lambda w: {
        "freezer_id": w.post(
            f"/sites/{w.site['id']}/freezers", {"name": "Empty"}, w.admin
        )["id"]
    },
    "delete_user": lambda w: {
        "user_id": w.post("/users/", BODIES["post_users"](w), w.admin)["id"]
    },
}


def actor(world: World, operation: dict) -> dict:
    """The headers of whoever may call the operation: nobody for a public one, the
    member's refresh token where only that is taken, the admin where a role
    above member is needed, else the member."""
    schemes = {name for option in operation["security"] for name in option}
    if not schemes:
        return {}
    if schemes == {"refreshToken"}:
        return {"Authorization": f"Bearer {world.member.refresh_token}"}
    if "403" in operation["responses"]:
        return world.admin.headers
    return world.member.headers


def call(world, operation_id, *, client=None, path=None, headers=None, **kwargs):
    """Send the operation's request: the world's path values (or `path`'s), its
    actor's token, its body (or `json`/`data` from kwargs), extra headers."""
    method, template, operation = OPERATIONS[operation_id]
    values = {**path_values(world), **(path or {})}
    url = template.format(**values)
    if "requestBody" in operation and not ({"json", "data"} & set(kwargs)):
        kwargs["json"] = BODIES[operation_id](world)
    sent = {**actor(world, operation), **(headers or {})}
    return (client or world.client).open(url, method=method, headers=sent, **kwargs)


# --- Each status, provoked


def happy(world, operation_id, **kwargs):
    """The request that succeeds, carrying every request header the operation does
    not document, each with a value that would change the answer were it read."""
    documented = {
        parameter["$ref"].rsplit("/", 1)[1]
        for parameter in OPERATIONS[operation_id][2]["parameters"]
        if "$ref" in parameter
    }
    ignored = {
        "If-Match": '"stale"',
        "If-None-Match": "*",
        "Idempotency-Key": "x" * 300,
    }
    headers = {k: v for k, v in ignored.items() if k not in documented}
    return call(world, operation_id, headers=headers, **kwargs)


def not_modified(world, operation_id):
    tag = call(world, operation_id).headers["ETag"]
    return call(world, operation_id, headers={"If-None-Match": tag})


def bad_request(world, operation_id):
    operation = OPERATIONS[operation_id][2]
    if any(parameter.get("in") == "query" for parameter in operation["parameters"]):
        return call(world, operation_id, query_string={"no_such_parameter": "1"})
    return call(world, operation_id, json={"no_such_field": 1})


def missing(world, operation_id):
    _method, template, _operation = OPERATIONS[operation_id]
    names = [name for name in path_values(world) if f"{{{name}}}" in template]
    if operation_id == "put_site":
        return call(world, operation_id, path={"site_id": PUT_SITE_MISSING})
    return call(
        world, operation_id, path={name: MISSING.get(name, MAX_ID) for name in names}
    )


def too_large(world, operation_id):
    body = b"[" + b"0," * (world.app.config["MAX_CONTENT_LENGTH"] // 2) + b"0]"
    return call(world, operation_id, data=body, content_type="application/json")


def rate_limited(world, operation_id, make_app):
    """Under a budget of one request, the second request of an identity is a 429
    (the budget is spent by a harmless read)."""
    client = make_app(RATELIMIT_DEFAULT="1 per hour").test_client()
    spent = call(
        world,
        "get_books",
        client=client,
        headers=actor(world, OPERATIONS[operation_id][2]),
    )
    assert spent.status_code == 200
    return call(world, operation_id, client=client)


def unavailable(world, operation_id):
    """With the database and Redis both out of reach."""
    app = create_app(
        "testing",
        {
            "SQLALCHEMY_DATABASE_URI": "postgresql://nobody@127.0.0.1:1/none",
            "REDIS_URL": "redis://127.0.0.1:1/0",
            "DATABASE_CONNECT_TIMEOUT": 1,
        },
    )
    app.test_client_class = ContractClient
    return call(world, operation_id, client=app.test_client())


def borrowed_twice(world, operation_id):
    return call(world, operation_id, path={"book_id": world.loan["book_id"]})


def returned_twice(world, operation_id):
    book = world.post("/books/", book_body(), world.admin)
    loan = world.post(f"/books/{book['id']}/loans", {}, world.member)
    assert call(world, operation_id, path={"loan_id": loan["id"]}).status_code == 200
    return call(world, operation_id, path={"loan_id": loan["id"]})


def no_site_id_left(world, operation_id):
    """Every id a POST would try next was taken by PUT, and on SQLite, which
    numbers on from the largest id, the largest id too."""
    taken = [world.site["id"] + n for n in range(1, FREE_ID_ATTEMPTS + 2)] + [MAX_ID]
    with world.app.app_context():
        for site_id in taken:
            SiteModel.create({"name": "Taken"}, site_id)
        sql.session.commit()
    refused = call(world, operation_id)
    with world.app.app_context():  # ids free again for the POST that succeeds
        sql.session.execute(delete(SiteModel).where(SiteModel.id.in_(taken)))
        sql.session.commit()
    return refused


def taken_mac(world, operation_id):
    return call(
        world,
        operation_id,
        json={**BODIES[operation_id](world), "mac": world.computer["mac"]},
    )


def mac_of_another(world, operation_id):
    """Another computer's MAC, in another spelling."""
    world.post(
        f"/sites/{world.site['id']}/computers",
        {"name": "Other", "mac": "02:00:00:00:00:02"},
        world.admin,
    )
    body = {**BODIES[operation_id](world), "mac": "02-00-00-00-00-02"}
    return call(world, operation_id, json=body)


def copies_below_loans(world, operation_id):
    return call(
        world,
        operation_id,
        path={"book_id": world.loan["book_id"]},
        json={**BODIES[operation_id](world), "copies_total": 0},
    )


CONFLICTS = {
    "post_users": lambda w, op: call(
        w, op, json={**BODIES[op](w), "email": w.member.email.upper()}
    ),
    "patch_user": lambda w, op: call(
        w, op, path={"user_id": w.admin.id}, json={"role": "member"}
    ),
    "delete_user": lambda w, op: call(w, op, path={"user_id": w.admin.id}),
    "post_books": lambda w, op: call(w, op, json=book_body(isbn=w.book["isbn"])),
    "put_book": copies_below_loans,
    "patch_book": copies_below_loans,
    "delete_book": lambda w, op: call(w, op, path={"book_id": w.loan["book_id"]}),
    "post_book_loans": borrowed_twice,
    "post_loan_return": returned_twice,
    "post_sites": no_site_id_left,
    "delete_site": lambda w, op: call(w, op),  # it has a freezer and a computer
    "delete_freezer": lambda w, op: call(w, op),  # it holds a container
    "post_site_computers": taken_mac,
    "put_computer": mac_of_another,
    "patch_computer": mac_of_another,
    "post_freezer_containers": lambda w, op: call(
        w, op, json={"description": "D", "uuid": w.container["uuid"].upper()}
    ),
}


def provoke(world, operation_id, status, make_app):
    if status == 304:
        return not_modified(world, operation_id)
    if status == 400:
        return bad_request(world, operation_id)
    if status == 401:
        if operation_id == "post_tokens":
            return call(
                world,
                operation_id,
                json={"email": world.member.email, "password": "wrong password"},
            )
        return call(world, operation_id, headers={"Authorization": ""})
    if status == 403:
        return call(world, operation_id, headers=world.member.headers)
    if status == 404:
        return missing(world, operation_id)
    if status == 409:
        return CONFLICTS[operation_id](world, operation_id)
    if status == 412:
        return call(world, operation_id, headers={"If-Match": '"stale"'})
    if status == 413:
        return too_large(world, operation_id)
    if status == 415:
        return call(world, operation_id, data="text", content_type="text/plain")
    if status == 429:
        return rate_limited(world, operation_id, make_app)
    if status == 503:
        return unavailable(world, operation_id)
    if operation_id == "put_site" and status == 201:
        return happy(world, operation_id, path={"site_id": world.site["id"] + 10**6})
    if operation_id in DELETABLE:
        return happy(world, operation_id, path=DELETABLE[operation_id](world))
    return happy(world, operation_id)


def order(status: str) -> tuple:
    """Refusals first, then what succeeds (it may delete), then the outage (which
    points the app at an unreachable Redis)."""
    code = int(status)
    return (code == 503, 200 <= code < 300, code)


@pytest.mark.parametrize("operation_id", sorted(OPERATIONS))
def test_every_documented_status_happens(world, make_app, operation_id):
    operation = OPERATIONS[operation_id][2]
    for status in sorted(operation["responses"], key=order):
        response = provoke(world, operation_id, int(status), make_app)
        assert response.status_code == int(status), (
            operation_id,
            status,
            response.get_json(),
        )


def test_idempotent_operations_read_their_key(world):
    """An operation that documents Idempotency-Key refuses a malformed one."""
    for operation_id, (_method, _path, operation) in OPERATIONS.items():
        refs = [p.get("$ref", "") for p in operation["parameters"]]
        if refs.count("#/components/parameters/Idempotency-Key"):
            response = call(world, operation_id, headers={"Idempotency-Key": "x" * 300})
            assert response.status_code == 400, operation_id
