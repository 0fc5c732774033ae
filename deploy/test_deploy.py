"""deploy/deploy.sh for real, with the local target: two deploys served by uWSGI
(myapp.ini) behind a real nginx (deploy/nginx/myapp.conf), then a broken release
that must roll back, leaving the previous one serving. Also checks the shipped
nginx site with `nginx -t` and the systemd unit with `systemd-analyze verify`.

Needs nginx, rsync and curl (Debian packages; .ci/run installs them). `make
deploy-test` runs it."""

import contextlib
import json
import os
import secrets
import shutil
import socket
import signal
import subprocess
import sys
import time

import pytest
import requests

from deploy.load import Load
from deploy.nginx_site import nginx_main_config, site_config
from deploy.sources import broken_copy
from myapp.testing import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NEEDED = ("nginx", "rsync", "curl")
pytestmark = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in NEEDED),
    reason=f"needs {', '.join(NEEDED)} (apt-get install nginx rsync curl)",
)


def test_the_shipped_nginx_site_is_valid(tmp_path):
    config = tmp_path / "nginx.conf"
    (tmp_path / "upstream.conf").write_text("server unix:/run/myapp/a.sock;\n")
    config.write_text(
        nginx_main_config(str(tmp_path), site_config(str(tmp_path / "upstream.conf")))
    )
    result = subprocess.run(
        ["nginx", "-t", "-c", str(config), "-p", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="no systemd-analyze")
def test_the_shipped_systemd_unit_is_valid():
    result = subprocess.run(
        ["systemd-analyze", "verify", os.path.join(ROOT, "deploy", "myapp@.service")],
        capture_output=True,
        text=True,
    )
    # Paths that exist only on a deployed host are fine; anything else is not.
    problems = [
        line
        for line in result.stderr.splitlines()
        if line.strip()
        and "/srv/myapp" not in line
        and "/etc/myapp" not in line
        and "myapp.service: Failed to" not in line
    ]
    assert not problems, result.stderr


class Deployment:
    """A deploy target on this machine: its nginx, and its two uWSGI slots run by
    deploy/slot-supervisor.sh (standing in for systemd's myapp@a and myapp@b)."""

    def __init__(self, directory: str, redis_url: str):
        self.dir = directory
        self.path = os.path.join(directory, "srv")
        self.sockets = os.path.join(directory, "run")
        os.makedirs(self.path)
        os.makedirs(self.sockets)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env_file = os.path.join(directory, "env")
        with open(self.env_file, "w") as handle:
            handle.write(
                "MYAPP_ENV=production\n"
                f"SECRET_KEY={secrets.token_urlsafe(48)}\n"
                f"JWT_SECRET_KEY={secrets.token_urlsafe(48)}\n"
                f"DATABASE_URL=sqlite:///{directory}/production.db\n"
                f"REDIS_URL={redis_url}\n"
                "TRUSTED_PROXIES=1\n"
                "TRUSTED_HOSTS=127.0.0.1\n"
                "WEB_CONCURRENCY=2\n"
                "RATELIMIT_DEFAULT=100000/hour\n"
                "RATELIMIT_REGISTER=100000/hour\n"
            )
        upstream = os.path.join(self.path, "upstream.conf")
        with open(upstream, "w") as handle:
            handle.write(f"server unix:{self.sockets}/a.sock;\n")
        self.config = os.path.join(directory, "nginx.conf")
        with open(self.config, "w") as handle:
            handle.write(
                nginx_main_config(
                    directory, site_config(upstream, self.port), self.port
                )
            )
        self.nginx = subprocess.Popen(
            ["nginx", "-c", self.config, "-p", directory, "-g", "daemon off;"],
            start_new_session=True,
        )

    def slot_command(self, action: str, slot: str = "$slot") -> str:
        return (
            f"{ROOT}/deploy/slot-supervisor.sh {action} {slot} {self.path}"
            f" {self.sockets} {self.env_file}"
        )

    def deploy(self, source: str = ROOT, **env) -> subprocess.CompletedProcess:
        environment = {
            **os.environ,
            "DEPLOY_HOSTS": "local",
            "DEPLOY_PATH": self.path,
            "ENV_FILE": self.env_file,
            "PYTHON": getattr(sys, "_base_executable", sys.executable),
            "SOCKET_DIR": self.sockets,
            "SLOT_START": self.slot_command("start"),
            "SLOT_STOP": self.slot_command("stop"),
            "NGINX_RELOAD": f"nginx -c {self.config} -p {self.dir} -s reload",
            "SMOKE_URL": f"{self.base}/readiness",
            "SMOKE_SECONDS": "15",
            "DRAIN_SECONDS": "1",
            **env,
        }
        for name in ("DATABASE_URL", "REDIS_URL", "MYAPP_ENV"):
            environment.pop(name, None)
        return subprocess.run(
            ["bash", os.path.join(source, "deploy", "deploy.sh")],
            env=environment,
            capture_output=True,
            text=True,
            timeout=600,
        )

    def current(self) -> str:
        return os.readlink(os.path.join(self.path, "current"))

    def releases(self) -> list[str]:
        return sorted(os.listdir(os.path.join(self.path, "releases")))

    def live_slot(self) -> str:
        with open(os.path.join(self.path, "upstream.conf")) as handle:
            return handle.read().strip()[-7]  # "server unix:.../a.sock;"

    def stop(self) -> None:
        self.stop_app()
        os.killpg(self.nginx.pid, signal.SIGTERM)
        self.nginx.wait(timeout=10)

    def stop_app(self) -> None:
        for slot in ("a", "b"):
            subprocess.run(["bash", "-c", self.slot_command("stop", slot)], check=True)


@pytest.fixture
def deployment(tmp_path, redis_url):
    target = Deployment(str(tmp_path), redis_url)
    yield target
    target.stop()


@contextlib.contextmanager
def slow_clients(port: int, count: int):
    """`count` connections that never finish their request: half of them stop in
    the headers, half in a body they announced."""
    sockets = []
    try:
        for number in range(count):
            connection = socket.create_connection(("127.0.0.1", port), timeout=5)
            if number % 2:
                connection.sendall(b"GET /books/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: ")
            else:
                connection.sendall(
                    b"POST /users/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
                )
            sockets.append(connection)
        yield
    finally:
        for connection in sockets:
            connection.close()


def test_deploy_twice_roll_back_a_broken_release_keep_the_last(deployment, tmp_path):
    first = deployment.deploy()
    assert first.returncode == 0, first.stderr
    assert deployment.current() == f"releases/{deployment.releases()[0]}"

    # A real request through nginx and uWSGI: the request id and headers survive.
    response = requests.get(
        f"{deployment.base}/books/", headers={"X-Request-ID": "via-nginx"}
    )
    assert (
        response.status_code == 200 and response.headers["X-Request-ID"] == "via-nginx"
    )
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    # A Host nobody serves gets no answer from nginx at all.
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{deployment.base}/books/", headers={"Host": "evil.example"})
    # nginx's own refusals answer in the one error shape.
    for status, code, request in (
        (414, "uri_too_long", {"url": f"{deployment.base}/books/?q={'x' * 20000}"}),
        (431, "request_header_fields_too_large", {"headers": {"X-Big": "x" * 20000}}),
    ):
        refused = requests.get(
            request.get("url", f"{deployment.base}/books/"),
            headers=request.get("headers"),
        )
        assert refused.status_code == status and refused.json()["code"] == code
        assert refused.json()["request_id"] == refused.headers["X-Request-ID"]
    # What nginx takes, uWSGI takes too (so it never refuses in its own words):
    # the most header bytes nginx admits (4 buffers of 8k), and many headers.
    largest = {f"X-Fill-{index}": "x" * 7000 for index in range(3)}
    many = {f"X-Many-{index}": "x" for index in range(500)}
    for headers in (largest, many):
        assert requests.get(f"{deployment.base}/books/", headers=headers).ok
    with socket.create_connection(("127.0.0.1", deployment.port)) as raw:
        raw.sendall(b"GET /books/ HTTP/1.1\r\nHost: 127.0.0.1\r\nNo Colon\r\n\r\n")
        head, _, body = raw.recv(4096).partition(b"\r\n\r\n")
    assert (
        head.startswith(b"HTTP/1.1 400") and json.loads(body)["code"] == "bad_request"
    )
    # Slow clients (half-sent headers, a body trickling in) are nginx's to hold:
    # with more of them than uWSGI has workers, the service still answers at once.
    with slow_clients(deployment.port, count=8):
        for _ in range(5):
            assert requests.get(f"{deployment.base}/healthz", timeout=1).ok
            assert requests.get(f"{deployment.base}/books/", timeout=2).ok
    body = {
        "email": "deployed@example.com",
        "password": "a deployed password",
        "name": "D",
    }
    assert requests.post(f"{deployment.base}/users/", json=body).status_code == 201

    # A deploy under load: the new release starts in the other slot and takes
    # traffic before the old one stops, so no client sees a failure.
    token = requests.post(
        f"{deployment.base}/users/tokens",
        json={"email": body["email"], "password": body["password"]},
    ).json()["access_token"]
    before = deployment.live_slot()
    # Its build runs at the lowest CPU priority, beside the live slot: the Python
    # it builds with says at what priority it ran.
    niceness = tmp_path / "build-niceness"
    python = tmp_path / "python-saying-its-niceness"
    python.write_text(
        f"#!/bin/sh\nawk '{{print $19}}' /proc/$$/stat >> {niceness}\n"
        f'exec {getattr(sys, "_base_executable", sys.executable)} "$@"\n'
    )
    python.chmod(0o755)
    with Load(deployment.base, token) as load:
        time.sleep(1)
        second = deployment.deploy(PYTHON=str(python))
        time.sleep(1)
    assert second.returncode == 0, second.stderr
    assert niceness.read_text().split() == ["19"]
    assert deployment.live_slot() == {"a": "b", "b": "a"}[before]
    print("single-host deploy under load:", load.summary())
    assert len(load.outcomes) > 100 and not load.failures(), load.summary()
    releases = deployment.releases()
    assert len(releases) == 2 and deployment.current() == f"releases/{releases[1]}"

    broken = deployment.deploy(source=broken_copy(str(tmp_path)))
    assert broken.returncode == 1
    assert "rolling back" in broken.stderr and "rolled back" in broken.stderr
    assert deployment.releases() == releases  # the broken one is gone
    assert deployment.current() == f"releases/{releases[1]}"
    assert requests.get(f"{deployment.base}/readiness").status_code == 200
    signed_in = requests.post(
        f"{deployment.base}/users/tokens",
        json={"email": body["email"], "password": body["password"]},
    )
    assert signed_in.status_code == 201  # the data survived every switch

    third = deployment.deploy(KEEP_RELEASES="2")
    assert third.returncode == 0, third.stderr
    kept = deployment.releases()
    assert (
        kept == [releases[1], kept[1]] and deployment.current() == f"releases/{kept[1]}"
    )

    # With the app stopped, nginx's 502 is a 503 in the one error shape.
    deployment.stop_app()
    down = requests.get(f"{deployment.base}/books/")
    assert down.status_code == 503 and down.json()["code"] == "service_unavailable"
    assert down.headers["Retry-After"] == "5"
