"""/users: registration, tokens and sessions, your profile, and user admin."""

from flask import g

from myapp.api import Resource, make_api, no_content
from myapp.auth import check_revocation_with, current_identity, still_unrevoked
from myapp.conditional import check_if_match, created, single_response
from myapp.rate_limits import Limit, client_network
from myapp.tokens import request_claims
from myapp.pagination import ListParams, list_schema, page_response
from myapp.schema import json_body, text_schema
from myapp.users.models import ROLE, UserModel, bad_credentials, canonical_email
from myapp.users.sessions import TOKEN_SCHEMA, SessionModel, token_pair

feature = make_api(
    "users",
    "myapp users",
    "Accounts, sign-in tokens and sessions, profiles and user administration",
    tags={
        "tokens": "Signing in, refreshing tokens and signing out",
        "profile": "Your own account",
        "sessions": "Where you are signed in, and revoking it",
        "users": "Registration, and user administration (admin)",
    },
)
blueprint, ns = feature.blueprint, feature.ns
# Revocation is checked for every token, by every feature, on every instance.
blueprint.record_once(
    lambda state: check_revocation_with(state.app, SessionModel.token_revoked)
)

user_model = feature.model("User", UserModel.read_schema)
user_page_model = feature.model("UserPage", list_schema(UserModel.read_schema))
registration_model = feature.model("Registration", UserModel.write_schema)
profile_model = feature.model("ProfileUpdate", UserModel.profile_schema)
admin_update_model = feature.model("UserUpdate", UserModel.admin_schema)
credentials_model = feature.model("Credentials", SessionModel.write_schema)
feature.model("Session", SessionModel.read_schema)  # the read model, named in the spec
token_model = feature.model("TokenPair", TOKEN_SCHEMA)
session_page_model = feature.model("SessionPage", list_schema(SessionModel.read_schema))

USER_LIST = ListParams(
    ["id", "email", "name", "created_at"],
    "id",
    filters={
        "role": ROLE,
        "q": text_schema(100, description="Substring of the email or name, any case"),
    },
)
# Sessions live in Redis, a handful per user: paged by number only.
SESSION_LIST = ListParams(["created_at", "refreshed_at"], "-created_at", cursors=False)


def login_rate_key() -> str:
    """Sign-in attempts count per client network (an IPv4 address, an IPv6 /64)
    and account (the body was parsed, and refused if it is not JSON, before this
    limit is counted)."""
    body = g.get("json_body")
    email = body.get("email") if isinstance(body, dict) else None
    email = canonical_email(email) if isinstance(email, str) else ""
    return f"login:{client_network()}:{email}"


def sends_current_password() -> bool:
    body = g.get("json_body")
    return isinstance(body, dict) and "current_password" in body


login_limit = Limit("RATELIMIT_LOGIN", login_rate_key)
# Guessing a password through PATCH /users/me (with a stolen token) is throttled like
# signing in: every request that sends current_password counts, before it is
# checked, so parallel guesses cannot get past the limit.
reauth_limit = Limit(
    "RATELIMIT_LOGIN",
    lambda: f"reauth:{g.user_id}",
    unless=lambda: not sends_current_password(),
)
register_limit = Limit("RATELIMIT_REGISTER", lambda: f"register:{client_network()}")


# An answer that carries tokens is kept by no cache (RFC 6749, 5.1).
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def signed_in_user(*, for_update: bool = False) -> UserModel:
    return existing(UserModel.find(current_identity().user_id, for_update=for_update))


def signed_in_profile() -> dict:
    """The signed-in user's JSON from a plain row: no ORM object for a read."""
    return UserModel.as_json(existing(UserModel.read_row(current_identity().user_id)))


def existing(user):
    """A user (or their row) whose token is still good but who may have been
    deleted a moment ago: then the token speaks for no one."""
    if user is None:
        raise bad_credentials("This account no longer exists")
    return user


@feature.route("/")
class Users(Resource):
    @feature.requires("admin")
    @feature.lists(user_page_model, USER_LIST, "A page of users")
    def get(self):
        """List users (admin)."""
        query = USER_LIST.parse()
        return page_response(UserModel.list(query).json(UserModel.as_json), query)

    @register_limit
    @feature.expects(registration_model)
    @feature.creates(user_model, "Registered as a member")
    @feature.errors(409)
    def post(self):
        """Register: a new member account."""
        user = UserModel.create(json_body()).as_json()
        return created(user, feature.api.url_for(User, user_id=user["id"]))


