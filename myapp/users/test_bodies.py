"""Every endpoint that reads a body reads it the same way; hostile JSON is a
bad request."""

import pytest

from myapp.testing import assert_error
from myapp.users.testing import stored_user, user_count

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
