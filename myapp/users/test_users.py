"""The users feature, on PostgreSQL and SQLite with a real Redis: every response path
of every endpoint, token forgery, sessions, and schemathesis over the spec."""

import base64
import json
from datetime import timedelta

import pytest
import schemathesis
from flask_jwt_extended import create_access_token, decode_token
from sqlalchemy import func, select

from conftest import PASSWORD, sign_in
from myapp.db import sql
from myapp.pagination import list_schema
from myapp.testing import assert_error, assert_valid, next_serial
from myapp.users.models import UserModel
from myapp.users.sessions import TOKEN_SCHEMA, SessionModel

NEW_USER = {"email": "Ada@Example.com", "password": "analytical engine", "name": "Ada"}


def user_count(app) -> int:
    with app.app_context():
        return sql.session.scalar(select(func.count()).select_from(UserModel))


def stored_user(app, user_id: int) -> UserModel | None:
    with app.app_context():
        user = sql.session.get(UserModel, user_id)
        if user is not None:
            sql.session.expunge(user)
        return user


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


# --- Registration: POST /users/


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


def test_register_is_rate_limited_per_address(make_app):
    client = make_app(RATELIMIT_REGISTER="2 per hour").test_client()
    for number in range(2):
        email = f"user{number}@example.com"
        assert (
            client.post("/users/", json={**NEW_USER, "email": email}).status_code == 201
        )
    response = client.post("/users/", json={**NEW_USER, "email": "late@example.com"})
    assert_error(response, 429, "rate_limited")
    assert int(response.headers["Retry-After"]) > 0


# --- Sign in: POST /users/tokens


def test_sign_in_returns_a_token_pair(app, client):
    client.post("/users/", json=NEW_USER)
    response = client.post(
        "/users/tokens",
        json={"email": "ada@EXAMPLE.com", "password": NEW_USER["password"]},
    )
    assert response.status_code == 201
    body = response.get_json()
    assert_valid(TOKEN_SCHEMA, body)
    assert body["token_type"] == "Bearer" and body["expires_in"] == 15 * 60
    with app.app_context():
        claims = decode_token(body["access_token"])
    assert {"sub", "sid", "role", "iat", "exp", "jti"} <= set(claims)
    assert claims["role"] == "member" and claims["exp"] - claims["iat"] == 15 * 60


def test_sign_in_failures_look_the_same(client, member):
    wrong_password = client.post(
        "/users/tokens", json={"email": member.email, "password": "wrong password!"}
    )
    unknown_email = client.post(
        "/users/tokens", json={"email": "nobody@example.com", "password": PASSWORD}
    )
    first = assert_error(wrong_password, 401, "unauthorized")
    second = assert_error(unknown_email, 401, "unauthorized")
    assert first["message"] == second["message"]


@pytest.mark.parametrize(
    "body", [{"email": "a@b.co"}, {"email": "a@b.co", "password": 5}, {"extra": 1}]
)
def test_sign_in_validates_the_body(client, body):
    assert_error(client.post("/users/tokens", json=body), 400, "validation_error")


def test_sign_in_needs_json(client):
    response = client.post("/users/tokens", data="x", content_type="text/plain")
    assert_error(response, 415, "unsupported_media_type")


def test_sign_in_is_limited_per_address_and_email(client, member):
    wrong = {"email": member.email, "password": "wrong password!"}
    for _ in range(4):  # the member fixture's own sign-in was the first
        assert client.post("/users/tokens", json=wrong).status_code == 401
    response = client.post("/users/tokens", json=wrong)
    body = assert_error(response, 429, "rate_limited")
    assert "per 1 minute" in body["message"]
    assert 0 < int(response.headers["Retry-After"]) <= 60
    other = {"email": "other@example.com", "password": "whatever123"}
    assert client.post("/users/tokens", json=other).status_code == 401


# --- Refresh and sign out


def test_refresh_rotates_the_pair(client, member):
    response = client.post(
        "/users/tokens/refresh", headers=bearer(member.refresh_token)
    )
    assert response.status_code == 201
    pair = response.get_json()
    assert_valid(TOKEN_SCHEMA, pair)
    assert pair["refresh_token"] != member.refresh_token
    assert (
        client.get("/users/me", headers=bearer(pair["access_token"])).status_code == 200
    )


