"""Forged, broken and revoked tokens are 401 on every endpoint."""

import base64
import json
from datetime import timedelta

import pytest

from myapp.testing import assert_error
from myapp.testing import bearer, claims_of, reissued


def _b64(data: dict) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def forged_tokens(app, member) -> dict[str, str]:
    header, payload, signature = member.access_token.split(".")
    claims = claims_of(member.access_token)
    expired = reissued(app, member.access_token, timedelta(seconds=-60))
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


@pytest.mark.parametrize(
    "case", ["garbage", "alg none", "tampered payload", "wrong key", "expired"]
)
def test_forged_tokens_are_401_everywhere(app, client, admin, case):
    token = forged_tokens(app, admin)[case]
    for method, path in (("get", "/users/"), ("post", "/users/tokens/refresh")):
        response = getattr(client, method)(path, headers=bearer(token))
        assert_error(response, 401, "unauthorized")
