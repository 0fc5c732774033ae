"""Rate limits (myapp/rate_limits.py), every test of them: one budget per identity,
the sign-in, re-authentication and registration limits, their headers, what counts
nothing, and what an attacker cannot switch off: a body that is not JSON spends
the budget, is refused before any limit that reads the body counts, and cannot
make the limits leave Redis; a key function never raises; a real Redis failure
shows in the log, /metrics and /readiness.
test_limits_live.py tries them against a live gunicorn, where processes matter."""

import json
import time

import pytest
from prometheus_client import REGISTRY

from myapp.rate_limits import address_key, client_network, key_or_address
from myapp.testing import assert_error
from myapp.users.testing import NEW_USER


def login_attempt(client, forwarded_for=None):
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return client.post(
        "/users/tokens",
        json={"email": "someone@example.com", "password": "wrong password"},
        headers=headers,
    )


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
def test_a_body_that_is_not_json_spends_the_budget_only_and_keeps_limits_in_redis(
    make_app, member, redis_client, body
):
    """Each hostile body is a 400 that spends its sender's budget, as any request
    does (a flood of them meets the 429 like any other), counts toward no limit
    that reads the body, and never makes the limits leave Redis."""
    client = make_app(
        RATELIMIT_LOGIN="3 per minute", RATELIMIT_DEFAULT="14 per minute"
    ).test_client()
    failures = storage_failures()
    for spent in range(1, 11):
        response = client.post(
            "/users/tokens", data=body, content_type="application/json"
        )
        assert_error(response, 400, "bad_request")
        assert response.headers["X-RateLimit-Limit"] == "14"
        assert response.headers["X-RateLimit-Remaining"] == str(14 - spent)
    wrong = {"email": member.email, "password": "a wrong password"}
    statuses = [client.post("/users/tokens", json=wrong).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]  # the sign-in limit's 3: none spent
    response = client.post("/users/tokens", data=body, content_type="application/json")
    assert_error(response, 429, "rate_limited")  # the budget's 14: all spent
    assert redis_client.keys("*login*"), "the sign-in limit is not counted in Redis"
    assert storage_failures() == failures


def test_a_key_function_never_raises(app):
    def broken() -> str:
        raise RuntimeError("a key that cannot be made")

    with app.test_request_context(environ_base={"REMOTE_ADDR": "192.0.2.9"}):
        assert key_or_address(broken)() == "ip:192.0.2.9"


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


def test_default_rate_limit_applies_per_identity(make_app, member):
    client = make_app(RATELIMIT_DEFAULT="2 per minute").test_client()
    for remaining, path in (("1", "/users/me"), ("0", "/users/me/sessions")):
        response = client.get(path, headers=member.headers)
        assert response.status_code == 200
        assert response.headers["X-RateLimit-Limit"] == "2"
        assert response.headers["X-RateLimit-Remaining"] == remaining
        assert "Retry-After" not in response.headers
    limited = client.get("/users/me", headers=member.headers)
    assert_error(limited, 429, "rate_limited")
    assert 0 < int(limited.headers["Retry-After"]) <= 60


def test_a_rate_limited_request_costs_one_redis_round_trip(make_app, redis_client):
    """The hit and the X-RateLimit-* headers come from one script call, not the
    hit plus a GET and a TTL."""
    client = make_app(RATELIMIT_DEFAULT="5 per minute").test_client()
    client.get("/books/1")  # scripts loaded, connections open

    def calls() -> dict:
        stats = redis_client.info("commandstats")
        return {name[len("cmdstat_") :]: stat["calls"] for name, stat in stats.items()}

    before = calls()
    response = client.get("/books/1")
    after = calls()
    assert response.headers["X-RateLimit-Remaining"] == "3"
    assert int(response.headers["X-RateLimit-Reset"]) > time.time()
    made = {name: count - before.get(name, 0) for name, count in after.items()}
    # incrby and ttl run inside the one script call; info is this test's own
    assert {name: count for name, count in made.items() if count} == {
        "evalsha": 1,
        "incrby": 1,
        "ttl": 1,
        "info": 1,
    }


def test_health_endpoints_are_not_rate_limited(make_app):
    client = make_app(RATELIMIT_DEFAULT="1 per minute").test_client()
    for _ in range(3):
        assert client.get("/healthz").status_code == 200
        assert client.get("/readiness").status_code == 200
        assert client.get("/metrics").status_code == 200


def test_behind_a_trusted_proxy_limits_count_per_real_client(make_app):
    client = make_app(TRUSTED_PROXIES=1, RATELIMIT_LOGIN="2 per minute").test_client()
    for _ in range(2):
        assert login_attempt(client, "203.0.113.5").status_code == 401
    assert_error(login_attempt(client, "203.0.113.5"), 429, "rate_limited")
    assert login_attempt(client, "203.0.113.6").status_code == 401


