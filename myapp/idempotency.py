"""Idempotency-Key: a retried write returns the first response and does nothing more.

The key is scoped to the signed-in user and claimed in Redis with SET NX, so of any
number of concurrent requests with one key exactly one runs; the others wait for its
response and return it. The response is stored after the request's transaction
committed (a 4xx at once: nothing was written), for IDEMPOTENCY_TTL seconds. A
request that fails with a 5xx, or whose commit fails, releases the key, so a retry
can run again. If Redis fails between the commit and storing the response, the
client still gets its 201; the claim then lapses after PENDING_SECONDS.
"""

import hashlib
import json
import time
from functools import wraps

from flask import current_app, request

from myapp.auth import current_identity
from myapp.db import redis_store
from myapp.transactions import after_commit, after_rollback
from myapp.errors import ApiError, bad_request
from myapp.schema import problems, request_body

HEADER = "Idempotency-Key"
HEADER_SCHEMA = {
    "type": "string",
    "pattern": r"^[\x21-\x7e]{1,255}$",
    "description": "Any 1..255 visible ASCII characters, new for each operation; "
    "a retry with the same key returns the first response",
}
SWAGGER_PARAMS = {HEADER: {"in": "header", **HEADER_SCHEMA}}
# How long an unfinished claim holds the key: past any statement timeout.
PENDING_SECONDS = 30
POLL_SECONDS = 0.05


def idempotent(view):
    """Decorator for a write endpoint returning (body, status[, headers])."""

    @wraps(view)
    def guarded(*args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None:
            return view(*args, **kwargs)
        if problems(HEADER_SCHEMA, key):
            raise bad_request(f"{HEADER} must be 1..255 visible ASCII characters")
        record_key = f"myapp:idempotency:{current_identity().user_id}:{digest(key)}"
        fingerprint = request_fingerprint()
        pending = compact({"state": "pending", "fingerprint": fingerprint})
        if not redis_store.set(record_key, pending, nx=True, ex=PENDING_SECONDS):
            return replay(record_key, fingerprint)
        try:
            body, status, headers = unpack(view(*args, **kwargs))
        except ApiError as error:
            if error.status >= 500:
                redis_store.delete(record_key)
            else:
                store(record_key, fingerprint, error=error)
            raise
        except Exception:
            redis_store.delete(record_key)
            raise
        after_commit(
            "idempotent response kept",
            lambda: store(record_key, fingerprint, body, status, headers),
        )
        after_rollback(
            "idempotency key released", lambda: redis_store.delete(record_key)
        )
        return body, status, headers

    return guarded


def digest(*parts) -> str:
    """128 bits of SHA-256, in hex: no two keys or requests of one user collide,
    and each record is 64 bytes shorter than with the whole hash."""
    hashed = hashlib.sha256()
    for part in parts:
        hashed.update(part if isinstance(part, bytes) else str(part).encode())
        hashed.update(b"\0")
    return hashed.hexdigest()[:32]


def compact(record: dict) -> str:
    return json.dumps(record, separators=(",", ":"))


def request_fingerprint() -> str:
    """What makes two requests with one key the same request: the method, the path
    and the JSON body, however it is spelled (key order, spacing; no body at all
    is {}, as a generated client may send either)."""
    raw = request_body()
    try:
        body = json.loads(raw) if raw.strip() else {}
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    except (ValueError, RecursionError):
        canonical = raw
    return digest(request.method, request.path, canonical)


def unpack(result) -> tuple:
    body, status, *rest = result if isinstance(result, tuple) else (result, 200)
    return body, status, dict(rest[0]) if rest else {}


def store(record_key, fingerprint, body=None, status=None, headers=None, error=None):
    record = {"state": "done", "fingerprint": fingerprint}
    if error is not None:
        record["error"] = [error.status, error.code, error.message, error.details]
    else:
        record.update(body=body, status=status, headers=headers)
    ttl = current_app.config["IDEMPOTENCY_TTL"]
    redis_store.set(record_key, compact(record), ex=ttl)


def replay(record_key: str, fingerprint: str):
    """Wait for the first request's response, and return it."""
    deadline = time.monotonic() + current_app.config["IDEMPOTENCY_WAIT"]
    while True:
        raw = redis_store.get(record_key)
        record = json.loads(raw) if raw else None
        if record and record["fingerprint"] != fingerprint:
            raise ApiError(
                409, "conflict", f"{HEADER} was already used for a different request"
            )
        if record and record["state"] == "done":
            break
        if record is None or time.monotonic() > deadline:
            raise ApiError(
                409,
                "conflict",
                f"A request with this {HEADER} is still in progress; retry later",
                retry_after=1,
            )
        time.sleep(POLL_SECONDS)
    if "error" in record:
        status, code, message, details = record["error"]
        raise ApiError(status, code, message, details, {"Idempotent-Replayed": "true"})
    headers = {**record["headers"], "Idempotent-Replayed": "true"}
    return record["body"], record["status"], headers