def test_reusing_a_spent_refresh_token_revokes_the_session(client, member):
    fresh = client.post("/users/tokens/refresh", headers=bearer(member.refresh_token))
    pair = fresh.get_json()
    replay = client.post("/users/tokens/refresh", headers=bearer(member.refresh_token))
    assert_error(replay, 401, "unauthorized")
    # The whole session is gone: the pair the legitimate client holds fails too.
    for token in (pair["access_token"], member.access_token):
        assert_error(
            client.get("/users/me", headers=bearer(token)), 401, "unauthorized"
        )
    response = client.post(
        "/users/tokens/refresh", headers=bearer(pair["refresh_token"])
    )
    assert_error(response, 401, "unauthorized")


def test_refresh_needs_a_refresh_token(client, member):
    response = client.post("/users/tokens/refresh", headers=member.headers)
    body = assert_error(response, 401, "unauthorized")
    assert "kind of token" in body["message"]
    assert_error(client.post("/users/tokens/refresh"), 401, "unauthorized")


def test_refresh_of_a_deleted_user_is_401(app, client, member):
    with app.app_context():
        sql.session.delete(sql.session.get(UserModel, member.id))
        sql.session.commit()
    response = client.post(
        "/users/tokens/refresh", headers=bearer(member.refresh_token)
    )
    assert_error(response, 401, "unauthorized")


@pytest.mark.parametrize("kind", ["access_token", "refresh_token"])
def test_sign_out_revokes_every_token_of_the_session(client, member, kind):
    response = client.delete(
        "/users/tokens/current", headers=bearer(getattr(member, kind))
    )
    assert response.status_code == 204 and response.data == b""
    assert_error(client.get("/users/me", headers=member.headers), 401, "unauthorized")
    response = client.post(
        "/users/tokens/refresh", headers=bearer(member.refresh_token)
    )
    assert_error(response, 401, "unauthorized")


def test_sign_out_needs_a_token(client):
    assert_error(client.delete("/users/tokens/current"), 401, "unauthorized")


def test_revocation_reaches_every_instance(make_app, member):
    """Two app instances share only Redis: signing out on one rejects on the other."""
    other = make_app().test_client()
    assert other.get("/users/me", headers=member.headers).status_code == 200
    make_app().test_client().delete("/users/tokens/current", headers=member.headers)
    assert_error(other.get("/users/me", headers=member.headers), 401, "unauthorized")


# --- Forged and broken tokens


def _segments(token: str) -> list[str]:
    return token.split(".")


