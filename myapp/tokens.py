"""Bearer tokens: issued and verified with PyJWT, the same claims both ways.

A token is an HS256 (JWT_ALGORITHM) JWT signed with JWT_SECRET_KEY carrying `sub`
(the user id, a string), `type` ("access" or "refresh"), `jti`, `iat`, `nbf`,
`exp`, and what its issuer adds (the users feature: `sid`, `role`).

Verifying one (PyJWT checks every character, then the HMAC) cost more than the rest
of a signed-in request's Python (bench/ANALYSIS.md), and a client sends the same
token for its whole life. A signature cannot change, so the claims of a token that
verified are kept, per app and process, keyed by the exact token string; what time
changes, its expiry, is checked on every use. A token that fails is never kept.
Whether its session still lives (revocation) is not the token's business: auth.py
asks the users feature on every request.
"""

import re
import time
import uuid
from datetime import timedelta

import jwt as pyjwt
from flask import current_app, g, request

from myapp.errors import unauthorized

KINDS = ("access", "refresh")
REQUIRED_CLAIMS = ["sub", "type", "jti", "iat", "exp"]
MAX_KEPT = 1024  # about 1 KiB each (8 KiB at most); when full, it starts again empty
# A JWT as issued: three unpadded base64url parts.
ISSUED_FORM = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


def issue(subject: str, kind: str, claims: dict, lifetime: timedelta | None = None):
    """A signed token of `kind` for `subject`, valid for `lifetime` (by default the
    configured JWT_ACCESS_TOKEN_EXPIRES or JWT_REFRESH_TOKEN_EXPIRES)."""
    config = current_app.config
    if lifetime is None:
        lifetime = config[f"JWT_{kind.upper()}_TOKEN_EXPIRES"]
    now = int(time.time())
    payload = {
        "sub": subject,
        "type": kind,
        "jti": str(uuid.uuid4()),
        "iat": now,
        "nbf": now,
        "exp": now + int(lifetime.total_seconds()),
        **claims,
    }
    return pyjwt.encode(
        payload, config["JWT_SECRET_KEY"], algorithm=config["JWT_ALGORITHM"]
    )


def verified(token: str) -> dict:
    """The claims of a token this app signed that has not expired: a copy of its
    own for the caller. Anything else is a 401."""
    kept = current_app.extensions.setdefault("myapp.verified_tokens", {})
    claims = kept.get(token)
    if claims is None:
        claims = verify(token)
        if len(kept) >= MAX_KEPT:
            kept.clear()  # not evicting by iteration: safe under threaded servers
        kept[token] = claims
    elif claims["exp"] <= time.time():
        raise unauthorized("Token has expired")
    return dict(claims)


def verify(token: str) -> dict:
    if not ISSUED_FORM.fullmatch(token):  # one token, one spelling: never padded
        raise unauthorized("Invalid token")
    config = current_app.config
    try:
        claims = pyjwt.decode(
            token,
            config["JWT_SECRET_KEY"],
            algorithms=[config["JWT_ALGORITHM"]],
            options={"require": REQUIRED_CLAIMS},
        )
    except pyjwt.ExpiredSignatureError:
        raise unauthorized("Token has expired") from None
    except pyjwt.PyJWTError:
        raise unauthorized("Invalid token") from None
    if claims["type"] not in KINDS:
        raise unauthorized("Invalid token")
    return claims


def bearer_token() -> str | None:
    """The token of `Authorization: Bearer <token>`; None when there is no such
    header, a 401 when it is malformed."""
    header = request.headers.get("Authorization", "").strip().strip(",")
    if not header:
        return None
    # A header may carry several comma-separated credentials; exactly one Bearer.
    # The scheme's name is case-insensitive (RFC 9110, 11.1).
    bearers = [value for value in header.split(",") if is_bearer(value)]
    parts = bearers[0].split() if len(bearers) == 1 else []
    if len(parts) != 2:
        raise unauthorized(MALFORMED)
    return parts[1]


def is_bearer(credentials: str) -> bool:
    scheme = credentials.split()[:1]
    return bool(scheme) and scheme[0].lower() == "bearer"


MALFORMED = "Missing or malformed Authorization header; send 'Bearer <token>'"


def request_claims() -> dict:
    """The verified claims of this request's bearer token, verified once per
    request (the rate-limit key and `auth.requires` both ask); a 401 without one."""
    if "token_claims" not in g:
        token = bearer_token()
        if token is None:
            raise unauthorized(MALFORMED)
        g.token_claims = verified(token)
    return g.token_claims
