"""What every feature's tests share, and the bench and deploy tests with them (kept
in the package so test modules in each feature can import them)."""

import socket

from myapp.errors import ERROR_SCHEMA
from myapp.schema import problems


def assert_valid(schema: dict, instance) -> None:
    found = problems(schema, instance)
    assert not found, f"does not match {schema.get('title', 'schema')}: {found}"


def assert_error(response, status: int, code: str) -> dict:
    """The response is our one error shape with this status and code."""
    assert response.status_code == status, (response.status_code, response.data[:500])
    assert response.content_type == "application/json"
    body = response.get_json()
    assert_valid(ERROR_SCHEMA, body)
    assert body["code"] == code, body
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now, for a server to start."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