def _b64(data: dict) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims(token: str) -> dict:
    payload = _segments(token)[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def forged_tokens(app, member) -> dict[str, str]:
    header, payload, signature = _segments(member.access_token)
    claims = _claims(member.access_token)
    with app.app_context():
        expired = create_access_token(
            str(member.id),
            additional_claims={"sid": claims["sid"], "role": "member"},
            expires_delta=timedelta(seconds=-60),
        )
    other_key = make_token_with_key(claims, "another-secret-key-0123456789abcdef")
    tampered = {**claims, "role": "admin", "sub": str(int(claims["sub"]) + 1)}
    return {
        "garbage": "not-a-jwt",
        "empty": "",
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.",
        "tampered payload": f"{header}.{_b64(tampered)}.{signature}",
        "wrong key": other_key,
        "expired": expired,
        "no session": make_token_with_key(
            {**claims, "sid": "0" * 32}, app.config["JWT_SECRET_KEY"]
        ),
    }


def make_token_with_key(claims: dict, key: str) -> str:
    import jwt

    return jwt.encode(claims, key, algorithm="HS256")


@pytest.mark.parametrize(
    "case",
    [
        "garbage",
        "empty",
        "alg none",
        "tampered payload",
        "wrong key",
        "expired",
        "no session",
    ],
)
def test_forged_or_broken_tokens_are_401(app, client, member, case):
    token = forged_tokens(app, member)[case]
    response = client.get("/users/me", headers=bearer(token))
    assert_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_revoked_session_token_is_401(client, member, make_account):
    second = make_account("member", email="second@example.com")
    sessions = client.get("/users/me/sessions", headers=second.headers).get_json()
    client.delete(
        f"/users/me/sessions/{sessions['items'][0]['id']}", headers=second.headers
    )
    assert_error(client.get("/users/me", headers=second.headers), 401, "unauthorized")
    assert client.get("/users/me", headers=member.headers).status_code == 200


@pytest.mark.parametrize("header", ["Token abc", "Bearer", "Basic dXNlcjpwYXNz"])
def test_malformed_authorization_header_is_401(client, header):
    response = client.get("/users/me", headers={"Authorization": header})
    assert_error(response, 401, "unauthorized")


# --- Your profile: /users/me


def test_me_returns_your_profile_with_an_etag(client, member):
    response = client.get("/users/me", headers=member.headers)
    assert response.status_code == 200
    assert_valid(UserModel.read_schema, response.get_json())
    assert response.get_json()["email"] == member.email
    etag = response.headers["ETag"]
    assert etag.startswith('"') and not etag.startswith("W/")  # a strong ETag
    again = client.get("/users/me", headers={**member.headers, "If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    assert again.headers["ETag"] == etag


def test_me_needs_a_token(client):
    assert_error(client.get("/users/me"), 401, "unauthorized")


def test_patch_me_renames(client, member):
    before = client.get("/users/me", headers=member.headers)
    response = client.patch(
        "/users/me",
        json={"name": "Grace"},
        headers={**member.headers, "If-Match": before.headers["ETag"]},
    )
    assert response.status_code == 200
    assert_valid(UserModel.read_schema, response.get_json())
    assert response.get_json()["name"] == "Grace"
    assert response.headers["ETag"] != before.headers["ETag"]


def test_patch_me_with_a_stale_etag_is_412_and_changes_nothing(app, client, member):
    stale = client.get("/users/me", headers=member.headers).headers["ETag"]
    client.patch("/users/me", json={"name": "First"}, headers=member.headers)
    response = client.patch(
        "/users/me",
        json={"name": "Second"},
        headers={**member.headers, "If-Match": stale},
    )
    assert_error(response, 412, "precondition_failed")
    assert stored_user(app, member.id).name == "First"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"role": "admin"},
        {"name": ""},
        {"password": "short", "current_password": PASSWORD},
    ],
)
def test_patch_me_rejects_bad_bodies(app, client, member, body):
    response = client.patch("/users/me", json=body, headers=member.headers)
    assert_error(response, 400, "validation_error")
    assert stored_user(app, member.id).role == "member"


@pytest.mark.parametrize(
    "body",
    [
        {"password": "a brand new one", "current_password": "not my password"},
        {"password": "a brand new one"},
        {"name": "New Name", "current_password": "not my password"},
    ],
)
def test_patch_me_password_needs_the_current_one(app, client, member, body):
    before = stored_user(app, member.id)
    response = client.patch("/users/me", json=body, headers=member.headers)
    assert_error(response, 401, "unauthorized")
    after = stored_user(app, member.id)
    assert (after.password_hash, after.name) == (before.password_hash, before.name)


def test_patch_me_password_change_signs_out_other_sessions(client, member):
    other = sign_in(client, member.email, PASSWORD)
    response = client.patch(
        "/users/me",
        json={"password": "a brand new one", "current_password": PASSWORD},
        headers=member.headers,
    )
    assert response.status_code == 200
    assert client.get("/users/me", headers=member.headers).status_code == 200
    stale = client.get("/users/me", headers=bearer(other["access_token"]))
    assert_error(stale, 401, "unauthorized")
    old = {"email": member.email, "password": PASSWORD}
    assert_error(client.post("/users/tokens", json=old), 401, "unauthorized")
    sign_in(client, member.email, "a brand new one")


def test_patch_me_needs_a_token(client):
    assert_error(client.patch("/users/me", json={"name": "x"}), 401, "unauthorized")


# --- Your sessions: /users/me/sessions


