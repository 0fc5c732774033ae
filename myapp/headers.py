"""The HTTP headers of the API's contract: every header the server writes that a
client may read (CORS exposes exactly these), which responses carry them, and
every header it reads. The OpenAPI documents and the CORS settings are made from
these tables."""

from myapp.idempotency import HEADER as IDEMPOTENCY_KEY
from myapp.idempotency import HEADER_SCHEMA as IDEMPOTENCY_KEY_SCHEMA
from myapp.request_id import MAX_REQUEST_ID_LENGTH

# Every header the server writes that a client may read. `required` marks those a
# response that documents the header always carries. CORS exposes exactly these.
RESPONSE_HEADERS = {
    "X-Request-ID": {
        "description": "The request's id: the client's `X-Request-ID` when it sent "
        "a sane one, else a new UUID. Log lines carry it too.",
        "required": True,
        "schema": {"type": "string"},
    },
    "X-RateLimit-Limit": {
        "description": "Requests allowed in the current window of the tightest "
        "limit this request counted against.",
        "schema": {"type": "integer", "minimum": 0},
    },
    "X-RateLimit-Remaining": {
        "description": "Requests left in that window.",
        "schema": {"type": "integer", "minimum": 0},
    },
    "X-RateLimit-Reset": {
        "description": "When that window ends, in seconds since the Unix epoch.",
        "schema": {"type": "integer", "minimum": 0},
    },
    "X-RateLimit-Retry-After": {
        "description": "Seconds until that window ends.",
        "schema": {"type": "integer", "minimum": 0},
    },
    "Retry-After": {
        "description": "Seconds to wait before trying again (on every 429 and 503; "
        "on a 409 while a request with the same `Idempotency-Key` is in progress).",
        "schema": {"type": "integer", "minimum": 0},
    },
    "ETag": {
        "description": "The strong entity tag of the representation; send it back "
        "in `If-None-Match` (304 when unchanged) or `If-Match` (412 when changed).",
        "required": True,
        "schema": {"type": "string"},
    },
    "Link": {
        "description": "RFC 8288 links to the `first`, `prev`, `next` and `last` "
        "pages, where such a page exists.",
        "required": True,
        "schema": {"type": "string"},
    },
    "Location": {
        "description": "The URL of the resource this request created.",
        "required": True,
        "schema": {"type": "string", "format": "uri-reference"},
    },
    "Idempotent-Replayed": {
        "description": "`true` when this is the stored response of an earlier "
        "request with the same `Idempotency-Key`: nothing was done again.",
        "schema": {"type": "string", "enum": ["true"]},
    },
    "WWW-Authenticate": {
        "description": "`Bearer`: the request needs a valid token.",
        "required": True,
        "schema": {"type": "string"},
    },
}
# Headers every response of every operation may carry.
EVERY_RESPONSE = (
    "X-Request-ID",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "X-RateLimit-Retry-After",
)
# Headers an error status carries on top of those.
ERROR_HEADERS = {
    401: ("WWW-Authenticate",),
    429: ("Retry-After",),
    503: ("Retry-After",),
}

# Every header the server reads (Authorization is the security schemes').
REQUEST_HEADERS = {
    "X-Request-ID": {
        "description": "Your id for this request, echoed back and logged; at most "
        f"{MAX_REQUEST_ID_LENGTH} visible ASCII characters (else a new one is made).",
        "schema": {"type": "string"},
    },
    "If-None-Match": {
        "description": "The `ETag` you hold: 304 with no body when it is current.",
        "schema": {"type": "string"},
    },
    "If-Match": {
        "description": "The `ETag` you read: the change is made only if the "
        "resource is still that version, else 412 and nothing changes.",
        "schema": {"type": "string"},
    },
    IDEMPOTENCY_KEY: {
        "description": IDEMPOTENCY_KEY_SCHEMA["description"],
        "schema": {
            key: value
            for key, value in IDEMPOTENCY_KEY_SCHEMA.items()
            if key != "description"
        },
    },
}
