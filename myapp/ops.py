"""Operations: /healthz, /readiness, /metrics, and what every response carries
(request id, security headers) and leaves behind (an access log line, metrics)."""

import time
import threading
from ipaddress import ip_address, ip_network

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from redis import RedisError
from redis import exceptions as redis_errors
from sqlalchemy import text

from myapp import telemetry
from myapp import rate_limits
from myapp.db import redis_store, sql
from myapp.errors import RETRY_AFTER_UNAVAILABLE, STATUSES, ApiError
from myapp.redis_url import RedisStalled
from myapp.stalls import DatabaseStalled
from myapp.request_id import request_id

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}
# JSON needs nothing. The HTML pages (the index, Swagger UI) load their scripts,
# styles and documents from this origin only, and run no inline script; Swagger UI
# writes style attributes into the markup it renders (a style cannot run code).
API_CSP = "default-src 'none'; frame-ancestors 'none'"
DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'"
)
HSTS = "max-age=31536000; includeSubDomains"

IN_MEMORY = "counted in each process's memory until Redis answers"
UNREACHABLE = "unreachable"
# Each readiness check has this long to answer, whatever its client's timeouts.
CHECK_SECONDS = 0.5
STALLED = f"stalled: no answer within {CHECK_SECONDS:g} s"
REDIS_REFUSALS = {
    RedisStalled: STALLED,  # a timeout moments ago (myapp/breaker.py)
    redis_errors.TimeoutError: STALLED,
    redis_errors.OutOfMemoryError: "full: maxmemory reached, writes refused",
    redis_errors.ReadOnlyError: "read-only: a replica",
    redis_errors.BusyLoadingError: "loading its data",
}
# The key readiness writes to: one for every process, kept a few seconds.
READINESS_KEY = "myapp:readiness"
READINESS_KEY_MS = 10_000

ops = Blueprint("ops", __name__)
rate_limits.exempt(ops.name)


@ops.get("/healthz")
def healthz():
    """The process serves; touches nothing else."""
    return jsonify({"status": "ok"})


@ops.get("/readiness")
def readiness():
    """200 when the database answers and Redis takes writes, else 503 naming what
    is wrong, within about a second whatever is stalled."""
    problems = run_checks({"database": database_problem, "redis": redis_problem})
    details = [
        {"field": name, "problem": problem}
        for name, problem in problems.items()
        if problem
    ]
    if details:
        if problems["redis"]:
            details.append({"field": "rate_limits", "problem": IN_MEMORY})
        down = [name for name, problem in problems.items() if problem]
        raise ApiError(
            503,
            "service_unavailable",
            f"Not ready: {', '.join(down)}",
            details,
            retry_after=RETRY_AFTER_UNAVAILABLE,
        )
    return jsonify({"status": "ok", "checks": {name: "ok" for name in problems}})


@ops.get("/metrics")
def metrics():
    """Prometheus text: request counts and latencies by endpoint and status; only
    for clients in METRICS_NETWORKS (a 404 to others, as for any unknown URL)."""
    if not from_networks(request.remote_addr, current_app.config["METRICS_NETWORKS"]):
        raise ApiError(404, "not_found", STATUSES[404].message)
    body, content_type = telemetry.metrics_text()
    return Response(body, content_type=content_type)


def from_networks(address: str | None, networks: list[str]) -> bool:
    try:
        client = ip_address(address or "")
    except ValueError:
        return False
    return any(client in ip_network(network, strict=False) for network in networks)


def run_checks(checks: dict) -> dict[str, str | None]:
    """Every check at once, each in its own thread and app context, each given
    CHECK_SECONDS to answer: one that has not answered by then is reported stalled
    (it ends in the background, within its client's own timeouts)."""
    app = current_app._get_current_object()
    answers: dict[str, str | None] = {}

    def answer(name: str, check) -> None:
        answers[name] = check_in_context(app, check)

    threads = {
        name: threading.Thread(target=answer, args=(name, check), daemon=True)
        for name, check in checks.items()
    }
    for thread in threads.values():
        thread.start()
    deadline = time.monotonic() + CHECK_SECONDS
    for name, thread in threads.items():
        thread.join(max(0.0, deadline - time.monotonic()))
        if name not in answers:
            current_app.logger.warning("Readiness: %s %s", name, STALLED)
    return {name: answers.get(name, STALLED) for name in checks}


def check_in_context(app, check) -> str | None:
    with app.app_context():
        try:
            return check()
        finally:
            sql.session.remove()


def database_problem() -> str | None:
    try:
        sql.session.execute(text("SELECT 1"))
        return None
    except DatabaseStalled:
        return STALLED
    except Exception:
        current_app.logger.warning("Readiness: database unreachable", exc_info=True)
        sql.session.rollback()
        return UNREACHABLE


def redis_problem() -> str | None:
    """Whether Redis takes a write (a full or read-only one answers PING but
    refuses every session, claim and limit), and keeps what the app stores: under
    any eviction policy but noeviction, a full Redis would drop sessions (signing
    their owners out) and rate-limit counts (starting limits afresh)."""
    try:
        redis_store.set(READINESS_KEY, "1", px=READINESS_KEY_MS)
        policy = redis_store.info("memory").get("maxmemory_policy", "noeviction")
    except RedisError as error:
        current_app.logger.warning(
            "Readiness: Redis refused: %s: %s", type(error).__name__, error
        )
        return REDIS_REFUSALS.get(type(error), UNREACHABLE)
    if policy != "noeviction":
        return f"maxmemory-policy is {policy}: it can evict sessions and rate limits"
    return None


def start_request() -> None:
    g.started = time.perf_counter()
    request_id()


def finish_response(response):
    response.headers["X-Request-ID"] = request_id()
    response.headers.update(SECURITY_HEADERS)
    html = response.mimetype == "text/html"
    response.headers.setdefault(
        "Content-Security-Policy", DOCS_CSP if html else API_CSP
    )
    if request.is_secure:
        response.headers["Strict-Transport-Security"] = HSTS
    if "Authorization" in request.headers:
        # Answers to a signed-in user are theirs alone: no cache may keep them.
        response.headers["Cache-Control"] = "no-store"
    started = g.get("started", time.perf_counter())
    telemetry.log_request(request, response, time.perf_counter() - started)
    return response


def init_app(app: Flask) -> None:
    telemetry.configure_logging(app)
    app.before_request(start_request)
    app.after_request(finish_response)
    app.register_blueprint(ops)
