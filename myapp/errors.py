"""The one error shape, and the one place that turns any exception into it.

    {"code": "not_found", "message": "...", "details": [...], "request_id": "..."}

Every status an API client can meet goes through `error_response`: errors raised by
our code (ApiError), by Werkzeug (404, 405, 413, ...), by extensions (rate limits,
JWT) and by the database or Redis failing.
"""

from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, jsonify, request
from sqlalchemy import exc as sql_errors
from werkzeug.exceptions import HTTPException, SecurityError
from werkzeug.routing import RequestRedirect

from myapp.outages import is_outage
from myapp.request_id import request_id


@dataclass(frozen=True)
class Status:
    """An error status: its `code`, the default `message` (errors raised by our code
    say more), and what it means for the OpenAPI documents."""

    code: str
    message: str
    description: str


STATUSES = {
    400: Status(
        "bad_request",
        "Bad request",
        "validation_error (the body breaks its schema) or bad_request (malformed "
        "JSON, a bad query parameter or header); `details` lists every problem",
    ),
    401: Status(
        "unauthorized",
        "Authentication required",
        "unauthorized: a missing, malformed, expired, revoked or forged token, or "
        "bad credentials",
    ),
    403: Status("forbidden", "Forbidden", "forbidden: your role may not do this"),
    404: Status("not_found", "Resource not found", "not_found"),
    405: Status(
        "method_not_allowed",
        "Method not allowed on this resource",
        "method_not_allowed",
    ),
    409: Status("conflict", "Conflict", "conflict: see `message` and `details`"),
    412: Status(
        "precondition_failed",
        "Precondition failed",
        "precondition_failed: `If-Match` is not the current `ETag`; nothing changed",
    ),
    413: Status(
        "payload_too_large",
        "Request body is too large",
        "payload_too_large: the body is over MAX_CONTENT_LENGTH (1 MiB by default)",
    ),
    415: Status(
        "unsupported_media_type",
        "Request body must be application/json",
        "unsupported_media_type: the body is not application/json",
    ),
    429: Status(
        "rate_limited",
        "Rate limit exceeded",
        "rate_limited: wait `Retry-After` seconds",
    ),
    500: Status("internal_error", "Internal server error", "internal_error"),
    503: Status(
        "service_unavailable",
        "Service temporarily unavailable, try again shortly",
        "service_unavailable: the database or Redis is unavailable (down, stalled, "
        "full or read-only); nothing was "
        "written, retry after `Retry-After` seconds",
    ),
}

# What a client should wait before retrying when a backing service is down.
RETRY_AFTER_UNAVAILABLE = 5
# Headers of a Werkzeug exception worth keeping (Allow on 405, Retry-After on 429).
KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")


# The shape as a JSON Schema: each feature's spec documents it (myapp/api.py), and
# the tests validate every error body against it.
ERROR_SCHEMA = {
    "type": "object",
    "required": ["code", "message", "details", "request_id"],
    "properties": {
        "code": {"type": "string"},
        "message": {"type": "string"},
        "details": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "problem"],
                "properties": {
                    "field": {"type": "string"},
                    "problem": {"type": "string"},
                },
            },
        },
        "request_id": {"type": "string"},
    },
}


class ApiError(Exception):
    """An error our code raises on purpose; it becomes the error shape as it is."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: list[dict] | None = None,
        headers: dict | None = None,
        *,
        retry_after: int | None = None,
    ):
        """`retry_after`: the seconds a client should wait before trying again
        (429, 503, a 409 still in progress), sent as Retry-After."""
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details = details or []
        self.headers = headers or {}
        if retry_after is not None:
            self.headers["Retry-After"] = str(retry_after)


def not_found(what: str = "Resource") -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


def unauthorized(message: str) -> ApiError:
    """A missing, malformed, expired, revoked or forged token, or bad credentials."""
    return ApiError(
        401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"}
    )


def conflict(message: str, details: list[dict] | None = None) -> ApiError:
    return ApiError(409, "conflict", message, details)


def bad_request(message: str, details: list[dict] | None = None) -> ApiError:
    return ApiError(400, "bad_request", message, details)


def error_response(error: Exception) -> Response:
    return shaped_response(to_api_error(error))


def shaped_response(api_error: ApiError) -> Response:
    body = {
        "code": api_error.code,
        "message": api_error.message,
        "details": api_error.details,
        "request_id": request_id(),
    }
    response = jsonify(body)
    response.status_code = api_error.status
    response.headers.update(api_error.headers)
    return response


def answer_routing_refusals() -> Response | None:
    """What Werkzeug decides while routing, before any view, answered here in the
    one shape: a Host not in TRUSTED_HOSTS (400), a URL that only lacks its
    trailing slash (/books), redirected to the route's own (/books/) with a
    Location relative to this host (Werkzeug's is an HTML page that no error
    handler sees), and no route (404) or not this method (405). Flask-RESTX's own
    handling of these routes them again and trips: on a host name, and on a made-up
    method at an id the route refuses (PROPFIND /books/0 raised, a 500)."""
    refusal = request.routing_exception
    if isinstance(refusal, SecurityError):
        return shaped_response(
            ApiError(400, "bad_request", "This host name is not served here")
        )
    if isinstance(refusal, RequestRedirect):
        return redirect_in_json(refusal)
    if isinstance(refusal, HTTPException):
        return error_response(refusal)
    return None


def redirect_in_json(redirect: RequestRedirect) -> Response:
    target = urlsplit(redirect.new_url)
    location = target.path + (f"?{target.query}" if target.query else "")
    message = f"This resource is at {target.path}; send the request there"
    return shaped_response(
        ApiError(
            redirect.code, "permanent_redirect", message, None, {"Location": location}
        )
    )


def to_api_error(error: Exception) -> ApiError:
    if isinstance(error, ApiError):
        return error
    if isinstance(error, HTTPException):
        return from_http_exception(error)
    if is_outage(error):
        # The driver's own message: the SQLAlchemy one would log statement parameters.
        cause = getattr(error, "orig", None) or error
        current_app.logger.warning(
            "Backing service unavailable: %s: %s", type(cause).__name__, cause
        )
        return ApiError(
            503,
            "service_unavailable",
            STATUSES[503].message,
            retry_after=RETRY_AFTER_UNAVAILABLE,
        )
    if isinstance(error, sql_errors.IntegrityError):
        return ApiError(409, "conflict", "The change conflicts with existing data")
    current_app.logger.error("Unhandled error", exc_info=error)
    return ApiError(500, "internal_error", STATUSES[500].message)


def from_http_exception(error: HTTPException) -> ApiError:
    status = error.code or 500
    known = STATUSES.get(status)
    phrase = HTTPStatus(status).phrase
    code = known.code if known else phrase.lower().replace(" ", "_")
    message = known.message if known else phrase
    headers = {
        name: value for name, value in error.get_headers() if name in KEPT_HEADERS
    }
    return ApiError(status, code, message, headers=headers)


def register_error_handlers(app: Flask) -> None:
    """Errors outside the feature Apis (unknown URLs, ops routes) take the same shape;
    the feature Apis route theirs to error_response too (see myapp/api.py)."""
    app.register_error_handler(Exception, error_response)
    app.before_request(answer_routing_refusals)
