"""What every feature's tests share, and the bench and deploy tests with them (kept
in the package so test modules in each feature can import them)."""

import base64
import itertools
import json
import math
import threading
from dataclasses import dataclass
import socket
import time
from datetime import timedelta
import uuid

import requests

from argon2 import PasswordHasher
from flask.testing import FlaskClient
from sqlalchemy import event
from werkzeug.exceptions import HTTPException

from myapp import create_app, init_migrations, tokens
from myapp.db import sql
from myapp.errors import ERROR_SCHEMA
from myapp.headers import RESPONSE_HEADERS
from myapp.openapi import WHOLE_API
from myapp.operations import path_template
from myapp.schema import problems

# The password of every account the tests make.
PASSWORD = "correct horse battery"


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


_serial = itertools.count(1)


def next_serial() -> int:
    """A number no other call in this test run got (for unique ISBNs, emails)."""
    return next(_serial)


def book_body(**overrides) -> dict:
    """A valid new book, with an ISBN no other book of the run has."""
    from myapp.books.models import isbn13

    return {
        "title": "Dune",
        "author": "Frank Herbert",
        "isbn": isbn13(next_serial()),
        "published_year": 1965,
        "copies_total": 3,
        **overrides,
    }


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now, for a server to start."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ContractClient(FlaskClient):
    """The tests' client: every answer to a documented operation is held to the
    app's OpenAPI document (see `check_against_document`), so any test that makes
    the server do something its document does not say fails."""

    def open(self, *args, **kwargs):
        response = super().open(*args, **kwargs)
        check_against_document(self.application, response.request, response)
        return response


def check_against_document(app, request, response) -> None:
    """The status is one the operation documents; every header of RESPONSE_HEADERS
    it carries is documented on that status, and every documented required one is
    there; the body is what the document says (its schema, or none)."""
    document = app.extensions["myapp.openapi"].documents[WHOLE_API]
    try:
        rule, _ = app.url_map.bind("localhost").match(
            request.path, request.method, return_rule=True
        )
    except HTTPException:  # no route: an unknown URL, a 405, a redirect
        return
    operation = document["paths"].get(path_template(rule.rule), {})
    operation = operation.get(request.method.lower())
    if operation is None:  # not an API operation (the docs, ops) or HEAD/OPTIONS
        return
    where = f"{request.method} {rule.rule} answered {response.status_code}"
    documented = operation["responses"].get(str(response.status_code))
    assert (
        documented
    ), f"{where}: not in its document ({sorted(operation['responses'])})"
    components = document["components"]["headers"]
    for name in RESPONSE_HEADERS:
        if name in response.headers:
            assert name in documented["headers"], f"{where} with {name}: undocumented"
    for name in documented["headers"]:
        if components[name].get("required"):
            assert name in response.headers, f"{where} without {name}"
    content = documented.get("content")
    if content is None:
        assert not response.data, f"{where} with a body; its document has none"
        return
    assert response.mimetype == "application/json", where
    schema = content["application/json"]["schema"]
    found = response_problems(document, schema["$ref"], response.get_json())
    assert not found, f"{where}: the body breaks {schema['$ref']}: {found}"


def response_problems(document: dict, ref: str, body) -> list[dict]:
    """How `body` breaks the document's schema at `ref` (the document's components
    are the root its $refs resolve against)."""
    return problems(component_schema(id(document), ref, document["components"]), body)


_component_schemas: dict = {}


def component_schema(document_id: int, ref: str, components: dict) -> dict:
    key = (document_id, ref)
    if key not in _component_schemas:
        _component_schemas[key] = {"$ref": ref, "components": components}
    return _component_schemas[key]


def post_as_a_client(url: str, **kwargs) -> requests.Response:
    """A write retried on a 503, as clients do: after a test restarted the
    database, a write that meets a connection the restart closed is a 503."""
    for _ in range(3):
        response = requests.post(url, **kwargs)
        if response.status_code != 503:
            break
        time.sleep(0.1)
    return response


