"""gunicorn settings for `gunicorn wsgi:app` (read from the working directory).

Every value can be overridden on the command line or with GUNICORN_CMD_ARGS.
"""

import os

from prometheus_client import multiprocess


def whole_number(name: str, default: int) -> int:
    """A bad value is left to the app's config check, which names it
    (on_starting, below)."""
    value = os.environ.get(name, "")
    return int(value) if value.isdigit() and int(value) > 0 else default


bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = whole_number("WEB_CONCURRENCY", 2)
# Threads, so that a request waiting on a stalled database (up to its deadline,
# myapp/stalls.py) never keeps /healthz and /readiness waiting: each worker has
# threads to spare. (gevent showed a 300 ms p99 here: DESIGN.md.)
worker_class = "gthread"
threads = whole_number("WEB_THREADS", 4)
# Past every deadline a request can meet (a few seconds): only a bug reaches it.
timeout = 30
graceful_timeout = 20
# Access lines come from the app itself, as JSON (myapp/telemetry.py).
# Behind nginx (the compose file's and any documented front), nginx's header
# limits refuse first and in the API's error shape; gunicorn's own (HTML) refusals
# are set past them: the longest request line it allows, as many headers as fit
# in nginx's 4 buffers of 8k.
limit_request_line = 8190
limit_request_fields = 8300
limit_request_field_size = 8190
accesslog = None
errorlog = "-"


def on_starting(server):
    """The app's config, checked once here in the master (preflight.py)."""
    import preflight

    preflight.check()


def child_exit(server, worker):
    """A finished worker's metrics files are merged, not counted as live."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