def test_sessions_lists_your_live_sessions(client, member, admin):
    sign_in(client, member.email, PASSWORD)
    response = client.get("/users/me/sessions", headers=member.headers)
    assert response.status_code == 200
    body = response.get_json()
    assert_valid(list_schema(SessionModel.read_schema), body)
    assert body["total"] == 2
    assert [item["current"] for item in body["items"]].count(True) == 1
    assert 'rel="first"' in response.headers["Link"]


def test_sessions_pages(client, member):
    for _ in range(2):
        sign_in(client, member.email, PASSWORD)
    response = client.get(
        "/users/me/sessions?per_page=2&page=2", headers=member.headers
    )
    body = response.get_json()
    assert body["total"] == 3 and len(body["items"]) == 1
    assert 'rel="prev"' in response.headers["Link"]


@pytest.mark.parametrize("query", ["per_page=0", "sort=ip_address", "page=x"])
def test_sessions_rejects_bad_list_params(client, member, query):
    response = client.get(f"/users/me/sessions?{query}", headers=member.headers)
    assert_error(response, 400, "bad_request")


def test_revoking_another_of_your_sessions(client, member):
    other = sign_in(client, member.email, PASSWORD)
    items = client.get("/users/me/sessions", headers=member.headers).get_json()["items"]
    target = next(item for item in items if not item["current"])
    response = client.delete(
        f"/users/me/sessions/{target['id']}", headers=member.headers
    )
    assert response.status_code == 204
    stale = client.get("/users/me", headers=bearer(other["access_token"]))
    assert_error(stale, 401, "unauthorized")
    assert client.get("/users/me", headers=member.headers).status_code == 200


def test_someone_elses_session_is_404(client, member, make_account):
    other = make_account("member")
    their_id = client.get("/users/me/sessions", headers=other.headers).get_json()[
        "items"
    ][0]["id"]
    response = client.delete(f"/users/me/sessions/{their_id}", headers=member.headers)
    assert_error(response, 404, "not_found")
    assert client.get("/users/me", headers=other.headers).status_code == 200


def test_unknown_session_is_404(client, member):
    response = client.delete("/users/me/sessions/nope", headers=member.headers)
    assert_error(response, 404, "not_found")


def test_sessions_need_a_token(client):
    assert_error(client.get("/users/me/sessions"), 401, "unauthorized")
    assert_error(client.delete("/users/me/sessions/x"), 401, "unauthorized")


# --- User administration: /users/ and /users/<id>


def test_admin_lists_users(client, admin, member, staff):
    response = client.get("/users/", headers=admin.headers)
    assert response.status_code == 200
    body = response.get_json()
    assert_valid(list_schema(UserModel.read_schema), body)
    assert body["total"] == 3 and body["page"] == 1 and body["per_page"] == 20


@pytest.mark.parametrize(
    "query, emails",
    [
        ("role=staff", ["staff@example.com"]),
        ("q=MEMB", ["member@example.com"]),
        (
            "sort=-email",
            ["staff@example.com", "member@example.com", "admin@example.com"],
        ),
        ("sort=email&per_page=1&page=2", ["member@example.com"]),
    ],
)
def test_admin_list_filters_and_sorts(client, make_account, query, emails):
    admin = make_account("admin", email="admin@example.com")
    make_account("member", email="member@example.com")
    make_account("staff", email="staff@example.com")
    body = client.get(f"/users/?{query}", headers=admin.headers).get_json()
    assert [item["email"] for item in body["items"]] == emails


def test_admin_list_page_past_the_end_is_empty_with_the_true_total(client, admin):
    response = client.get("/users/?page=9", headers=admin.headers)
    body = response.get_json()
    assert body["items"] == [] and body["total"] == 1 and body["page"] == 9


def test_admin_list_links(client, admin, make_account):
    for _ in range(4):
        make_account("member")
    response = client.get("/users/?per_page=2&page=2&sort=email", headers=admin.headers)
    links = dict(
        (part.split('rel="')[1].rstrip('"'), part.split(">")[0].lstrip("<"))
        for part in response.headers["Link"].split(", ")
    )
    assert set(links) == {"first", "prev", "next", "last"}
    assert (
        links["next"].endswith("sort=email&per_page=2&page=3")
        or "page=3" in links["next"]
    )
    assert "page=3" in links["last"] and "page=1" in links["first"]
    assert "sort=email" in links["prev"]


