"""Who is calling and what they may do: identities and roles, nothing more.

Tokens are verified by flask-jwt-extended; the users feature plugs its session
revocation check into it. Every feature protects its endpoints with `requires`.
"""

from dataclasses import dataclass
from functools import wraps

from flask import g
from flask_jwt_extended import get_jwt, verify_jwt_in_request

from myapp.errors import ApiError

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
    claims = get_jwt()
    return Identity(int(claims["sub"]), claims.get("role", "member"), claims["sid"])


def requires(role: str = "member", *, token: str = "access"):
    """Decorator: a valid, unrevoked token (401) of a role at least `role` (403).

    token="refresh" demands a refresh token, token="any" takes either kind.
    """
    if role not in ROLE_RANK:
        raise ValueError(f"unknown role {role!r}")

    def decorate(view):
        @wraps(view)
        def guarded(*args, **kwargs):
            verify_jwt_in_request(
                refresh=token == "refresh", verify_type=token != "any"
            )
            identity = current_identity()
            g.user_id = identity.user_id  # for the access log
            if not identity.has_role(role):
                raise ApiError(403, "forbidden", f"This needs the {role} role")
            return view(*args, **kwargs)

        return guarded

    return decorate
