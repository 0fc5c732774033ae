"""/healthz and /readiness, and the database slots that keep health answering
while the database stalls."""

import time


from myapp import create_app
from myapp.ops import IN_MEMORY
from myapp.stalls import SLOT_WAIT_SECONDS
from myapp.testing import UNREACHABLE_REDIS, assert_error

# --- Ops


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_readiness_when_everything_answers(client):
    response = client.get("/readiness")
    assert response.status_code == 200
    assert response.get_json() == {
        "status": "ok",
        "checks": {"database": "ok", "redis": "ok"},
    }


def test_readiness_names_redis_when_it_is_down(make_app):
    response = make_app(REDIS_URL=UNREACHABLE_REDIS).test_client().get("/readiness")
    body = assert_error(response, 503, "service_unavailable")
    assert body["details"] == [
        {"field": "redis", "problem": "unreachable"},
        {"field": "rate_limits", "problem": IN_MEMORY},
    ]


def test_a_request_that_finds_every_database_slot_taken_is_503_and_health_answers(
    make_app,
):
    """With WEB_THREADS=2 a worker gives one request at a time the database; while
    that slot is held (as by a request waiting on a stalled database) another
    request waits SLOT_WAIT_SECONDS, then is a 503, and /healthz still answers."""
    app = make_app(WEB_THREADS=2)
    client = app.test_client()
    slots = app.extensions["myapp.database_slots"]
    assert slots.acquire(timeout=1)
    try:
        started = time.monotonic()
        response = client.get("/books/")
        assert time.monotonic() - started >= SLOT_WAIT_SECONDS
        assert_error(response, 503, "service_unavailable")
        assert response.headers["Retry-After"]
        assert client.get("/healthz").status_code == 200
    finally:
        slots.release()
    assert client.get("/books/").status_code == 200


def test_readiness_names_the_database_when_it_is_down(redis_url):
    app = create_app(
        "testing",
        {
            "SQLALCHEMY_DATABASE_URI": "postgresql://nobody@127.0.0.1:1/none",
            "REDIS_URL": redis_url,
            "DATABASE_CONNECT_TIMEOUT": 1,
        },
    )
    body = assert_error(app.test_client().get("/readiness"), 503, "service_unavailable")
    assert body["details"] == [{"field": "database", "problem": "unreachable"}]
    assert "nobody" not in str(body)
