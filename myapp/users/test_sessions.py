"""Your sessions, /users/me/sessions: listing, paging and revoking them."""

import pytest

from myapp.testing import PASSWORD, sign_in
from myapp.pagination import list_schema
from myapp.testing import assert_error, assert_valid
from myapp.users.sessions import SessionModel
from myapp.testing import bearer


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
