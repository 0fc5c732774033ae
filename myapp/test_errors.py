"""The one error shape, for every kind of failure, and what every response
carries: JSON and a request id."""

import collections
import threading

import flask
import pytest
import sqlalchemy
from sqlalchemy import text
from flask.sessions import NullSession
from flask.testing import FlaskClient

from myapp import create_app
from myapp.db import sql
from myapp.settings import READS
from myapp.testing import PRODUCTION_ENV, UNREACHABLE_REDIS, assert_error
from myapp.users.models import UserModel

# --- The error shape, for every kind of failure


def test_unknown_urls_are_404_in_the_error_shape(client):
    for path in ("/nope", "/users/nope/deeper", "/users/me/sessions/a/b"):
        assert_error(client.get(path), 404, "not_found")


def test_wrong_method_is_405_with_allow(client):
    response = client.put("/users/tokens")
    assert_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]
    assert_error(client.post("/healthz"), 405, "method_not_allowed")


def boom():
    raise RuntimeError("SELECT secret FROM vault -- stack details")


@pytest.mark.parametrize("where", ["plain route", "feature resource"])
def test_unexpected_errors_are_a_bare_500(make_app, admin, monkeypatch, where):
    app = make_app()
    # A bug on purpose: the documents promise no 500, so not the contract client.
    client = FlaskClient(app)
    if where == "plain route":
        app.add_url_rule("/boom", "boom", boom)
        response = client.get("/boom")
    else:
        monkeypatch.setattr(UserModel, "list", classmethod(lambda cls, query: boom()))
        response = client.get("/users/", headers=admin.headers)
    body = assert_error(response, 500, "internal_error")
    assert body["message"] == "Internal server error" and body["details"] == []
    assert "secret" not in response.text and "Traceback" not in response.text


def test_production_500_says_nothing_more(environ, database_url, redis_url):
    environ(**{**PRODUCTION_ENV, "DATABASE_URL": database_url, "REDIS_URL": redis_url})
    app = create_app()
    app.add_url_rule("/boom", "boom", boom)
    response = app.test_client().get(
        "/boom", base_url=PRODUCTION_ENV["PUBLIC_BASE_URL"]
    )
    body = assert_error(response, 500, "internal_error")
    assert body["message"] == "Internal server error"
    assert "secret" not in response.text and "Traceback" not in response.text


def test_a_database_failure_is_503_with_retry_after(client, admin, monkeypatch):
    def fail(cls, query):
        raise sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("gone"))

    monkeypatch.setattr(UserModel, "list", classmethod(fail))
    response = client.get("/users/", headers=admin.headers)
    body = assert_error(response, 503, "service_unavailable")
    assert response.headers["Retry-After"] == "5"
    assert "SELECT" not in response.text and "gone" not in body["message"]


def test_an_unreachable_redis_is_503_for_token_checks(make_app, member):
    cut_off = make_app(REDIS_URL=UNREACHABLE_REDIS).test_client()
    response = cut_off.get("/users/me", headers=member.headers)
    assert_error(response, 503, "service_unavailable")
    assert response.headers["Retry-After"] == "5"


def test_reads_run_in_autocommit_on_postgresql_and_writes_in_a_transaction(
    committing_app, database_url
):
    """A GET costs one round trip per query on PostgreSQL: no BEGIN, no ROLLBACK.
    Its connection comes from a pool of its own that keeps it in autocommit, so a
    write never gets a connection left in autocommit, nor a read one in a
    transaction, whatever order they come in."""
    postgres = database_url.startswith("postgresql")
    for method in ("GET", "POST", "GET", "HEAD", "PATCH", "GET"):
        autocommit = postgres and method in ("GET", "HEAD")
        with committing_app.test_request_context("/books/", method=method):
            connection = sql.session.connection()
            reads = sql.engines.get(READS)
            assert (connection.engine is reads) is autocommit
            if postgres:
                assert connection.connection.dbapi_connection.autocommit is autocommit
            else:
                assert reads is None  # SQLite has one engine
            sql.session.remove()


