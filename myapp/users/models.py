"""Users (SQL) and their sessions (Redis), and the tokens a session issues."""

import unicodedata
import uuid
from datetime import timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app, request
from flask_jwt_extended import create_access_token, create_refresh_token
from sqlalchemy import CheckConstraint, Index, String, select
from sqlalchemy.orm import Mapped, mapped_column, validates

from myapp.auth import ROLES
from myapp.db import after_commit, redis_store, sql
from myapp.errors import ApiError, conflict, not_found
from myapp.pagination import ListQuery
from myapp.schema import TIMESTAMP, email_address, object_schema, text_schema, validate
from myapp.sql_model import (
    SqlModel,
    Timestamped,
    contains_any_case,
    iso,
    utcnow,
)

NAME = text_schema(100)
PASSWORD = {"type": "string", "minLength": 10, "maxLength": 128}
ROLE = {"type": "string", "enum": list(ROLES)}


def canonical_email(address: str) -> str:
    """The one form of an address that uniqueness, sign-in and every rate limit
    key use: compatibility-normalised (full-width letters, the Kelvin sign) and
    case-folded (ß is ss), in Python alone, so no database's idea of lower() can
    make two spellings one account for one purpose and two for another."""
    folded = unicodedata.normalize("NFKC", address).casefold()
    return unicodedata.normalize("NFKC", folded)


def bad_credentials(message: str = "Invalid email or password") -> ApiError:
    return ApiError(
        401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"}
    )


