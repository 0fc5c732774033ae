"""Conditional requests: strong ETags on single resources, If-None-Match -> 304,
If-Match -> 412 on writes, and the conditional update and delete of a single
resource that every feature shares. The tag is a hash of the representation
itself, so every change a client could see changes it."""

import hashlib
import json

from flask import Response, request

from myapp.errors import ApiError
from myapp.schema import json_body


def etag_of(body: dict) -> str:
    """The unquoted strong entity tag of a JSON representation."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def single_response(body: dict, status: int = 200):
    """A single resource with its ETag; a 304 when the client's copy is current."""
    tag = etag_of(body)
    headers = {"ETag": f'"{tag}"'}
    if request.method in ("GET", "HEAD") and request.if_none_match.contains_weak(tag):
        return Response(status=304, headers=headers)
    return body, status, headers


def created(body: dict, location: str):
    """201 with the new resource, its ETag and its URL."""
    body, status, headers = single_response(body, 201)
    return body, status, {**headers, "Location": location}


def check_if_match(current_body: dict | None) -> None:
    """Before a write: 412 when If-Match names a version other than the current one
    (or when there is none: even "*" needs the resource to exist)."""
    if "If-Match" not in request.headers:
        return
    if current_body is None or not request.if_match.contains(etag_of(current_body)):
        raise ApiError(
            412,
            "precondition_failed",
            "If-Match does not match the current ETag; fetch the resource again",
        )


def update_if_match(model, key, **options):
    """PUT or PATCH of one resource: locked for the write (404 if missing), 412 when
    If-Match is stale, the body applied by `update(body, **options)`, and the new
    version answered with its ETag."""
    item = model.get_or_404(key, for_update=True)
    check_if_match(item.as_json())
    item.update(json_body(), **options)
    return single_response(item.as_json())


def delete_if_match(model, key) -> None:
    """DELETE of one resource: locked (404 if missing), 412 when If-Match is stale,
    then its model's `delete` (which may refuse, 409)."""
    item = model.get_or_404(key, for_update=True)
    check_if_match(item.as_json())
    item.delete()