@pytest.mark.parametrize(
    "query",
    [
        "per_page=101",
        "per_page=0",
        "page=0",
        "page=abc",
        "page=1.5",
        "sort=password_hash",
        "role=owner",
        "unknown=1",
        "page=1&page=2",
    ],
)
def test_admin_list_rejects_bad_params(client, admin, query):
    body = assert_error(
        client.get(f"/users/?{query}", headers=admin.headers), 400, "bad_request"
    )
    assert body["details"]


@pytest.mark.parametrize("who, status", [("member", 403), ("staff", 403)])
def test_user_admin_needs_the_admin_role(client, make_account, who, status):
    account = make_account(who)
    assert_error(client.get("/users/", headers=account.headers), status, "forbidden")
    response = client.get(f"/users/{account.id}", headers=account.headers)
    assert_error(response, status, "forbidden")
    response = client.patch(
        f"/users/{account.id}", json={"role": "admin"}, headers=account.headers
    )
    assert_error(response, status, "forbidden")
    assert_error(
        client.delete(f"/users/{account.id}", headers=account.headers), 403, "forbidden"
    )


def test_user_admin_needs_a_token(client, member):
    assert_error(client.get("/users/"), 401, "unauthorized")
    assert_error(client.get(f"/users/{member.id}"), 401, "unauthorized")


def test_admin_reads_a_user(client, admin, member):
    response = client.get(f"/users/{member.id}", headers=admin.headers)
    assert response.status_code == 200
    assert_valid(UserModel.read_schema, response.get_json())
    conditional = {**admin.headers, "If-None-Match": response.headers["ETag"]}
    assert client.get(f"/users/{member.id}", headers=conditional).status_code == 304


@pytest.mark.parametrize("user_id", [999999, 0, 2**31, 2**63, 10**30])
def test_admin_unknown_user_is_404(client, admin, user_id):
    assert_error(
        client.get(f"/users/{user_id}", headers=admin.headers), 404, "not_found"
    )
    response = client.patch(
        f"/users/{user_id}", json={"name": "x"}, headers=admin.headers
    )
    assert_error(response, 404, "not_found")
    assert_error(
        client.delete(f"/users/{user_id}", headers=admin.headers), 404, "not_found"
    )


def test_admin_role_change_takes_effect_at_once(app, client, admin, member):
    response = client.patch(
        f"/users/{member.id}", json={"role": "staff"}, headers=admin.headers
    )
    assert response.status_code == 200
    assert response.get_json()["role"] == "staff"
    # The member's tokens carried the old role: they are revoked.
    assert_error(client.get("/users/me", headers=member.headers), 401, "unauthorized")
    with app.app_context():
        fresh = sign_in(client, member.email, PASSWORD)
        assert decode_token(fresh["access_token"])["role"] == "staff"


@pytest.mark.parametrize(
    "body", [{"role": "owner"}, {"email": "x@y.zz"}, {}, {"name": 3}]
)
def test_admin_patch_validates(app, client, admin, member, body):
    response = client.patch(f"/users/{member.id}", json=body, headers=admin.headers)
    assert_error(response, 400, "validation_error")
    assert stored_user(app, member.id).role == "member"


def test_admin_patch_honours_if_match(app, client, admin, member):
    stale = client.get(f"/users/{member.id}", headers=admin.headers).headers["ETag"]
    client.patch(f"/users/{member.id}", json={"name": "Renamed"}, headers=admin.headers)
    response = client.patch(
        f"/users/{member.id}",
        json={"role": "staff"},
        headers={**admin.headers, "If-Match": stale},
    )
    assert_error(response, 412, "precondition_failed")
    assert stored_user(app, member.id).role == "member"


def test_the_last_admin_cannot_be_demoted_or_deleted(app, client, admin):
    response = client.patch(
        f"/users/{admin.id}", json={"role": "member"}, headers=admin.headers
    )
    assert_error(response, 409, "conflict")
    assert_error(
        client.delete(f"/users/{admin.id}", headers=admin.headers), 409, "conflict"
    )
    assert stored_user(app, admin.id).role == "admin"