class UserModel(SqlModel, Timestamped, sql.Model):
    __tablename__ = "users"
    label = "User"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))  # as it was given
    email_canonical: Mapped[str] = mapped_column(String(512))
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16), default="member")
    password_hash: Mapped[str] = mapped_column(String(255))

    __table_args__ = (
        CheckConstraint("role IN ('member', 'staff', 'admin')", name="role"),
        Index("uq_users_email_canonical", email_canonical, unique=True),
    )
    sort_columns = {
        "id": "id",
        "email": "email_canonical",
        "name": "name",
        "created_at": "created_at",
    }

    read_schema = object_schema(
        "User",
        {
            "id": {"type": "integer"},
            "email": {"type": "string"},
            "name": {"type": "string"},
            "role": ROLE,
            "created_at": TIMESTAMP,
            "updated_at": TIMESTAMP,
        },
    )
    write_schema = {
        "title": "Registration",
        "type": "object",
        "additionalProperties": False,
        "required": ["email", "password", "name"],
        "properties": {"email": email_address(), "password": PASSWORD, "name": NAME},
    }
    profile_schema = {
        "title": "ProfileUpdate",
        "description": "Change your name and/or your password (with current_password).",
        "type": "object",
        "additionalProperties": False,
        "minProperties": 1,
        "properties": {
            "name": NAME,
            "password": {
                **PASSWORD,
                "description": "The new password; needs current_password (else 401)",
            },
            "current_password": {
                "type": "string",
                "maxLength": 128,
                "description": "Re-authentication: checked whenever it is sent",
            },
        },
    }
    admin_schema = {
        "title": "UserUpdate",
        "type": "object",
        "additionalProperties": False,
        "minProperties": 1,
        "properties": {"name": NAME, "role": ROLE},
    }

    @validates("email")
    def keep_canonical_email(self, _key: str, address: str) -> str:
        """Whoever sets an address sets its canonical form with it."""
        self.email_canonical = canonical_email(address)
        return address

    def as_json(self) -> dict:
        return {
            "id": self.id,
            "email": self.email,
            "name": self.name,
            "role": self.role,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }

    @classmethod
    def by_email(cls, email: str) -> "UserModel | None":
        statement = select(cls).where(cls.email_canonical == canonical_email(email))
        return sql.session.scalars(statement).first()

    @classmethod
    def list(cls, query: ListQuery) -> tuple[list["UserModel"], int]:
        statement = select(cls)
        if "role" in query.filters:
            statement = statement.where(cls.role == query.filters["role"])
        if "q" in query.filters:
            statement = statement.where(
                contains_any_case(query.filters["q"], cls.email, cls.name)
            )
        return cls.page(statement, query)

    @classmethod
    def create(cls, data: dict, role: str = "member") -> "UserModel":
        validate(cls.write_schema, data)
        user = cls(email=data["email"], name=data["name"], role=role)
        # Hashed before the first statement: the hash takes tens of milliseconds,
        # and on SQLite a write holds the database's one write lock from there on.
        user.set_password(data["password"])
        if cls.by_email(data["email"]) is not None:
            raise conflict("A user with this email already exists")
        sql.session.add(user)
        # The unique index decides between concurrent registrations of one address.
        user.flush_or_conflict("A user with this email already exists")
        return user

    @classmethod
    def authenticate(cls, email: str, password: str) -> "UserModel":
        """The user with these credentials, else 401 with one message for every
        failure, taking the same time whether or not the email exists."""
        user = cls.by_email(email)
        if user is None:
            verify_password(dummy_hash(*argon2_params()), password)
            raise bad_credentials()
        if not verify_password(user.password_hash, password):
            raise bad_credentials()
        if password_hasher(*argon2_params()).check_needs_rehash(user.password_hash):
            user.set_password(password)
        return user

    def set_password(self, password: str) -> None:
        self.password_hash = password_hasher(*argon2_params()).hash(password)

    def update_profile(self, data: dict) -> set[str]:
        """Apply a self-service update; returns the fields changed."""
        validate(self.profile_schema, data)
        # Changing the password is a re-authentication: the current one must come
        # along, and whenever it is sent it must be right.
        if "password" in data and "current_password" not in data:
            raise bad_credentials("Send current_password to change your password")
        if "current_password" in data and not verify_password(
            self.password_hash, data["current_password"]
        ):
            raise bad_credentials("Current password is incorrect")
        if "password" in data:
            self.set_password(data["password"])
        if "name" in data:
            self.name = data["name"]
        sql.session.flush()  # so updated_at, which the answer shows, is set
        return set(data) - {"current_password"}

    def update(self, data: dict) -> set[str]:
        """An admin's update (name, role); the last admin keeps the role."""
        validate(self.admin_schema, data)
        if data.get("role", "admin") != "admin":
            self.ensure_not_last_admin()
        changed = {key for key, value in data.items() if getattr(self, key) != value}
        for key, value in data.items():
            setattr(self, key, value)
        sql.session.flush()  # so updated_at, which the answer shows, is set
        return changed

    def delete(self) -> None:
        """The last admin stays; so does anyone other records (loans) refer to."""
        self.ensure_not_last_admin()
        sql.session.delete(self)
        self.flush_or_conflict("This user has loans on record and cannot be deleted")

    def ensure_not_last_admin(self) -> None:
        """Lock every admin row, then count: of two admins demoting each other at
        once, the second waits and sees one admin left (SQLite, which has no row
        locks, refuses the second writer instead)."""
        if self.role != "admin":
            return
        admins = sql.session.scalars(
            select(UserModel.id).where(UserModel.role == "admin").with_for_update()
        ).all()
        if len(admins) <= 1:
            raise conflict("The last admin cannot be removed or demoted")


def argon2_params() -> tuple[int, int, int]:
    config = current_app.config
    return (
        config["ARGON2_TIME_COST"],
        config["ARGON2_MEMORY_COST"],
        config["ARGON2_PARALLELISM"],
    )


@cache
def password_hasher(time_cost: int, memory_cost: int, parallelism: int):
    """Argon2id (argon2-cffi's default type) with the configured cost."""
    return PasswordHasher(
        time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism
    )


@cache
def dummy_hash(time_cost: int, memory_cost: int, parallelism: int) -> str:
    return password_hasher(time_cost, memory_cost, parallelism).hash(uuid.uuid4().hex)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return password_hasher(*argon2_params()).verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# --- Sessions: one per login, in Redis so every instance sees a revocation at once.

# Rotate a session's refresh token if the presented one is current; a spent one
# means the token was replayed, so the whole session ends. Atomic: of two
# concurrent refreshes with one token, exactly one wins.
ROTATE_SCRIPT = """
local current = redis.call('HGET', KEYS[1], 'refresh_jti')
if not current then return 0 end
if current ~= ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[5])
  return -1
end
redis.call('HSET', KEYS[1], 'refresh_jti', ARGV[2], 'refreshed_at', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return 1
"""


