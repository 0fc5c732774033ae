"""Registration, POST /users/, on PostgreSQL and SQLite: what is stored and
answered, validation, and when two spellings are one address."""

import json

import pytest

from myapp.testing import PASSWORD, sign_in
from myapp.testing import assert_error, assert_valid, next_serial
from myapp.users.models import UserModel
from myapp.users.testing import NEW_USER, stored_user, user_count


def test_register_returns_the_member_without_secrets(app, client):
    response = client.post("/users/", json=NEW_USER)
    assert response.status_code == 201
    body = response.get_json()
    assert_valid(UserModel.read_schema, body)
    assert body["email"] == "Ada@Example.com"
    assert body["role"] == "member"
    assert "password" not in response.text and "argon2" not in response.text
    assert response.headers["ETag"].startswith('"')


def test_register_stores_an_argon2id_hash(app, client):
    user_id = client.post("/users/", json=NEW_USER).get_json()["id"]
    assert stored_user(app, user_id).password_hash.startswith("$argon2id$")


@pytest.mark.parametrize(
    "email", ["ada@example.com", "ADA@EXAMPLE.COM", NEW_USER["email"]]
)
def test_register_duplicate_email_any_case_is_409(app, client, email):
    client.post("/users/", json=NEW_USER)
    response = client.post("/users/", json={**NEW_USER, "email": email})
    assert_error(response, 409, "conflict")
    assert user_count(app) == 1


def test_register_lists_every_problem_and_writes_nothing(app, client):
    response = client.post(
        "/users/", json={"email": "not-an-email", "password": "short", "role": "admin"}
    )
    body = assert_error(response, 400, "validation_error")
    fields = {detail["field"] for detail in body["details"]}
    assert fields == {"email", "password", "name", "role"}
    assert user_count(app) == 0


@pytest.mark.parametrize(
    "password, status",
    [("x" * 9, 400), ("x" * 10, 201), ("x" * 128, 201), ("x" * 129, 400)],
)
def test_register_password_length_bounds(client, password, status):
    response = client.post("/users/", json={**NEW_USER, "password": password})
    assert response.status_code == status


@pytest.mark.parametrize(
    "body",
    [[NEW_USER], "text", None, 7, {**NEW_USER, "name": 5}, {**NEW_USER, "name": " "}],
)
def test_register_rejects_wrong_shapes(app, client, body):
    response = client.post(
        "/users/", data=json.dumps(body), content_type="application/json"
    )
    assert_error(response, 400, "validation_error")
    assert user_count(app) == 0


def test_register_malformed_json_is_bad_request(client):
    response = client.post(
        "/users/", data='{"email": ', headers={"Content-Type": "application/json"}
    )
    assert_error(response, 400, "bad_request")


def test_register_needs_a_json_body(client):
    response = client.post("/users/", data="email=a@b.co", content_type="text/plain")
    assert_error(response, 415, "unsupported_media_type")


def test_register_body_over_limit_is_413(client):
    big = {**NEW_USER, "name": "x" * (1024 * 1024)}
    assert_error(client.post("/users/", json=big), 413, "payload_too_large")


def test_emails_compare_case_insensitively_in_any_script(app, client):
    body = {**NEW_USER, "email": "Émile.Ørsted@Example.com"}
    assert client.post("/users/", json=body).status_code == 201
    duplicate = client.post(
        "/users/", json={**body, "email": "émile.ørsted@example.com"}
    )
    assert_error(duplicate, 409, "conflict")
    sign_in(client, "ÉMILE.ØRSTED@EXAMPLE.COM", body["password"])


# (another spelling, whether it is the same address) for kiwi-…@example.com
SPELLINGS = {
    "upper": ("KIWI-{n}@EXAMPLE.COM", True),
    "full-width": ("\uff4b\uff49\uff57\uff49-{n}@example.com", True),
    "kelvin-sign": ("\u212aiwi-{n}@example.com", True),
    "dotted-capital-i": ("k\u0130wi-{n}@example.com", False),
    "dotless-i": ("k\u0131wi-{n}@example.com", False),
}


@pytest.mark.parametrize("spelling", SPELLINGS, ids=list(SPELLINGS))
def test_one_address_is_one_identity_for_uniqueness_sign_in_and_limits(
    make_app, spelling
):
    """Registering, signing in and the sign-in limit agree on whether two spellings
    are one address, on both databases: five wrong passwords under one spelling
    lock every spelling of the same address, and no other."""
    client = make_app(RATELIMIT_LOGIN="5 per minute").test_client()
    serial = next_serial()
    address = f"kiwi-{serial}@example.com"
    other, same = SPELLINGS[spelling]
    other = other.format(n=serial)
    body = {"email": address, "password": PASSWORD, "name": "Kiwi"}
    assert client.post("/users/", json=body).status_code == 201
    registered = client.post("/users/", json={**body, "email": other})
    assert registered.status_code == (409 if same else 201)
    if not same:  # the other spelling is an account of its own
        signed_in = client.post(
            "/users/tokens", json={"email": other, "password": PASSWORD}
        )
        assert signed_in.status_code == 201
    for _ in range(5):
        wrong = {"email": address, "password": "a wrong password"}
        assert client.post("/users/tokens", json=wrong).status_code == 401
    right = client.post("/users/tokens", json={"email": other, "password": PASSWORD})
    assert right.status_code == (429 if same else 201)


def test_sharp_s_and_ss_are_one_address(client):
    body = {"email": "strasse@example.com", "password": PASSWORD, "name": "S"}
    assert client.post("/users/", json=body).status_code == 201
    assert_error(
        client.post("/users/", json={**body, "email": "STRAẞE@example.com"}),
        409,
        "conflict",
    )
    assert sign_in(client, "straße@example.com", PASSWORD)["access_token"]
