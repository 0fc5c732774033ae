"""Your profile, /users/me: reading, renaming, changing the password; the
headers, HEAD and If-Match/If-None-Match forms its answers follow."""

import pytest
from sqlalchemy import delete

from myapp.db import sql
from myapp.errors import ApiError
from myapp.testing import PASSWORD, sign_in
from myapp.testing import assert_error, assert_valid
from myapp.users.models import ProfileUpdate, UserModel
from myapp.users.passwords import hash_password, verify_password
from myapp.testing import bearer, during_the_password_check, slow_password_checks
from myapp.users.testing import NEW_USER, stored_user


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


def test_a_password_change_is_checked_against_the_stored_hash(app, member):
    """What the check before the lock carries to the write: the hash it checked
    against (the stored one) and the new password's hash."""
    body = {"current_password": PASSWORD, "password": "a brand new one"}
    with app.test_request_context("/users/me", method="PATCH"):
        stored = UserModel.find(member.id).password_hash
        checked = UserModel.check_profile_update(member.id, body)
        assert checked.checked_hash == stored
        assert verify_password(checked.new_hash, "a brand new one")
        sql.session.rollback()


@pytest.mark.parametrize(
    "current, applied", [(PASSWORD, True), ("not my password", False)]
)
def test_a_password_changed_during_the_check_is_checked_again(
    app, member, current, applied
):
    """current_password is checked before the row is locked; if the stored hash is
    not the one it was checked against by then (another change, a rehash, won the
    race), it is checked again against the locked row: right, the change is made;
    wrong, a 401 and nothing changes."""
    with app.test_request_context("/users/me", method="PATCH"):
        user = UserModel.find(member.id, for_update=True)
        stored, name = user.password_hash, user.name
        race = ProfileUpdate(
            {
                "name": "Raced",
                "password": "a brand new one",
                "current_password": current,
            },
            checked_hash="the hash the check was made against",
            new_hash=hash_password("a brand new one"),
        )
        if applied:
            assert user.update_profile(race) == {"name", "password"}
            assert (user.name, user.password_hash) == ("Raced", race.new_hash)
        else:
            with pytest.raises(ApiError) as refused:
                user.update_profile(race)
            assert refused.value.status == 401
            assert (user.name, user.password_hash) == (name, stored)
        sql.session.rollback()


def test_a_session_ended_during_the_password_check_changes_nothing(
    make_committing_app,
):
    """A password change checks current_password before it locks the row; a
    sign-out of its session meanwhile makes it a 401 that changes nothing."""
    app = slow_password_checks(make_committing_app)
    client = app.test_client()
    assert client.post("/users/", json=NEW_USER).status_code == 201
    credentials = {"email": NEW_USER["email"], "password": NEW_USER["password"]}
    token = client.post("/users/tokens", json=credentials).get_json()["access_token"]
    change = {"current_password": NEW_USER["password"], "password": "a brand new one"}
    answer = during_the_password_check(
        app,
        lambda: client.patch("/users/me", json=change, headers=bearer(token)),
        lambda: client.delete("/users/tokens/current", headers=bearer(token)),
    )
    assert_error(answer, 401, "unauthorized")
    assert client.post("/users/tokens", json=credentials).status_code == 201


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


def test_a_token_of_an_account_deleted_under_it_speaks_for_no_one(app, client, member):
    """Deleting a user ends their sessions; a row deleted by other means (an
    operator in psql) must still not be answered for."""
    with app.app_context():
        sql.session.execute(delete(UserModel).where(UserModel.id == member.id))
        sql.session.commit()
    for response in (
        client.get("/users/me", headers=member.headers),
        client.patch("/users/me", json={"name": "N"}, headers=member.headers),
    ):
        assert_error(response, 401, "unauthorized")
        assert response.get_json()["message"] == "This account no longer exists"
