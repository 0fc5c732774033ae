"""Bearer tokens (myapp/tokens.py, myapp/auth.py): what a token must be to be taken,
checked against the public behaviour the API promises, so that a PyJWT upgrade
cannot loosen it unnoticed; and each token is verified once per process."""

import base64
import json
import time
from datetime import timedelta

import jwt as pyjwt
import pytest

from myapp import tokens
from myapp.testing import assert_error, bearer, claims_of, reissued


@pytest.fixture
def verifications(monkeypatch) -> list:
    """The tokens whose signature and claims were checked while the test ran."""
    verified = []
    verify = tokens.verify

    def counting(token: str) -> dict:
        verified.append(token)
        return verify(token)

    monkeypatch.setattr(tokens, "verify", counting)
    return verified


def test_a_token_is_verified_once(client, member, verifications):
    """The rate-limit key, `requires` and later requests reuse one verification; a
    forged token is still refused."""
    for _ in range(3):
        assert client.get("/users/me", headers=member.headers).status_code == 200
    assert verifications == [member.access_token]
    forged = {"Authorization": member.headers["Authorization"][:-2] + "xx"}
    assert_error(client.get("/users/me", headers=forged), 401, "unauthorized")


def test_a_verified_token_is_refused_once_it_expires(app, client, member):
    token = reissued(app, member.access_token, timedelta(seconds=1))
    assert client.get("/users/me", headers=bearer(token)).status_code == 200
    time.sleep(max(0, claims_of(token)["exp"] - time.time()) + 0.05)
    response = client.get("/users/me", headers=bearer(token))
    assert_error(response, 401, "unauthorized")
    assert response.get_json()["message"] == "Token has expired"


def test_a_token_carries_the_documented_claims(app, member):
    claims = claims_of(member.access_token)
    assert {"sub", "type", "jti", "iat", "nbf", "exp", "sid", "role"} <= set(claims)
    assert claims["type"] == "access" and claims["sub"] == str(member.id)
    assert claims["exp"] - claims["iat"] == 15 * 60
    header = json.loads(base64.urlsafe_b64decode(member.access_token.split(".")[0]))
    assert header["alg"] == "HS256"


def resigned(app, token: str, key: str | None = None, **changes) -> str:
    """The token's claims with `changes` (None removes one), signed with `key`."""
    claims = {**claims_of(token), **changes}
    claims = {name: value for name, value in claims.items() if value is not None}
    return pyjwt.encode(claims, key or app.config["JWT_SECRET_KEY"], "HS256")


FORGERIES = {
    "another key": lambda app, token: resigned(app, token, "k" * 40),
    "no expiry": lambda app, token: resigned(app, token, exp=None),
    "no subject": lambda app, token: resigned(app, token, sub=None),
    "no id": lambda app, token: resigned(app, token, jti=None),
    "no kind": lambda app, token: resigned(app, token, type=None),
    "an unknown kind": lambda app, token: resigned(app, token, type="admin"),
    "a number as subject": lambda app, token: resigned(app, token, sub=1),
    "not yet valid": lambda app, token: resigned(
        app, token, nbf=int(time.time()) + 3600
    ),
    "expired": lambda app, token: resigned(app, token, exp=int(time.time()) - 1),
    "alg none": lambda app, token: pyjwt.encode(claims_of(token), None, "none"),
    "HS512": lambda app, token: pyjwt.encode(
        claims_of(token), app.config["JWT_SECRET_KEY"], "HS512"
    ),
    "truncated": lambda app, token: token[:-10],
    "not a JWT": lambda app, token: "not-a-token",
}


@pytest.mark.parametrize("forge", FORGERIES.values(), ids=FORGERIES.keys())
@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # HS512
def test_a_token_that_is_not_exactly_ours_is_refused(app, client, member, forge):
    """Each forgery is refused with 401 and Bearer, by every protected endpoint;
    the genuine token still works, so the refusal is the token's."""
    forged = forge(app, member.access_token)
    for path in ("/users/me", "/users/me/sessions"):
        response = client.get(path, headers=bearer(forged))
        assert_error(response, 401, "unauthorized")
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert client.get("/users/me", headers=member.headers).status_code == 200


MALFORMED_HEADERS = ["", "Bearer", "Bearer  ", "Token abc", "Bearer a b", "bearer abc"]


@pytest.mark.parametrize("header", MALFORMED_HEADERS)
def test_a_malformed_authorization_header_is_401(client, header):
    response = client.get("/users/me", headers={"Authorization": header})
    assert_error(response, 401, "unauthorized")


def test_a_bearer_among_other_credentials_is_found(client, member):
    header = f"Basic Zm9vOmJhcg==, Bearer {member.access_token}"
    response = client.get("/users/me", headers={"Authorization": header})
    assert response.status_code == 200


def test_each_kind_of_token_is_taken_only_where_it_belongs(client, member):
    refresh = bearer(member.refresh_token)
    assert_error(client.get("/users/me", headers=refresh), 401, "unauthorized")
    access_for_refresh = client.post("/users/tokens/refresh", headers=member.headers)
    assert_error(access_for_refresh, 401, "unauthorized")
    assert access_for_refresh.get_json()["message"] == (
        "Wrong kind of token for this endpoint"
    )


def test_either_kind_signs_out_and_its_session_is_revoked_at_once(client, member):
    signed_out = client.delete(
        "/users/tokens/current", headers=bearer(member.refresh_token)
    )
    assert signed_out.status_code == 204
    response = client.get("/users/me", headers=member.headers)
    assert_error(response, 401, "unauthorized")
    assert response.get_json()["message"] == "Token has been revoked"


def test_the_scheme_is_case_insensitive(client, member):
    for scheme in ("bearer", "BEARER", "Bearer"):
        headers = {"Authorization": f"{scheme} {member.access_token}"}
        assert client.get("/users/me", headers=headers).status_code == 200


def test_a_token_is_taken_only_as_it_was_issued(client, member):
    """PyJWT also takes a padded spelling of a token; each spelling would be kept
    apart in the cache of verified tokens, so only the issued one is taken."""
    padded = bearer(member.access_token + "=")
    assert_error(client.get("/users/me", headers=padded), 401, "unauthorized")
