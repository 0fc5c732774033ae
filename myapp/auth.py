"""Who is calling and what they may do: identities and roles, nothing more.

Tokens are verified by myapp/tokens.py; the users feature says whether a token's
session still lives (`check_revocation_with`). Every feature protects its endpoints
with `requires`.
"""

from dataclasses import dataclass
from functools import wraps

from flask import current_app, g

from myapp.errors import ApiError, unauthorized
from myapp.tokens import request_claims

ROLES = ("member", "staff", "admin")
ROLE_RANK = {role: rank for rank, role in enumerate(ROLES)}


@dataclass(frozen=True)
class Identity:
    user_id: int
    role: str
    session_id: str

    def has_role(self, role: str) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]


def current_identity() -> Identity:
    claims = request_claims()
    return Identity(int(claims["sub"]), claims.get("role", "member"), claims["sid"])


def check_revocation_with(app, revoked) -> None:
    """`revoked(claims)` is asked for every token `requires` takes: True refuses it
    (its session has ended, or a spent refresh token was replayed)."""
    app.extensions["myapp.token_revoked"] = revoked


def verify_token(kind: str) -> dict:
    """This request's token, verified, unrevoked and of `kind` ("any" for either)."""
    claims = unrevoked_claims()
    if kind != "any" and claims["type"] != kind:
        raise unauthorized("Wrong kind of token for this endpoint")
    return claims


def unrevoked_claims() -> dict:
    """The claims of this request's token if it verifies and its session lives;
    asked once per request (`requires`, the rate limits' identity)."""
    claims = request_claims()
    if "token_revoked" not in g:
        g.token_revoked = current_app.extensions["myapp.token_revoked"](claims)
    if g.token_revoked:
        raise unauthorized("Token has been revoked")
    return claims


def still_unrevoked() -> None:
    """Ask again whether this request's session lives (401 if it has ended): for a
    request that did slow work (a password check) after `requires` asked, before
    it writes."""
    g.pop("token_revoked", None)
    unrevoked_claims()


def requires(role: str = "member", *, token: str = "access"):
    """Decorator: a valid, unrevoked token (401) of a role at least `role` (403).

    token="refresh" demands a refresh token, token="any" takes either kind.
    """
    if role not in ROLE_RANK:
        raise ValueError(f"unknown role {role!r}")

    def decorate(view):
        @wraps(view)
        def guarded(*args, **kwargs):
            verify_token(token)
            identity = current_identity()
            g.user_id = identity.user_id  # for the access log
            if not identity.has_role(role):
                raise ApiError(403, "forbidden", f"This needs the {role} role")
            return view(*args, **kwargs)

        return guarded

    return decorate