@feature.route("/tokens", tag="tokens")
class Tokens(Resource):
    @login_limit
    @feature.expects(credentials_model)
    @feature.response(201, "Signed in: a token pair for a new session", token_model)
    @feature.errors(401)
    def post(self):
        """Sign in with email and password."""
        session = SessionModel.create(json_body())
        return token_pair(session.user, session), 201, NO_STORE


@feature.route("/tokens/refresh", tag="tokens")
class TokenRefresh(Resource):
    @feature.requires(token="refresh")
    @feature.response(
        201, "A new token pair; the refresh token sent is spent", token_model
    )
    def post(self):
        """Exchange the refresh token (as the Bearer token) for a new pair.

        Reusing a spent refresh token revokes its whole session.
        """
        identity = current_identity()
        session = SessionModel.get(identity.session_id)
        user = UserModel.find(identity.user_id)
        if session is None or user is None:
            raise bad_credentials("Session has ended; sign in again")
        session.rotate(request_claims()["jti"])
        return token_pair(user, session), 201, NO_STORE


@feature.route("/tokens/current", tag="tokens")
class CurrentToken(Resource):
    @feature.requires(token="any")
    @feature.response(
        204, "Signed out: the session and every token it issued are revoked"
    )
    def delete(self):
        """Sign out (with the access or the refresh token)."""
        session = SessionModel.get(current_identity().session_id)
        if session is not None:
            session.delete()
        return no_content()


@feature.route("/me", tag="profile")
class Me(Resource):
    @feature.requires()
    @feature.reads(user_model, "Your profile", missing=False)
    def get(self):
        """Your own profile."""
        return single_response(signed_in_profile())

    @feature.requires()
    @reauth_limit
    @feature.expects(profile_model)
    @feature.updates(user_model, "Updated profile", missing=False)
    def patch(self):
        """Change your name, or your password (signs out your other sessions)."""
        change = UserModel.check_profile_update(current_identity().user_id, json_body())
        user = signed_in_user(for_update=True)
        if change.checked_hash is not None:
            still_unrevoked()  # signed out during the password check: no change
        check_if_match(user.as_json())
        changed = user.update_profile(change)
        if "password" in changed:
            SessionModel.end_with_change(user.id, keep=current_identity().session_id)
        return single_response(user.as_json())


@feature.route("/me/sessions", tag="sessions")
class MySessions(Resource):
    @feature.requires()
    @feature.lists(session_page_model, SESSION_LIST, "A page of your live sessions")
    def get(self):
        """Your signed-in sessions."""
        identity = current_identity()
        query = SESSION_LIST.parse()
        sessions = SessionModel.list(identity.user_id, query)
        return page_response(
            sessions.json(lambda session: session.as_json(identity.session_id)), query
        )


@feature.route("/me/sessions/<string:session_id>", tag="sessions")
class MySession(Resource):
    @feature.requires()
    @feature.response(204, "Revoked: the session's tokens no longer work")
    @feature.errors(404)
    def delete(self, session_id):
        """Revoke one of your sessions."""
        SessionModel.get_or_404(session_id, current_identity().user_id).delete()
        return no_content()


@feature.route("/<int:user_id>")
class User(Resource):
    @feature.requires("admin")
    @feature.reads(user_model, "The user")
    def get(self, user_id):
        """One user (admin)."""
        return single_response(UserModel.get_or_404(user_id).as_json())

    @feature.requires("admin")
    @feature.expects(admin_update_model)
    @feature.updates(user_model, "Updated user")
    @feature.errors(409)
    def patch(self, user_id):
        """Rename a user or change their role (admin); a role change signs them out."""
        user = UserModel.get_for_admin_change(user_id)
        check_if_match(user.as_json())
        changed = user.update(json_body())
        if "role" in changed:
            SessionModel.end_with_change(user_id)
        return single_response(user.as_json())

    @feature.requires("admin")
    @feature.deletes("Deleted; the user's sessions are revoked")
    @feature.errors(409)
    def delete(self, user_id):
        """Delete a user (admin). The last admin cannot be deleted."""
        user = UserModel.get_for_admin_change(user_id)
        check_if_match(user.as_json())
        user.delete()
        SessionModel.end_with_change(user_id)
        return no_content()
