"""/healthz and /readiness, and the database slots that keep health answering
while the database stalls."""

import math
import threading
import time

import pytest
from argon2 import PasswordHasher

from myapp import create_app
from myapp.db import sql
from myapp.ops import IN_MEMORY
from myapp.stalls import SLOT_WAIT_SECONDS
from myapp.testing import (
    UNREACHABLE_REDIS,
    assert_error,
    during_the_password_check,
    slow_password_checks,
    timed,
)

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


def test_a_request_takes_a_database_slot_only_when_it_first_uses_the_database(
    make_app,
):
    """With the one slot of WEB_THREADS=2 taken, a registration refused before any
    statement (its body) is answered at once: it never waited for the slot."""
    app = make_app(WEB_THREADS=2)
    client = app.test_client()
    slots = app.extensions["myapp.database_slots"]
    assert slots.acquire(timeout=1)
    try:
        response = client.post("/users/", json={"email": "not an address"})
        assert_error(response, 400, "validation_error")
        assert_error(client.get("/books/"), 503, "service_unavailable")
    finally:
        slots.release()


def test_a_registration_hashes_its_password_without_holding_a_database_slot(
    make_app,
):
    """Registrations hashing at once on a busy CPU (a deploy building) once held
    every slot of a worker for 1.8 s, and a write waiting behind them was a 503.
    Here the one slot of WEB_THREADS=2 is held for longer than a request waits
    for one, by another request; a registration whose hash takes longer still
    finds it free once the hash is done, and is a 201. (The hash's cost is set
    from the fastest of three passes: one slowed by the scheduler would make the
    hash too short.)"""
    held_for = SLOT_WAIT_SECONDS + 0.25
    hasher = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    one_pass = min(timed(hasher.hash, "calibrate") for _ in range(3))
    app = make_app(
        WEB_THREADS=2,
        ARGON2_TIME_COST=math.ceil(2 * held_for / one_pass),
        ARGON2_MEMORY_COST=8192,
        ARGON2_PARALLELISM=1,
    )
    slots = app.extensions["myapp.database_slots"]
    assert slots.acquire(timeout=1)
    threading.Timer(held_for, slots.release).start()
    body = {"email": "slow@example.com", "password": "a slow password", "name": "S"}
    assert app.test_client().post("/users/", json=body).status_code == 201


SLOW = {"email": "slow@example.com", "password": "a slow password", "name": "S"}
SIGN_IN = {"email": SLOW["email"], "password": SLOW["password"]}
NEW_PASSWORD = {"current_password": SLOW["password"], "password": "a new password"}


@pytest.mark.parametrize(
    "method, path, body, status",
    [
        ("post", "/users/tokens", SIGN_IN, 201),
        ("patch", "/users/me", NEW_PASSWORD, 200),
    ],
    ids=["sign-in", "password-change"],
)
def test_a_password_check_holds_no_database_slot_nor_connection(
    make_committing_app, method, path, body, status
):
    """A sign-in, or a password change, reads the account, then lets the database
    go while it checks the password (and hashes the new one): meanwhile the one
    slot of WEB_THREADS=2 is free for another request, and no connection of the
    pool is out (its transaction, on SQLite the write lock, has ended). Before,
    the check held them, and requests waiting behind a few sign-ins were 503s."""
    app = slow_password_checks(make_committing_app)
    client = app.test_client()
    assert client.post("/users/", json=SLOW).status_code == 201
    token = client.post("/users/tokens", json=SIGN_IN).get_json()["access_token"]
    slots = app.extensions["myapp.database_slots"]
    free = {}

    def look():
        free["slot"] = slots.acquire(timeout=SLOT_WAIT_SECONDS)
        with app.app_context():
            free["connections"] = sql.engine.pool.checkedout() == 0
        if free["slot"]:
            slots.release()

    headers = {"Authorization": f"Bearer {token}"}
    answer = during_the_password_check(
        app, lambda: getattr(client, method)(path, json=body, headers=headers), look
    )
    assert free == {"slot": True, "connections": True}
    assert answer.status_code == status


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
