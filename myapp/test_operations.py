"""Running it: JSON logs, Prometheus metrics across workers, security headers,
caching of signed-in answers, and rate limits that see the real client behind a
proxy."""

import json
import re

import pytest
import requests

from myapp.testing import assert_error


def log_lines(captured: str) -> list[dict]:
    return [json.loads(line) for line in captured.splitlines() if line.startswith("{")]


# --- Logs


def test_one_json_line_per_request_with_its_request_id(client, member, capfd):
    client.get("/users/me", headers={**member.headers, "X-Request-ID": "trace-me-1"})
    client.get("/nope", headers={"X-Request-ID": "trace-me-2"})
    lines = log_lines(capfd.readouterr().err)
    first = [line for line in lines if line.get("request_id") == "trace-me-1"]
    second = [line for line in lines if line.get("request_id") == "trace-me-2"]
    assert len(first) == 1 and len(second) == 1
    line = first[0]
    assert (line["level"], line["name"], line["method"]) == (
        "INFO",
        "myapp.access",
        "GET",
    )
    assert (line["route"], line["status"], line["user_id"]) == (
        "/users/me",
        200,
        member.id,
    )
    assert line["duration_ms"] >= 0 and line["remote_addr"] == "127.0.0.1"
    assert line["time"].endswith("+00:00")
    assert (second[0]["route"], second[0]["status"], second[0]["user_id"]) == (
        "unmatched",
        404,
        None,
    )


def test_errors_are_logged_with_their_traceback_server_side_only(make_app, capfd):
    app = make_app()

    def broken():
        raise RuntimeError("the secret internals")

    app.add_url_rule("/broken", "broken", broken)
    response = app.test_client().get("/broken", headers={"X-Request-ID": "boom-1"})
    assert "secret" not in response.text
    errors = [
        line
        for line in log_lines(capfd.readouterr().err)
        if line["level"] == "ERROR" and line.get("request_id") == "boom-1"
    ]
    assert len(errors) == 1
    assert "RuntimeError: the secret internals" in errors[0]["exc_info"]


# --- Metrics


def metric(text: str, name: str, labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(f"{name}{labels} "):
            return float(line.split()[-1])
    return 0.0


def test_metrics_count_requests_across_workers(live):
    """gunicorn runs 4 workers: /metrics, answered by any one of them, still
    counts every worker's requests."""
    healthz = '{endpoint="/healthz",method="GET",status="200"}'
    unmatched = '{endpoint="unmatched",method="GET",status="404"}'
    names = ("myapp_http_requests_total", "myapp_http_request_duration_seconds_count")
    before = requests.get(f"{live}/metrics").text
    for _ in range(40):
        assert requests.get(f"{live}/healthz").status_code == 200
    requests.get(f"{live}/nope")
    after = requests.get(f"{live}/metrics").text
    for name in names:
        assert metric(after, name, healthz) - metric(before, name, healthz) == 40
    requests_total = "myapp_http_requests_total"
    grown = metric(after, requests_total, unmatched) - metric(
        before, requests_total, unmatched
    )
    assert grown == 1
    assert 'le="0.005"' in after


def test_metrics_are_prometheus_text(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    assert "# TYPE myapp_http_requests_total counter" in response.text


# --- Security headers and caching


@pytest.mark.parametrize(
    "path", ["/", "/healthz", "/books/", "/nope", "/users/openapi.json"]
)
def test_every_response_carries_security_headers(client, path):
    headers = client.get(path).headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert (
        headers["Content-Security-Policy"]
        == "default-src 'none'; frame-ancestors 'none'"
    )
    assert "Strict-Transport-Security" not in headers


@pytest.mark.parametrize("path", ["/books/docs", "/"])
def test_html_pages_may_load_only_their_own_assets(client, path):
    headers = client.get(path, headers={"Accept": "text/html"}).headers
    policy = headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "script-src 'self';" in policy  # no inline script, no eval
    assert "unsafe-eval" not in policy
    assert "http" not in policy  # nothing from elsewhere


def test_https_responses_carry_hsts(client):
    headers = client.get("/healthz", base_url="https://api.example.test").headers
    assert headers["Strict-Transport-Security"].startswith("max-age=")


def test_signed_in_answers_are_never_cached(client, member):
    assert (
        client.get("/users/me", headers=member.headers).headers["Cache-Control"]
        == "no-store"
    )
    assert "Cache-Control" not in client.get("/books/").headers


@pytest.mark.parametrize("path", ["/books/0", "/books/2147483648", "/sites/00"])
@pytest.mark.parametrize("method", ["PROPFIND", "BREW", "GET"])
def test_an_id_the_route_refuses_is_answered_in_the_one_shape(client, path, method):
    """An id outside 1..2**31-1 matches no route, with any method, even one made
    up: a 404 (or 405 for a method the URL's shape never takes) in the one error
    shape, never a 500."""
    response = client.open(path, method=method)
    assert response.status_code in (404, 405)
    assert_error(response, response.status_code, response.get_json()["code"])


# --- Metrics: closed label sets, and only for the configured networks


def test_made_up_methods_and_paths_add_no_metric_series(client):
    for number in range(60):
        client.open(f"/no/such/path/{number}", method=f"BREW{number}")
        client.open(f"/books/{number}", method="PROPFIND")
    text = client.get("/metrics").get_data(as_text=True)
    methods = set(re.findall(r'myapp_http_requests_total\{[^}]*method="([^"]+)"', text))
    endpoints = set(
        re.findall(r'myapp_http_requests_total\{[^}]*endpoint="([^"]+)"', text)
    )
    assert methods <= {
        "GET",
        "HEAD",
        "POST",
        "PUT",
        "PATCH",
        "DELETE",
        "OPTIONS",
        "other",
    }
    assert "other" in methods
    assert "/no/such/path/0" not in endpoints and "unmatched" in endpoints


@pytest.mark.parametrize(
    "address, networks, status",
    [
        ("203.0.113.5", None, 404),
        ("127.0.0.1", None, 200),
        ("203.0.113.5", ["203.0.113.0/24"], 200),
        ("2001:db8::1", ["203.0.113.0/24"], 404),
    ],
)
def test_metrics_answer_only_the_configured_networks(
    make_app, address, networks, status
):
    config = {} if networks is None else {"METRICS_NETWORKS": networks}
    client = make_app(**config).test_client()
    response = client.get("/metrics", environ_base={"REMOTE_ADDR": address})
    assert response.status_code == status
    if status == 404:
        assert_error(response, 404, "not_found")


# --- The Host header is the client's: only trusted names, links from the public URL


def test_a_host_not_trusted_is_a_bad_request(make_app):
    client = make_app(TRUSTED_HOSTS=["api.example.test"]).test_client()
    refused = client.get("/books/", headers={"Host": "evil.example"})
    assert_error(refused, 400, "bad_request")
    trusted = client.get("/books/", headers={"Host": "api.example.test"})
    assert trusted.status_code == 200
    assert "<http://api.example.test/books/?page=1>" in trusted.headers["Link"]


def test_links_are_made_on_the_public_base_url(make_app):
    client = make_app(PUBLIC_BASE_URL="https://api.example.test/").test_client()
    response = client.get("/books/?per_page=5", base_url="http://api.example.test")
    links = response.headers["Link"].split(", ")
    assert all(link.startswith("<https://api.example.test/books/?") for link in links)
    assert_error(client.get("/books/"), 400, "bad_request")  # Host: localhost