def test_without_a_trusted_proxy_forwarded_headers_cannot_dodge_limits(make_app):
    client = make_app(TRUSTED_PROXIES=0, RATELIMIT_LOGIN="2 per minute").test_client()
    for address in ("203.0.113.1", "203.0.113.2"):
        assert login_attempt(client, address).status_code == 401
    assert_error(login_attempt(client, "203.0.113.3"), 429, "rate_limited")


def test_limited_responses_carry_rate_limit_headers(client):
    headers = client.get("/books/").headers
    for name in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
        assert int(headers[name]) >= 0


def test_documents_and_docs_pages_spend_no_rate_limit(make_app):
    client = make_app(RATELIMIT_DEFAULT="1 per hour").test_client()
    for _ in range(3):
        for path in ("/books/docs", "/books/openapi.json", "/books/swagger.json"):
            response = client.get(path)
            assert response.status_code == 200, path
            assert "X-RateLimit-Remaining" not in response.headers, path
    assert client.get("/books/").status_code == 200  # the budget is still whole


def test_cors_preflights_spend_no_rate_limit(make_app):
    """Only the request a browser sends after its preflight counts."""
    client = make_app(RATELIMIT_DEFAULT="2 per hour").test_client()
    preflight = {
        "Origin": "https://app.example.test",
        "Access-Control-Request-Method": "GET",
    }
    for _ in range(5):
        answer = client.options("/books/1", headers=preflight)
        assert answer.status_code == 200
        assert answer.headers["Access-Control-Allow-Origin"] == preflight["Origin"]
    assert client.get("/books/").headers["X-RateLimit-Remaining"] == "1"


def test_register_is_rate_limited_per_address(make_app):
    client = make_app(RATELIMIT_REGISTER="2 per hour").test_client()
    for number in range(2):
        email = f"user{number}@example.com"
        assert (
            client.post("/users/", json={**NEW_USER, "email": email}).status_code == 201
        )
    response = client.post("/users/", json={**NEW_USER, "email": "late@example.com"})
    assert_error(response, 429, "rate_limited")
    assert int(response.headers["Retry-After"]) > 0


def test_sign_in_is_limited_per_address_and_email(client, member):
    wrong = {"email": member.email, "password": "wrong password!"}
    for _ in range(4):  # the member fixture's own sign-in was the first
        assert client.post("/users/tokens", json=wrong).status_code == 401
    response = client.post("/users/tokens", json=wrong)
    body = assert_error(response, 429, "rate_limited")
    assert "per 1 minute" in body["message"]
    assert 0 < int(response.headers["Retry-After"]) <= 60
    other = {"email": "other@example.com", "password": "whatever123"}
    assert client.post("/users/tokens", json=other).status_code == 401


def test_sign_in_limit_is_per_address(client, member):
    wrong = {"email": member.email, "password": "wrong password!"}
    for _ in range(5):
        client.post("/users/tokens", json=wrong)
    assert_error(client.post("/users/tokens", json=wrong), 429, "rate_limited")
    elsewhere = client.post(
        "/users/tokens", json=wrong, environ_base={"REMOTE_ADDR": "192.0.2.7"}
    )
    assert_error(elsewhere, 401, "unauthorized")


# Addresses a client of one IPv6 /64 can take at will: each limit counts them as one.
ONE_SLASH_64 = [
    "2001:db8:1:2::1",
    "2001:db8:1:2:ffff:ffff:ffff:ffff",
    "2001:db8:1:2::9",
]
ANOTHER_SLASH_64 = "2001:db8:1:3::1"


def from_address(address: str) -> dict:
    return {"environ_base": {"REMOTE_ADDR": address}}


def test_an_ipv6_client_cannot_escape_a_limit_by_changing_its_address(make_app):
    """Sign-in, registration and the anonymous budget each count an IPv6 client
    per /64: a new address in it for every request is still the same budget; the
    next /64 is another client."""
    client = make_app(
        RATELIMIT_LOGIN="2 per minute",
        RATELIMIT_REGISTER="2 per minute",
        RATELIMIT_DEFAULT="6 per minute",
    ).test_client()
    wrong = {"email": "someone@example.com", "password": "wrong password"}
    signing_in = [
        client.post("/users/tokens", json=wrong, **from_address(address))
        for address in ONE_SLASH_64
    ]
    assert [response.status_code for response in signing_in] == [401, 401, 429]
    elsewhere = client.post(
        "/users/tokens", json=wrong, **from_address(ANOTHER_SLASH_64)
    )
    assert_error(elsewhere, 401, "unauthorized")
    registering = [
        client.post(
            "/users/",
            json={**NEW_USER, "email": f"v6-{n}@example.com"},
            **from_address(address),
        )
        for n, address in enumerate(ONE_SLASH_64)
    ]
    assert [response.status_code for response in registering] == [201, 201, 429]
    # The anonymous budget counts every request first: the 3 sign-ins and the 3
    # registrations from ONE_SLASH_64 spent its 6, as one client's;
    # ANOTHER_SLASH_64 has spent 1 of its own.
    assert_error(
        client.get("/books/", **from_address("2001:db8:1:2::42")), 429, "rate_limited"
    )
    assert client.get("/books/", **from_address(ANOTHER_SLASH_64)).status_code == 200


