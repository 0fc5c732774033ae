"""Sign-in sessions, one per login, in Redis so every instance sees a revocation at
once, and the access and refresh tokens a session issues."""

import uuid
from datetime import timedelta

from flask import current_app, request

from myapp import tokens
from myapp.db import redis_store
from myapp.transactions import after_commit, after_rollback
from myapp.errors import ApiError, not_found
from myapp.pagination import ListQuery, Page
from myapp.schema import TIMESTAMP, email_address, object_schema, validate
from myapp.sql_model import iso, utcnow
from myapp.users.models import UserModel, bad_credentials

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
        they belong to nobody); `session.user` is that user's account as checked
        (id, role)."""
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
        # The password was checked with the database let go. A password or role
        # change that committed meanwhile ended the user's sessions, perhaps before
        # this one was written: so the account is read again after it was. Changed,
        # the session goes and the sign-in is refused; unchanged, a change still to
        # come ends this session with the others.
        try:
            if not UserModel.unchanged_since(user):
                raise bad_credentials()
        except Exception:  # refused, or the database failed: no session is left
            session.delete()
            raise
        after_rollback("sign-in session removed", session.delete)
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
    def list(cls, user_id: int, query: ListQuery) -> Page:
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
        return Page(sessions[query.offset :][: query.per_page], len(sessions))

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
    def token_revoked(cls, claims: dict) -> bool:
        """Asked for every token on every request (auth.check_revocation_with): a
        token is good while its session lives, and a refresh token only while it
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


def token_pair(user, session: SessionModel) -> dict:
    """A fresh access/refresh pair for a session of `user` (a UserModel, or a row
    with its id and role)."""
    identity = str(user.id)
    access = tokens.issue(identity, "access", {"sid": session.id, "role": user.role})
    refresh = tokens.issue(
        identity, "refresh", {"sid": session.id, "jti": session.refresh_jti}
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
