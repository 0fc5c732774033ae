"""Rate limits an attacker cannot switch off or overshoot: a body that is not JSON
is refused before any limit counts and cannot make the limiter leave Redis; a key
function never raises; guarded attempts count before the work, so parallel ones
cannot get past the limit; a real Redis failure shows in the log, /metrics and
/readiness. Against a live gunicorn (4 workers) where processes matter."""

import json
import threading

import pytest
import requests
from prometheus_client import REGISTRY

from conftest import PASSWORD, wsgi_server
from myapp.db import limit_key, sql
from myapp.testing import assert_error
from myapp.users.models import UserModel


def storage_failures() -> float:
    return REGISTRY.get_sample_value("myapp_rate_limit_storage_failures_total") or 0


HOSTILE_BODIES = {
    "deep-nesting": "[" * 100_000,
    "deep-object": '{"a":' * 50_000,
    "nan": '{"email": "x@example.com", "password": NaN}',
    "lone-surrogate": '{"email": "x@example.com", "password": "\\ud800"}',
    "truncated": '{"email": "x@example.com", "password": "',
}


@pytest.mark.parametrize("body", HOSTILE_BODIES.values(), ids=HOSTILE_BODIES.keys())
def test_a_body_that_is_not_json_counts_nothing_and_keeps_limits_in_redis(
    make_app, member, redis_client, body
):
    client = make_app(RATELIMIT_LOGIN="3 per minute").test_client()
    failures = storage_failures()
    for _ in range(10):
        response = client.post(
            "/users/tokens", data=body, content_type="application/json"
        )
        assert_error(response, 400, "bad_request")
        assert "X-RateLimit-Remaining" not in response.headers  # counted nothing
    wrong = {"email": member.email, "password": "a wrong password"}
    statuses = [client.post("/users/tokens", json=wrong).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    assert redis_client.keys("*login*"), "the sign-in limit is not counted in Redis"
    assert storage_failures() == failures


def test_a_key_function_never_raises(app):
    def broken() -> str:
        raise RuntimeError("a key that cannot be made")

    with app.test_request_context(environ_base={"REMOTE_ADDR": "192.0.2.9"}):
        assert limit_key(broken)() == "ip:192.0.2.9"


def test_a_redis_failure_is_logged_counted_and_shown(make_app, capsys):
    from myapp.ops import IN_MEMORY

    before = storage_failures()
    client = make_app(REDIS_URL="redis://127.0.0.1:1/0").test_client()
    assert client.get("/books/").status_code in (200, 503)
    assert storage_failures() == before + 1
    logged = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert any(
        line["level"] == "WARNING" and "memory" in line["message"] for line in logged
    )
    metrics = client.get("/metrics").get_data(as_text=True)
    assert "myapp_rate_limit_storage_failures_total" in metrics
    readiness = client.get("/readiness").get_json()
    assert {"field": "rate_limits", "problem": IN_MEMORY} in readiness["details"]


# --- Against a live gunicorn with the shipped limits


@pytest.fixture(scope="module")
def limited_server(database_url, redis_url, workdir):
    """gunicorn (4 workers) with the default limits: 5 sign-ins a minute."""
    with wsgi_server(workdir, DATABASE_URL=database_url, REDIS_URL=redis_url) as base:
        yield base


@pytest.fixture
def account(committing_app):
    def make(email: str) -> dict:
        with committing_app.app_context():
            UserModel.create({"email": email, "password": PASSWORD, "name": "L"})
            sql.session.commit()
        return {"email": email, "password": PASSWORD}

    return make


@pytest.mark.parametrize("attempt", range(3))
def test_hostile_bodies_between_guesses_do_not_lift_the_sign_in_limit(
    limited_server, account, attempt
):
    """The attack seen in review: a deeply nested body before each guess, spread
    over the workers. Five guesses count, then every try is a 429, the right
    password too."""
    target = account(f"guessed-{attempt}@example.com")
    statuses = []
    for guess in range(12):
        hostile = requests.post(
            f"{limited_server}/users/tokens",
            data="[" * 100_000,
            headers={"Content-Type": "application/json"},
        )
        assert hostile.status_code == 400
        wrong = {"email": target["email"], "password": f"wrong guess {guess}"}
        statuses.append(
            requests.post(f"{limited_server}/users/tokens", json=wrong).status_code
        )
    right = requests.post(f"{limited_server}/users/tokens", json=target)
    assert statuses == [401] * 5 + [429] * 7
    assert right.status_code == 429


@pytest.mark.parametrize("attempt", range(5))
def test_parallel_password_guesses_cannot_overshoot(limited_server, account, attempt):
    """Ten PATCH /users/me with a wrong current_password at once: five are
    checked (401), the rest refused (429), however the workers interleave."""
    target = account(f"reauth-{attempt}@example.com")
    token = requests.post(f"{limited_server}/users/tokens", json=target).json()[
        "access_token"
    ]
    barrier, statuses = threading.Barrier(10), []

    def guess(number: int) -> None:
        barrier.wait()
        response = requests.patch(
            f"{limited_server}/users/me",
            json={"name": "X", "current_password": f"wrong {number}"},
            headers={"Authorization": f"Bearer {token}"},
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [401] * 5 + [429] * 5
