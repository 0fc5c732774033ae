"""What the service tells its operators: JSON log lines, Prometheus metrics.

Logging is configured here, once: every line of the `myapp` loggers is one JSON
object on stderr, carrying the request id when there is a request. Metrics are
prometheus-client objects; under gunicorn with PROMETHEUS_MULTIPROC_DIR set, every
worker writes its own files and /metrics adds them up.
"""

import logging
import os
import sys
import threading
import time
from functools import cache
from http import HTTPStatus

from flask import Flask, g, has_request_context
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess
from pythonjsonlogger.json import JsonFormatter

from myapp.request_id import request_id

LOGGER = "myapp"
ACCESS_LOGGER = "myapp.access"
LABELS = ["method", "endpoint", "status"]
REQUESTS = Counter("myapp_http_requests_total", "HTTP requests answered", LABELS)
LATENCY = Histogram(
    "myapp_http_request_duration_seconds",
    "Time to answer an HTTP request",
    LABELS,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

RATE_LIMITS_IN_MEMORY = Counter(
    "myapp_rate_limit_storage_failures_total",
    "Times the rate limits fell back to counting in a process's memory because "
    "Redis failed",
)


FOLLOW_UP_FAILURES = Counter(
    "myapp_follow_up_failures_total",
    "Steps that follow a request's commit (or its failed commit) and failed: the "
    "request's answer stood (README: Operating it)",
    ["step"],
)


# A step failing the same way again within this many seconds is counted, and
# logged with the next line after them: an outage is a line a minute, not a flood.
FOLLOW_UP_LOG_SECONDS = 60.0
_follow_up_quiet: dict[tuple[str, str], list] = {}  # (step, error): [until, unsaid]
_follow_up_lock = threading.Lock()


def follow_up_failed(step: str, error: Exception) -> None:
    """Counted every time; logged the first time, then once a minute at most with
    how many more there were. The answer the client got stands."""
    FOLLOW_UP_FAILURES.labels(step).inc()
    now, kind = time.monotonic(), type(error).__name__
    with _follow_up_lock:
        quiet = _follow_up_quiet.setdefault((step, kind), [0.0, 0])
        if now < quiet[0]:
            quiet[1] += 1
            return
        more = f"; {quiet[1]} more like it since the last line" if quiet[1] else ""
        quiet[:] = [now + FOLLOW_UP_LOG_SECONDS, 0]
    logging.getLogger(LOGGER).error(
        "Not done after the request: %s (%s: %s)%s", step, kind, error, more
    )


class CurrentStderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (a gunicorn worker's, a test's
    capture), not the one there was when logging was configured."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context() and not hasattr(record, "request_id"):
            record.request_id = request_id()
        return True


def configure_logging(app: Flask) -> None:
    logger = logging.getLogger(LOGGER)
    logger.setLevel(app.config["LOG_LEVEL"])
    if not any(isinstance(h, CurrentStderrHandler) for h in logger.handlers):
        handler = CurrentStderrHandler()
        handler.setFormatter(
            JsonFormatter(
                "{levelname}{name}{message}",
                style="{",
                timestamp="time",  # ISO 8601, UTC
                rename_fields={"levelname": "level"},
            )
        )
        handler.addFilter(RequestIdFilter())
        logger.addHandler(handler)
    # One line per event: not again through the root logger's handlers.
    logger.propagate = False


# Label values come from closed sets, whatever a client sends: each new value
# would be a new series with a whole histogram, in every worker, for good.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
KNOWN_STATUSES = frozenset(status.value for status in HTTPStatus)


def metric_labels(request, response) -> tuple[str, str, str]:
    """method, endpoint (a route template, or "unmatched"), status (or "other")."""
    method = request.method if request.method in KNOWN_METHODS else "other"
    endpoint = request.url_rule.rule if request.url_rule else "unmatched"
    status = response.status_code
    return method, endpoint, str(status) if status in KNOWN_STATUSES else "other"


@cache  # the label sets are closed (above), so this is bounded
def series_of(labels: tuple[str, str, str]):
    """The request counter's and the latency histogram's series of these labels,
    looked up once rather than on every request."""
    return REQUESTS.labels(*labels), LATENCY.labels(*labels)


def log_request(request, response, duration: float) -> None:
    """The access log line, and the request's metrics."""
    labels = metric_labels(request, response)
    count, latency = series_of(labels)
    count.inc()
    latency.observe(duration)
    endpoint = labels[1]
    logging.getLogger(ACCESS_LOGGER).info(
        "request",
        extra={
            "method": request.method,
            "route": endpoint,
            "path": request.path,
            "status": response.status_code,
            "duration_ms": round(duration * 1000, 2),
            "user_id": g.get("user_id"),
            "remote_addr": request.remote_addr,
        },
    )


def metrics_text() -> tuple[bytes, str]:
    """The Prometheus exposition: every worker's metrics when multiprocess."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