class SessionModel:
    """A login session, a Redis hash with a TTL of the refresh token's lifetime;
    each user's sessions are indexed in a sorted set by creation time."""

    label = "Session"

    read_schema = object_schema(
        "Session",
        {
            "id": {"type": "string"},
            "created_at": TIMESTAMP,
            "refreshed_at": TIMESTAMP,
            "expires_at": TIMESTAMP,
            "user_agent": {"type": "string"},
            "ip_address": {"type": "string"},
            "current": {
                "type": "boolean",
                "description": "Whether this is the session of the calling token",
            },
        },
    )
    # A session is opened by signing in: what a client writes is its credentials.
    write_schema = {
        "title": "Credentials",
        "type": "object",
        "additionalProperties": False,
        "required": ["email", "password"],
        "properties": {
            "email": email_address(),
            "password": {"type": "string", "maxLength": 128},
        },
    }

    def __init__(self, session_id: str, fields: dict, ttl: int):
        self.id = session_id
        self.user_id = int(fields["user_id"])
        self.created_at = fields["created_at"]
        self.refreshed_at = fields["refreshed_at"]
        self.user_agent = fields["user_agent"]
        self.ip_address = fields["ip_address"]
        self.refresh_jti = fields.get("refresh_jti", "")
        self.ttl = ttl

    @staticmethod
    def key(session_id: str) -> str:
        return f"myapp:session:{session_id}"

    @staticmethod
    def index_key(user_id: int) -> str:
        return f"myapp:user-sessions:{user_id}"

    @staticmethod
    def lifetime() -> int:
        return int(current_app.config["JWT_REFRESH_TOKEN_EXPIRES"].total_seconds())

    @classmethod
    def create(cls, data: dict) -> "SessionModel":
        """Sign in: a new session for the user these credentials belong to (401 if
        they belong to nobody); `session.user` is that user."""
        validate(cls.write_schema, data)
        user = UserModel.authenticate(data["email"], data["password"])
        now = iso(utcnow())
        fields = {
            "user_id": user.id,
            "user_agent": request.headers.get("User-Agent", "")[:512],
            "ip_address": request.remote_addr or "",
            "created_at": now,
            "refreshed_at": now,
            "refresh_jti": uuid.uuid4().hex,
        }
        session = cls(uuid.uuid4().hex, fields, cls.lifetime())
        session.user = user
        pipe = redis_store.pipeline()
        pipe.hset(cls.key(session.id), mapping=fields)
        pipe.expire(cls.key(session.id), session.ttl)
        pipe.zadd(cls.index_key(session.user_id), {session.id: utcnow().timestamp()})
        pipe.expire(cls.index_key(session.user_id), session.ttl)
        pipe.execute()
        return session

    @classmethod
    def get(cls, session_id: str) -> "SessionModel | None":
        return cls.get_many([session_id])[0]

    @classmethod
    def get_many(cls, session_ids: list[str]) -> list["SessionModel | None"]:
        """The sessions with these ids (None where gone), in one round trip."""
        pipe = redis_store.pipeline()
        for session_id in session_ids:
            pipe.hgetall(cls.key(session_id))
            pipe.ttl(cls.key(session_id))
        replies = pipe.execute()
        found = []
        for session_id, fields, ttl in zip(session_ids, replies[::2], replies[1::2]):
            decoded = {key.decode(): value.decode() for key, value in fields.items()}
            found.append(cls(session_id, decoded, max(ttl, 0)) if fields else None)
        return found

    @classmethod
    def get_or_404(cls, session_id: str, user_id: int) -> "SessionModel":
        """The user's own session; another user's is as absent as a missing one."""
        session = cls.get(session_id)
        if session is None or session.user_id != user_id:
            raise not_found(cls.label)
        return session

    @classmethod
    def list(cls, user_id: int, query: ListQuery) -> tuple[list["SessionModel"], int]:
        """A user's live sessions; entries whose session expired are pruned."""
        index = cls.index_key(user_id)
        ids = [item.decode() for item in redis_store.zrange(index, 0, -1)]
        found = cls.get_many(ids)
        expired = [sid for sid, session in zip(ids, found) if session is None]
        if expired:
            redis_store.zrem(index, *expired)
        sessions = [session for session in found if session is not None]
        sessions.sort(
            key=lambda session: (getattr(session, query.sort), session.id),
            reverse=query.descending,
        )
        return sessions[query.offset : query.offset + query.per_page], len(sessions)

    def rotate(self, presented_jti: str) -> str:
        """Spend the presented refresh token and return the new one's jti."""
        new_jti = uuid.uuid4().hex
        outcome = redis_store.eval(
            ROTATE_SCRIPT,
            2,
            self.key(self.id),
            self.index_key(self.user_id),
            presented_jti,
            new_jti,
            iso(utcnow()),
            self.lifetime(),
            self.id,
        )
        if outcome != 1:
            raise ApiError(401, "unauthorized", "Refresh token already used or revoked")
        self.refresh_jti = new_jti
        return new_jti

    def delete(self) -> None:
        pipe = redis_store.pipeline()
        pipe.delete(self.key(self.id))
        pipe.zrem(self.index_key(self.user_id), self.id)
        pipe.execute()

    @classmethod
    def delete_all(cls, user_id: int, keep: str | None = None) -> None:
        """End every session of a user (all but `keep`): their tokens stop working."""
        index = cls.index_key(user_id)
        ids = [item.decode() for item in redis_store.zrange(index, 0, -1)]
        doomed = [session_id for session_id in ids if session_id != keep]
        if doomed:
            pipe = redis_store.pipeline()
            pipe.delete(*[cls.key(session_id) for session_id in doomed])
            pipe.zrem(index, *doomed)
            pipe.execute()

    @classmethod
    def end_with_change(cls, user_id: int, keep: str | None = None) -> None:
        """End a user's sessions as part of this request's change (a new password
        or role, a deletion): now, so that Redis failing is a 503 and the change is
        not made, and again once it has committed, for a sign-in that raced it. If
        that second pass fails, only such a sign-in outlives the change (logged,
        and counted in /metrics); if the commit fails, the sessions are gone
        anyway, and their owner signs in again."""
        cls.delete_all(user_id, keep)
        after_commit("sessions revoked", lambda: cls.delete_all(user_id, keep))

    def as_json(self, current_session_id: str | None = None) -> dict:
        expires = utcnow() + timedelta(seconds=self.ttl)
        return {
            "id": self.id,
            "created_at": self.created_at,
            "refreshed_at": self.refreshed_at,
            "expires_at": iso(expires.replace(microsecond=0)),
            "user_agent": self.user_agent,
            "ip_address": self.ip_address,
            "current": self.id == current_session_id,
        }

    @classmethod
    def token_revoked(cls, _jwt_header: dict, claims: dict) -> bool:
        """flask-jwt-extended's blocklist check, for every token on every request:
        a token is good while its session lives, and a refresh token only while it
        is the session's current one. Replaying a spent one ends the session."""
        session_id = claims.get("sid")
        if not session_id:
            return True
        current_jti = redis_store.hget(cls.key(session_id), "refresh_jti")
        if current_jti is None:
            return True
        if claims.get("type") == "refresh" and current_jti.decode() != claims["jti"]:
            session = cls.get(session_id)
            if session is not None:
                session.delete()
            return True
        return False


def token_pair(user: UserModel, session: SessionModel) -> dict:
    """A fresh access/refresh pair for a session."""
    identity = str(user.id)
    access = create_access_token(
        identity, additional_claims={"sid": session.id, "role": user.role}
    )
    refresh = create_refresh_token(
        identity, additional_claims={"sid": session.id, "jti": session.refresh_jti}
    )
    lifetime = current_app.config["JWT_ACCESS_TOKEN_EXPIRES"]
    return {
        "access_token": access,
        "refresh_token": refresh,
        "token_type": "Bearer",
        "expires_in": int(lifetime.total_seconds()),
    }


TOKEN_SCHEMA = object_schema(
    "TokenPair",
    {
        "access_token": {"type": "string"},
        "refresh_token": {"type": "string"},
        "token_type": {"type": "string", "enum": ["Bearer"]},
        "expires_in": {"type": "integer", "description": "Access token lifetime, s"},
    },
)