@pytest.mark.parametrize(
    "address, network",
    [
        ("192.0.2.7", "192.0.2.7"),
        ("::ffff:192.0.2.7", "192.0.2.7"),  # IPv4, written as IPv6
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2::1", "2001:db8:1:2::/64"),  # one spelling of each
        ("::1", "::/64"),
    ],
)
def test_limits_count_an_ipv4_address_or_an_ipv6_slash_64(app, address, network):
    with app.test_request_context(**from_address(address)):
        assert client_network() == network
        assert address_key() == f"ip:{network}"


@pytest.mark.parametrize(
    "forwarded",
    [
        ONE_SLASH_64,
        ["not an address", "203.0.113.5:443", "[2001:db8::1]"],  # one key for all
    ],
    ids=["ipv6-slash-64", "unparsable"],
)
def test_behind_a_trusted_proxy_forwarded_addresses_count_per_network(
    make_app, forwarded
):
    """What the proxy forwards is grouped as a direct client's address is: the
    addresses of one /64 are one client, and addresses that do not parse share one
    budget rather than getting one per spelling."""
    client = make_app(TRUSTED_PROXIES=1, RATELIMIT_LOGIN="2 per minute").test_client()
    statuses = [login_attempt(client, address).status_code for address in forwarded]
    assert statuses == [401, 401, 429]
    assert login_attempt(client, ANOTHER_SLASH_64).status_code == 401


def test_guessing_the_current_password_is_throttled(client, member):
    guess = {"name": "X", "current_password": "a wrong guess"}
    for _ in range(3):  # renames without a guess do not count
        assert (
            client.patch(
                "/users/me", json={"name": "Y"}, headers=member.headers
            ).status_code
            == 200
        )
    for _ in range(5):
        response = client.patch("/users/me", json=guess, headers=member.headers)
        assert_error(response, 401, "unauthorized")
    response = client.patch("/users/me", json=guess, headers=member.headers)
    assert_error(response, 429, "rate_limited")


def test_the_default_budget_is_shared_across_endpoints_and_instances(make_app, member):
    first = make_app(RATELIMIT_DEFAULT="2 per minute").test_client()
    second = make_app(RATELIMIT_DEFAULT="2 per minute").test_client()
    assert first.get("/users/me", headers=member.headers).status_code == 200
    assert second.get("/users/me/sessions", headers=member.headers).status_code == 200
    assert_error(first.get("/users/me", headers=member.headers), 429, "rate_limited")


def test_several_limits_in_one_setting_cost_one_script_call(make_app, redis_client):
    """RATELIMIT_DEFAULT="2 per minute;100 per hour": both count, in one call; the
    headers show the tightest, and the spent one refuses."""
    client = make_app(RATELIMIT_DEFAULT="2 per minute;100 per hour").test_client()
    client.get("/books/")  # the script loaded, a connection open
    before = redis_client.info("commandstats")["cmdstat_evalsha"]["calls"]
    second = client.get("/books/")
    assert redis_client.info("commandstats")["cmdstat_evalsha"]["calls"] == before + 1
    assert second.headers["X-RateLimit-Limit"] == "2"
    assert second.headers["X-RateLimit-Remaining"] == "0"
    limited = client.get("/books/")
    body = assert_error(limited, 429, "rate_limited")
    assert "2 per 1 minute" in body["message"]
    assert 0 < int(limited.headers["Retry-After"]) <= 60


def test_a_key_made_of_a_huge_email_is_kept_short_in_redis(client, redis_client):
    """A sign-in's key holds the email sent; a megabyte of it must not become a
    megabyte-long Redis key."""
    email = "a" * 500_000 + "@example.com"
    response = client.post("/users/tokens", json={"email": email, "password": "x"})
    assert_error(response, 400, "validation_error")
    assert response.headers["X-RateLimit-Limit"] == "5"  # the sign-in limit counted
    assert max(len(key) for key in redis_client.keys("*")) < 200


def test_a_revoked_token_cannot_spend_its_users_budget(make_app, member):
    """A leaked, signed-out refresh token counts against its sender's address, not
    against the user it names."""
    client = make_app(RATELIMIT_DEFAULT="4 per minute").test_client()
    credentials = {"email": member.email, "password": member.password}
    other = client.post("/users/tokens", json=credentials).get_json()  # address: 1
    leaked = {"Authorization": f"Bearer {other['refresh_token']}"}
    signed_out = client.delete("/users/tokens/current", headers=leaked)  # user: 1
    assert signed_out.status_code == 204
    spent = [client.get("/books/", headers=leaked).status_code for _ in range(5)]
    assert spent == [200, 200, 200, 429, 429]  # the address's budget
    mine = client.get("/users/me", headers=member.headers)  # user: 2
    assert mine.status_code == 200
    assert mine.headers["X-RateLimit-Remaining"] == "2"
