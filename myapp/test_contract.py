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

import pytest

from myapp.contract import OPERATIONS, World, call
from myapp.provocations import order, provoke
from myapp.testing import book_body


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
