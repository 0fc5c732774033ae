"""Each documented status, provoked: for any operation of the contract test
(myapp/test_contract.py), a request that must get that status, refusals, conflicts
and outages included."""

from sqlalchemy import delete

from myapp import create_app
from myapp.db import sql
from myapp.schema import MAX_ID
from myapp.sites.models import FREE_ID_ATTEMPTS, SiteModel
from myapp.testing import ContractClient, book_body

from myapp.contract import (
    BODIES,
    DELETABLE,
    MISSING,
    OPERATIONS,
    PUT_SITE_MISSING,
    actor,
    call,
    path_values,
)


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