def test_reads_have_the_timeouts_and_pool_bounds_of_writes(
    committing_app, database_url
):
    """The pool GETs read from is made like the default one: the same statement
    and lock timeouts on the server, the same pool bounds."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has one engine")
    settings = {}
    for method in ("GET", "POST"):
        with committing_app.test_request_context("/books/", method=method):
            pool = sql.session.connection().engine.pool
            settings[method] = [
                sql.session.execute(text(f"SHOW {name}")).scalar_one()
                for name in ("statement_timeout", "lock_timeout")
            ] + [pool.size(), pool.timeout()]
            sql.session.remove()
    assert settings["GET"] == settings["POST"]
    assert settings["GET"][0] != "0"  # a timeout is set


def test_a_process_holds_at_most_two_pools_of_web_threads_plus_two_connections(
    committing_app, database_url
):
    """README (capacity): a process's connections to PostgreSQL are at most
    2 × (WEB_THREADS + 2), whatever its load: three times as many threads as it
    has, each reading by key, listing, signing in (a read in a transaction) and
    asking /readiness. The connections counted are the driver's own, opened and
    closed, not the pools' bookkeeping."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite's connections are files of the process")
    app = committing_app
    unlimited = "10000000 per hour"
    app.config.update(RATELIMIT_DEFAULT=unlimited, RATELIMIT_LOGIN=unlimited)
    email, password = "pools@example.com", "a password for the pools"
    with app.app_context():
        UserModel.create({"email": email, "password": password, "name": "P"})
        sql.session.commit()
        engines = list(sql.engines.values())
    open_now, peak, lock = set(), [0], threading.Lock()

    def opened(connection, _record):
        with lock:
            open_now.add(id(connection))
            peak[0] = max(peak[0], len(open_now))

    def closed(connection, *_):
        with lock:
            open_now.discard(id(connection))

    for engine in engines:
        sqlalchemy.event.listen(engine.pool, "connect", opened)
        sqlalchemy.event.listen(engine.pool, "close", closed)
        sqlalchemy.event.listen(engine.pool, "close_detached", closed)
        engine.dispose()  # counted from the first connection
    statuses = collections.Counter()

    def client_loop():
        client = app.test_client()
        for _ in range(15):
            for response in (
                client.get("/books/1"),
                client.get("/books/?per_page=5"),
                client.post(
                    "/users/tokens", json={"email": email, "password": password}
                ),
                client.get("/readiness"),
            ):
                with lock:
                    statuses[response.status_code] += 1

    threads = [
        threading.Thread(target=client_loop)
        for _ in range(3 * app.config["WEB_THREADS"])
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(statuses) <= {200, 201, 404, 503}, statuses
    assert statuses[200] and statuses[201], statuses  # served, not only refused
    assert 2 <= peak[0] <= 2 * (app.config["WEB_THREADS"] + 2), peak


# --- Every response: JSON and a request id


def test_no_response_sets_a_cookie_and_no_request_opens_a_session(app, client):
    """The API's only client state is its token: no cookie session is opened (it
    cost a signing serializer per request) or set, and writing to one fails."""
    for path in ("/", "/books/", "/users/docs", "/nope"):
        assert "Set-Cookie" not in client.get(path).headers
    with app.test_request_context("/books/"):
        app.preprocess_request()
        assert isinstance(flask.session, NullSession)
        with pytest.raises(RuntimeError):
            flask.session["user"] = "someone"


def test_responses_are_json_with_a_request_id(client):
    for path in ("/", "/healthz", "/readiness", "/users/openapi.json", "/nope"):
        response = client.get(path)
        assert response.content_type == "application/json"
        assert len(response.headers["X-Request-ID"]) == 36


@pytest.mark.parametrize("sent", ["abc-123", "x" * 128, "req id with spaces ~!"])
def test_a_sane_request_id_is_echoed(client, sent):
    response = client.get("/nope", headers={"X-Request-ID": sent})
    assert response.headers["X-Request-ID"] == sent
    assert response.get_json()["request_id"] == sent


@pytest.mark.parametrize("sent", ["x" * 129, "tab\tinside", "caf\u00e9", ""])
def test_an_insane_request_id_is_replaced(client, sent):
    response = client.get("/healthz", headers={"X-Request-ID": sent})
    assert response.headers["X-Request-ID"] != sent
    assert len(response.headers["X-Request-ID"]) == 36


def test_a_huge_value_or_field_name_is_named_not_echoed(client):
    """A 400 quotes at most a few dozen characters of what was sent: a client's
    megabyte does not come back to it (or into a log)."""
    body = {"email": "e" * 300_000 + "@example.com", "x" * 300_000: 1}
    response = client.post("/users/", json={**body, "password": "long enough 123"})
    problems = assert_error(response, 400, "validation_error")["details"]
    assert len(response.data) < 2_000
    assert {"field": "email", "problem": "'" + "e" * 39 + "... is too long"} in problems
    assert {"field": "x" * 40 + "...", "problem": "is not an allowed field"} in problems


def test_a_400_lists_fifty_problems_at_most(client):
    body = {f"unknown{number}": 1 for number in range(20_000)}
    response = client.post("/users/tokens", json=body)
    problems = assert_error(response, 400, "validation_error")["details"]
    assert len(problems) == 51 and len(response.data) < 10_000
    assert problems[-1] == {"field": "body", "problem": "and 19952 more"}


def test_a_repeated_query_parameter_is_named_short(client):
    name = "a" * 5000
    response = client.get(f"/books/?{name}=1&{name}=2")
    problems = assert_error(response, 400, "bad_request")["details"]
    assert {"field": "a" * 40 + "...", "problem": "is given more than once"} in problems
    assert len(response.data) < 2_000
