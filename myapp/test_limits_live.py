"""Rate limits against a live gunicorn (4 workers) with the shipped limits, where
processes matter: hostile bodies between guesses do not lift the sign-in limit,
and parallel password guesses cannot overshoot it."""

import threading

import pytest
import requests

from myapp.testing import PASSWORD
from myapp.throwaway import wsgi_server
from myapp.db import sql
from myapp.users.models import UserModel


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