def eventually(check, seconds: float = 15) -> None:
    """Recovery is not instant (reconnects, back-off): retry `check` a while."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            check()
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def assert_unavailable(response, names: str | None = None) -> dict:
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["code"] == "service_unavailable"
    assert response.headers["Retry-After"]
    assert "Traceback" not in response.text and "psycopg" not in response.text
    if names:
        # unreachable, or stalled: a frozen server may be either at the instant
        down = [d["field"] for d in body["details"] if d["field"] != "rate_limits"]
        assert down == [names]
    return body


def staff_token(app, base: str) -> str:
    """A staff account made in `app`'s database, signed in through a live server."""
    from myapp.transactions import commit
    from myapp.users.models import UserModel

    email = f"staff-{uuid.uuid4().hex[:8]}@example.com"
    with app.app_context():
        UserModel.create({"email": email, "password": PASSWORD, "name": "S"}, "staff")
        commit()
    signed_in = post_as_a_client(
        f"{base}/users/tokens", json={"email": email, "password": PASSWORD}
    )
    return signed_in.json()["access_token"]


# Config tests: a complete production environment, and a Redis no test runs.
STRONG = "a-production-secret-that-is-long-enough-0123"
PRODUCTION_ENV = {
    "SECRET_KEY": STRONG,
    "JWT_SECRET_KEY": STRONG + "-jwt",
    "DATABASE_URL": "postgresql://myapp@127.0.0.1:5432/myapp",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "PUBLIC_BASE_URL": "https://api.example.test",
}
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


@dataclass
class Account:
    id: int
    email: str
    password: str
    role: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.access_token}"}


def sign_in(client, email: str, password: str) -> dict:
    response = client.post("/users/tokens", json={"email": email, "password": password})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def claims_of(token: str) -> dict:
    """A token's claims, read without verifying it (as a client can)."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def migratable_app(database_url: str, redis_url: str):
    """A testing app on these servers, set up to migrate: `flask_migrate.upgrade()`
    in its context builds the schema as production does."""
    app = create_app(
        "testing", {"SQLALCHEMY_DATABASE_URI": database_url, "REDIS_URL": redis_url}
    )
    init_migrations(app)
    return app


def reissued(app, token: str, lifetime: timedelta) -> str:
    """A token of the same kind, user and session as `token`, valid for `lifetime`
    (a negative one: expired already)."""
    claims = claims_of(token)
    kept = {name: claims[name] for name in ("sid", "role", "jti") if name in claims}
    with app.app_context():
        return tokens.issue(claims["sub"], claims["type"], kept, lifetime)


def timed(call, *args) -> float:
    started = time.monotonic()
    call(*args)
    return time.monotonic() - started


def slow_password_checks(make_app):
    """An app with WEB_THREADS=2 (one database slot) and an Argon2 cost tuned to
    take over a second per hash or check, from the fastest of three passes (one
    slowed by the scheduler would make it too short)."""
    hasher = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    one_pass = min(timed(hasher.hash, "calibrate") for _ in range(3))
    return make_app(
        WEB_THREADS=2,
        ARGON2_TIME_COST=math.ceil(1.2 / one_pass),
        ARGON2_MEMORY_COST=8192,
        ARGON2_PARALLELISM=1,
    )


def during_the_password_check(app, send, meanwhile):
    """`send()` a request that checks a password in a thread; once it has read the
    account (its `FROM users` statement ran), run `meanwhile()` while the check
    still runs. Returns the request's response."""
    account_read = threading.Event()

    def on_statement(_conn, _cursor, statement, *_args):
        if "FROM users" in statement:
            account_read.set()

    with app.app_context():
        engine = sql.engine
    event.listen(engine, "after_cursor_execute", on_statement)
    answers = []
    checking = threading.Thread(target=lambda: answers.append(send()))
    try:
        checking.start()
        assert account_read.wait(timeout=10)
        meanwhile()
        still_checking = checking.is_alive()
        checking.join(timeout=30)
    finally:
        event.remove(engine, "after_cursor_execute", on_statement)
    assert still_checking, "the request ended before `meanwhile` was done: not shown"
    return answers[0]