def test_admin_deletes_a_user_and_their_sessions(app, client, admin, member):
    response = client.delete(f"/users/{member.id}", headers=admin.headers)
    assert response.status_code == 204
    assert stored_user(app, member.id) is None
    assert_error(client.get("/users/me", headers=member.headers), 401, "unauthorized")
    assert_error(
        client.get(f"/users/{member.id}", headers=admin.headers), 404, "not_found"
    )


def test_admin_delete_honours_if_match(app, client, admin, member):
    response = client.delete(
        f"/users/{member.id}", headers={**admin.headers, "If-Match": '"stale"'}
    )
    assert_error(response, 412, "precondition_failed")
    assert stored_user(app, member.id) is not None


def test_an_admin_may_remove_another_admin(client, admin, make_account):
    second = make_account("admin")
    assert (
        client.delete(f"/users/{second.id}", headers=admin.headers).status_code == 204
    )


# --- Every endpoint that reads a body reads it the same way


BODY_ENDPOINTS = [
    ("post", "/users/", None),
    ("post", "/users/tokens", None),
    ("patch", "/users/me", "member"),
    ("patch", "/users/{member_id}", "admin"),
]


@pytest.mark.parametrize("method, path, who", BODY_ENDPOINTS)
@pytest.mark.parametrize(
    "data, content_type, status, code",
    [
        ('{"name": "x"}', "text/plain", 415, "unsupported_media_type"),
        ("name=x", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        ('{"name": ', "application/json", 400, "bad_request"),
        (b'{"name": "\xff"}', "application/json", 400, "bad_request"),
        ("x" * (1024 * 1024 + 1), "application/json", 413, "payload_too_large"),
    ],
    ids=["text", "form", "malformed", "not-utf8", "too-large"],
)
def test_bodies_are_read_one_way(
    app, client, admin, member, method, path, who, data, content_type, status, code
):
    headers = {"member": member.headers, "admin": admin.headers}.get(who, {})
    before = user_count(app)
    response = getattr(client, method)(
        path.format(member_id=member.id),
        data=data,
        headers={**headers, "Content-Type": content_type},
    )
    assert_error(response, status, code)
    assert user_count(app) == before
    assert stored_user(app, member.id).name == "Member"


# --- The CLI


def test_create_admin_from_stdin(app):
    result = app.test_cli_runner().invoke(
        args=["users", "create-admin", "Boss@Example.com", "--password-stdin"],
        input="a long enough password\n",
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        user = UserModel.by_email("boss@example.com")
        assert user.role == "admin" and user.email == "Boss@Example.com"


@pytest.mark.parametrize(
    "email, password, problem",
    [
        ("bad", "a long enough password", "email"),
        ("ok@example.com", "short", "password"),
    ],
)
def test_create_admin_rejects_bad_input(app, email, password, problem):
    result = app.test_cli_runner().invoke(
        args=["users", "create-admin", email, "--password-stdin"], input=password + "\n"
    )
    assert result.exit_code != 0 and problem in result.output
    assert user_count(app) == 0


def test_create_admin_refuses_an_existing_email(app, member):
    result = app.test_cli_runner().invoke(
        args=["users", "create-admin", member.email.upper(), "--password-stdin"],
        input="a long enough password\n",
    )
    assert result.exit_code != 0 and "already exists" in result.output


# --- The spec, fuzzed


@pytest.fixture
def users_schema(make_app):
    app = make_app(RATELIMIT_DEFAULT="100000 per hour")
    return schemathesis.openapi.from_wsgi("/users/openapi.json", app)


users_api = schemathesis.pytest.from_fixture("users_schema")


@users_api.parametrize()
def test_users_api_conforms_to_its_spec(case, admin):
    # Where the case sends a token, it is a real admin's; cases that leave the
    # header out on purpose must get a 401.
    if case.headers and "Authorization" in case.headers:
        case.headers["Authorization"] = admin.headers["Authorization"]
    case.call_and_validate()


# --- Hostile bodies, Unicode, concurrency


@pytest.mark.parametrize("path", ["/users/", "/users/tokens"])
@pytest.mark.parametrize(
    "raw",
    ["[" * 100000, '{"email": "a@b.co", "password": "\\ud800\\ud800\\ud800xxxxxxxx"}'],
    ids=["deep-nesting", "lone-surrogate"],
)
def test_hostile_json_is_a_bad_request(app, client, path, raw):
    response = client.post(path, data=raw, content_type="application/json")
    assert_error(response, 400, "bad_request")
    assert user_count(app) == 0


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


def test_answers_carrying_tokens_are_never_stored(client, member):
    signed_in = client.post(
        "/users/tokens", json={"email": member.email, "password": member.password}
    )
    refreshed = client.post(
        "/users/tokens/refresh",
        headers={"Authorization": f"Bearer {member.refresh_token}"},
    )
    for response in (signed_in, refreshed):
        assert response.status_code == 201
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Pragma"] == "no-cache"


def test_sharp_s_and_ss_are_one_address(client):
    body = {"email": "strasse@example.com", "password": PASSWORD, "name": "S"}
    assert client.post("/users/", json=body).status_code == 201
    assert_error(
        client.post("/users/", json={**body, "email": "STRAẞE@example.com"}),
        409,
        "conflict",
    )
    assert sign_in(client, "straße@example.com", PASSWORD)["access_token"]


@pytest.mark.parametrize("attempt", range(3))
def test_two_admins_demoting_each_other_leave_one_admin(committing_app, attempt):
    import threading

    with committing_app.app_context():
        admins = [
            UserModel.create(
                {"email": f"a{n}@example.com", "password": PASSWORD, "name": "A"},
                role="admin",
            )
            for n in range(2)
        ]
        sql.session.commit()
        ids = [admin.id for admin in admins]
    client = committing_app.test_client()
    tokens = [sign_in(client, f"a{n}@example.com", PASSWORD) for n in range(2)]
    barrier, statuses = threading.Barrier(2), []

    def demote(me: int, other: int) -> None:
        own_client = committing_app.test_client()
        barrier.wait()
        response = own_client.patch(
            f"/users/{ids[other]}",
            json={"role": "member"},
            headers=bearer(tokens[me]["access_token"]),
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=demote, args=(n, 1 - n)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with committing_app.app_context():
        remaining = sql.session.scalar(
            select(func.count()).where(UserModel.role == "admin")
        )
    assert remaining >= 1, statuses
    assert sorted(statuses) in ([200, 409], [200, 503], [200, 401]), statuses


# --- Contract details: headers on every response kind, HEAD, If-Match forms


def test_every_kind_of_response_has_a_request_id_and_json_type(client, member):
    created = client.post("/users/", json=NEW_USER)
    etag = client.get("/users/me", headers=member.headers).headers["ETag"]
    not_modified = client.get(
        "/users/me", headers={**member.headers, "If-None-Match": etag}
    )
    gone = client.delete("/users/tokens/current", headers=member.headers)
    for response, status in ((created, 201), (not_modified, 304), (gone, 204)):
        assert response.status_code == status
        assert len(response.headers["X-Request-ID"]) == 36
    assert created.content_type == "application/json"


def test_head_returns_the_etag_without_a_body(client, member):
    response = client.head("/users/me", headers=member.headers)
    assert response.status_code == 200 and response.data == b""
    assert (
        response.headers["ETag"]
        == client.get("/users/me", headers=member.headers).headers["ETag"]
    )


def test_if_none_match_compares_weakly(client, member):
    etag = client.get("/users/me", headers=member.headers).headers["ETag"]
    for sent in (f"W/{etag}", f'"other", {etag}', "*"):
        response = client.get(
            "/users/me", headers={**member.headers, "If-None-Match": sent}
        )
        assert response.status_code == 304, sent


@pytest.mark.parametrize("header, status", [("*", 200), ("weak", 412), ("list", 200)])
def test_if_match_compares_strongly(client, member, header, status):
    etag = client.get("/users/me", headers=member.headers).headers["ETag"]
    sent = {"*": "*", "weak": f"W/{etag}", "list": f'"other", {etag}'}[header]
    response = client.patch(
        "/users/me", json={"name": "X"}, headers={**member.headers, "If-Match": sent}
    )
    assert response.status_code == status


# --- Sessions live as long as refresh tokens


def test_a_session_lives_as_long_as_its_refresh_token(
    app, client, member, redis_client
):
    sid = _claims(member.access_token)["sid"]
    ttl = redis_client.ttl(SessionModel.key(sid))
    lifetime = app.config["JWT_REFRESH_TOKEN_EXPIRES"].total_seconds()
    assert lifetime - 5 <= ttl <= lifetime
    listed = client.get("/users/me/sessions", headers=member.headers).get_json()[
        "items"
    ][0]
    assert listed["id"] == sid and listed["expires_at"] > listed["created_at"]


def test_an_expired_refresh_token_is_401(app, client, member):
    claims = _claims(member.refresh_token)
    with app.app_context():
        from flask_jwt_extended import create_refresh_token

        expired = create_refresh_token(
            str(member.id),
            additional_claims={"sid": claims["sid"], "jti": claims["jti"]},
            expires_delta=timedelta(seconds=-1),
        )
    response = client.post("/users/tokens/refresh", headers=bearer(expired))
    assert_error(response, 401, "unauthorized")


@pytest.mark.parametrize(
    "case", ["garbage", "alg none", "tampered payload", "wrong key", "expired"]
)
def test_forged_tokens_are_401_everywhere(app, client, admin, case):
    token = forged_tokens(app, admin)[case]
    for method, path in (("get", "/users/"), ("post", "/users/tokens/refresh")):
        response = getattr(client, method)(path, headers=bearer(token))
        assert_error(response, 401, "unauthorized")


# --- Rate limits: per identity, shared across instances, per address for sign-in


def test_the_default_budget_is_shared_across_endpoints_and_instances(make_app, member):
    first = make_app(RATELIMIT_DEFAULT="2 per minute").test_client()
    second = make_app(RATELIMIT_DEFAULT="2 per minute").test_client()
    assert first.get("/users/me", headers=member.headers).status_code == 200
    assert second.get("/users/me/sessions", headers=member.headers).status_code == 200
    assert_error(first.get("/users/me", headers=member.headers), 429, "rate_limited")


def test_sign_in_limit_is_per_address(client, member):
    wrong = {"email": member.email, "password": "wrong password!"}
    for _ in range(5):
        client.post("/users/tokens", json=wrong)
    assert_error(client.post("/users/tokens", json=wrong), 429, "rate_limited")
    elsewhere = client.post(
        "/users/tokens", json=wrong, environ_base={"REMOTE_ADDR": "192.0.2.7"}
    )
    assert_error(elsewhere, 401, "unauthorized")


def test_guessing_the_current_password_is_throttled(client, member):
    guess = {"name": "X", "current_password": "a wrong guess"}
    for _ in range(3):  # renames without a guess do not count
        assert (
            client.patch(
                "/users/me", json={"name": "Y"}, headers=member.headers
            ).status_code
            == 200
        )
    for _ in range(5):
        response = client.patch("/users/me", json=guess, headers=member.headers)
        assert_error(response, 401, "unauthorized")
    response = client.patch("/users/me", json=guess, headers=member.headers)
    assert_error(response, 429, "rate_limited")


# --- Pages far away


@pytest.mark.parametrize(
    "page, status", [(2**53 - 1, 200), (2**53, 400), ("9" * 5000, 400), ("1" * 19, 400)]
)
def test_pages_far_past_the_end(client, admin, page, status):
    response = client.get(f"/users/?page={page}", headers=admin.headers)
    assert response.status_code == status
    if status == 200:
        assert response.get_json()["items"] == [] and response.get_json()["total"] == 1


def test_create_admin_prompts_for_the_password(app):
    result = app.test_cli_runner().invoke(
        args=["users", "create-admin", "prompted@example.com"],
        input="a long enough password\na long enough password\n",
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert UserModel.by_email("prompted@example.com").role == "admin"
