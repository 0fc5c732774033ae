"""Signing in, refreshing and signing out: POST /users/tokens, .../refresh,
DELETE .../current; how long a session lives."""

from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy.exc import OperationalError

from myapp.testing import PASSWORD, reissued
from myapp import tokens
from myapp.db import sql
from myapp.testing import assert_error, assert_valid
from myapp.errors import ApiError
from myapp.users.models import CheckedAccount, UserModel
from myapp.users.sessions import SessionModel, TOKEN_SCHEMA
from myapp.testing import bearer, claims_of
from myapp.users.testing import NEW_USER
from myapp.testing import during_the_password_check, slow_password_checks


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
        claims = tokens.verified(body["access_token"])
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


def test_a_session_lives_as_long_as_its_refresh_token(
    app, client, member, redis_client
):
    sid = claims_of(member.access_token)["sid"]
    ttl = redis_client.ttl(SessionModel.key(sid))
    lifetime = app.config["JWT_REFRESH_TOKEN_EXPIRES"].total_seconds()
    assert lifetime - 5 <= ttl <= lifetime
    listed = client.get("/users/me/sessions", headers=member.headers).get_json()[
        "items"
    ][0]
    assert listed["id"] == sid and listed["expires_at"] > listed["created_at"]


def test_an_expired_refresh_token_is_401(app, client, member):
    expired = reissued(app, member.refresh_token, timedelta(seconds=-1))
    response = client.post("/users/tokens/refresh", headers=bearer(expired))
    assert_error(response, 401, "unauthorized")


def stored_hash(app, email: str) -> str:
    with app.app_context():
        return UserModel.by_email(email).password_hash


def test_a_hash_made_at_another_cost_is_remade_at_sign_in(make_app):
    """A password hashed before ARGON2_* changed is hashed again, at today's cost,
    the next time its owner signs in; it still signs them in afterwards."""
    cheap = {"ARGON2_TIME_COST": 1, "ARGON2_MEMORY_COST": 8192}
    make_app(**cheap).test_client().post("/users/", json=NEW_USER)
    app = make_app(ARGON2_TIME_COST=2, ARGON2_MEMORY_COST=8192)
    before = stored_hash(app, NEW_USER["email"])
    credentials = {"email": NEW_USER["email"], "password": NEW_USER["password"]}
    assert app.test_client().post("/users/tokens", json=credentials).status_code == 201
    after = stored_hash(app, NEW_USER["email"])
    assert "m=8192,t=1," in before and "m=8192,t=2," in after
    assert app.test_client().post("/users/tokens", json=credentials).status_code == 201
    assert stored_hash(app, NEW_USER["email"]) == after  # once only


def test_a_rehash_never_undoes_a_password_changed_meanwhile(app, member):
    """The hash a sign-in checked is remade only if it is still the stored one: a
    password changed while the check ran stays changed, and the sign-in is a 401."""
    with app.test_request_context("/users/tokens", method="POST"):
        user = UserModel.by_email(member.email)
        stored = user.password_hash
        stale = CheckedAccount(user.id, user.role, "the hash that was checked")
        with pytest.raises(ApiError) as refused:
            UserModel.replace_password_hash(stale, PASSWORD)
        assert refused.value.status == 401
        assert stored_hash(app, member.email) == stored
        current = CheckedAccount(user.id, user.role, stored)
        remade = UserModel.replace_password_hash(current, PASSWORD)
        sql.session.commit()
    assert stored_hash(app, member.email) == remade.password_hash != stored


CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.mark.parametrize("change", ["password", "role"])
def test_an_account_changed_during_the_password_check_gets_no_session(
    make_committing_app, redis_client, change
):
    """A sign-in checks the password with the database let go. If the password or
    the role changes meanwhile (that change ends the user's sessions), the sign-in
    is a 401 and leaves no session behind: before, its session was written after
    the change had ended the others, and outlived it."""
    app = slow_password_checks(make_committing_app)
    client = app.test_client()
    assert client.post("/users/", json=NEW_USER).status_code == 201
    credentials = {"email": NEW_USER["email"], "password": NEW_USER["password"]}
    with app.app_context():
        user_id = UserModel.by_email(NEW_USER["email"]).id
    # Made now: at this app's cost, hashing meanwhile would outlast the check.
    new_hash = CHEAP_HASHER.hash("changed meanwhile")

    def change_the_account():
        # As a request makes it: on SQLite, a write request takes the write lock
        # when it begins (myapp/sqlite.py).
        with app.test_request_context("/users/me", method="PATCH"):
            user = UserModel.find(user_id, for_update=True)
            if change == "password":
                user.password_hash = new_hash
            else:
                user.role = "staff"
            sql.session.commit()
            SessionModel.delete_all(user_id)

    answer = during_the_password_check(
        app, lambda: client.post("/users/tokens", json=credentials), change_the_account
    )
    assert_error(answer, 401, "unauthorized")
    assert redis_client.zrange(SessionModel.index_key(user_id), 0, -1) == []


def test_a_sign_in_whose_commit_fails_leaves_no_session(
    client, member, redis_client, monkeypatch
):
    """The session is written before the request commits; if the commit fails
    (a 503: the client gets no tokens), the session is removed with it."""
    before = redis_client.zrange(SessionModel.index_key(member.id), 0, -1)

    def fail():
        raise OperationalError("COMMIT", {}, Exception("database gone"))

    monkeypatch.setattr(sql.session, "commit", fail)
    credentials = {"email": member.email, "password": PASSWORD}
    assert_error(
        client.post("/users/tokens", json=credentials), 503, "service_unavailable"
    )
    assert redis_client.zrange(SessionModel.index_key(member.id), 0, -1) == before
