"""The request id: the client's X-Request-ID when sane, else a fresh UUID."""

import uuid

from flask import g, has_request_context, request

MAX_REQUEST_ID_LENGTH = 128


def is_sane_request_id(value: str | None) -> bool:
    return (
        bool(value)
        and len(value) <= MAX_REQUEST_ID_LENGTH
        and all(" " <= char <= "~" for char in value)
    )


def request_id() -> str | None:
    """The current request's id, assigned on first use."""
    if not has_request_context():
        return None
    if "request_id" not in g:
        sent = request.headers.get("X-Request-ID")
        g.request_id = sent if is_sane_request_id(sent) else str(uuid.uuid4())
    return g.request_id
