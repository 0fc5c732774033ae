"""Faults under a steady mixed load (deploy/load.py), on gunicorn and on uWSGI as
shipped, with a probe asking /healthz and /readiness all along: what clients and
a load balancer see while PostgreSQL is frozen, and while Redis is frozen, full,
and restarted empty; that every answer comes within its bound, the health
endpoints within a second; that the service recovers by itself; and that every
write is accounted for. Run with -s for the numbers of the README's fault table."""

import collections
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
import redis as redis_client
import requests
import sqlalchemy

from myapp.throwaway import server_log, wsgi_server
from deploy.load import BORROW, READ, SIGNED_IN_READ, WRITE, Load
from myapp.books.loans import LoanModel
from myapp.books.models import BookModel, isbn13
from myapp.db import sql
from myapp.testing import post_as_a_client, staff_token
from myapp.users.models import UserModel

SERVERS = ["gunicorn", "uwsgi"]
KINDS = (READ, SIGNED_IN_READ, BORROW, WRITE)
# A worker timeout shorter than the PostgreSQL freeze: the freeze must not reach it.
WORKER_TIMEOUT = {"gunicorn": ["--timeout", "15"], "uwsgi": ["--harakiri", "15"]}
HEALTH_BOUND = 1.0  # /healthz, throughout
READINESS_BOUND = 1.5  # its checks (0.5 s each, at once) behind a slot's wait


class HealthProbe:
    """Asks /healthz and /readiness every 0.2 s, recording (path, started, status,
    seconds) for each: what a liveness probe and a load balancer see."""

    def __init__(self, base: str):
        self.base, self.answers = base, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *_):
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            for path in ("/healthz", "/readiness"):
                started = time.monotonic()
                try:
                    status = requests.get(self.base + path, timeout=10).status_code
                except requests.RequestException:
                    status = 0
                self.answers.append((path, started, status, time.monotonic() - started))

    def of(self, path: str, start: float = 0, end: float = float("inf")) -> list:
        return [
            answer
            for answer in self.answers
            if answer[0] == path and start <= answer[1] and answer[1] + answer[3] < end
        ]


@dataclass
class Run:
    """A live server under load, and what its clients and its probe saw."""

    kind: str
    base: str
    token: str
    app: object
    book: dict
    load: Load
    probe: HealthProbe
    log: str = ""
    marks: dict = field(default_factory=dict)  # when each fault began and ended

    def mark(self, name: str) -> None:
        self.marks[name] = time.monotonic()

    def reads(self, seconds: float) -> dict:
        """A catalog read and a signed-in read every 0.1 s for `seconds`, beside
        the load (whose threads may all be retrying writes): {kind: Counter of
        statuses}, and the slowest answer under "slowest"."""
        seen = collections.defaultdict(collections.Counter)
        slowest, deadline = 0.0, time.monotonic() + seconds
        auth = {"Authorization": f"Bearer {self.token}"}
        while time.monotonic() < deadline:
            for kind, path, headers in (
                (READ, "/books/?per_page=5", {}),
                (SIGNED_IN_READ, "/users/me", auth),
            ):
                started = time.monotonic()
                status = requests.get(self.base + path, headers=headers, timeout=10)
                slowest = max(slowest, time.monotonic() - started)
                seen[kind][status.status_code] += 1
            time.sleep(0.1)
        return {**seen, "slowest": slowest}

    def outcomes(self, start: str | None = None, end: str | None = None) -> list:
        begin = self.marks[start] if start else 0
        until = self.marks[end] if end else float("inf")
        return [o for o in self.load.outcomes if begin <= o.started < until]

    def statuses(self, kind: str, start: str, end: str) -> collections.Counter:
        return collections.Counter(
            o.status for o in self.outcomes(start, end) if o.kind == kind
        )

    def report(self, fault: str, start: str, end: str) -> None:
        """What the clients saw during a fault, for the README's table (pytest -s)."""
        seen = {kind: dict(self.statuses(kind, start, end)) for kind in KINDS}
        slowest = max(o.seconds for o in self.outcomes(start, end))
        health = self.probe.of("/healthz", self.marks[start], self.marks[end])
        readiness = self.probe.of("/readiness", self.marks[start], self.marks[end])
        print(
            f"\n{self.kind}: {fault}: {seen}; slowest answer {slowest:.2f} s; "
            f"slowest /healthz {max(a[3] for a in health):.3f} s, /readiness "
            f"{max(a[3] for a in readiness):.2f} s "
            f"{sorted(collections.Counter(a[2] for a in readiness).items())}"
        )


@contextmanager
def under_load(backing, workdir, kind: str):
    """A live server of `kind` (2 workers) on the module's PostgreSQL and Redis, a
    book, and a steady mixed load with a health probe until the block ends; then
    the checks every fault shares."""
    postgres, redis, app = backing
    with wsgi_server(
        workdir,
        kind,
        workers=2,
        args=WORKER_TIMEOUT[kind],
        DATABASE_URL=postgres.url,
        REDIS_URL=redis.url,
        RATELIMIT_DEFAULT="100000 per hour",
        RATELIMIT_REGISTER="100000 per hour",
    ) as base:
        token = staff_token(app, base)
        book = post_as_a_client(
            f"{base}/books/",
            json={
                "title": "Under load",
                "author": "A. Uthor",
                "isbn": isbn13(uuid.uuid4().int % 10**9),
                "copies_total": 2,
            },
            headers={"Authorization": f"Bearer {token}"},
        ).json()
        with (
            Load(base, token, book["id"], close=kind == "uwsgi") as load,
            HealthProbe(base) as probe,
        ):
            run = Run(kind, base, token, app, book, load, probe)
            time.sleep(1)
            yield run
            time.sleep(1)
        run.log = open(server_log(workdir, base)).read()
    assert_no_failure_of_its_own(run)
    assert_health_answered_throughout(run)
    assert_accounted(run)


def assert_no_failure_of_its_own(run: Run) -> None:
    """No 500 (no unhandled error, nor the server's own), no answer missing, no
    worker killed."""
    statuses = collections.Counter(o.status for o in run.load.outcomes)
    errors = [
        line
        for line in run.log.splitlines()
        if "Unhandled error" in line or "Error handling request" in line
    ]
    unanswered = [o.error for o in run.load.outcomes if o.status == 0]
    assert set(statuses) <= {200, 201, 401, 409, 503}, (statuses, errors, unanswered)
    assert not errors, errors
    assert "WORKER TIMEOUT" not in run.log and "HARAKIRI" not in run.log


def assert_health_answered_throughout(run: Run) -> None:
    health = run.probe.of("/healthz")
    readiness = run.probe.of("/readiness")
    assert health and {status for _, _, status, _ in health} == {200}
    assert max(seconds for _, _, _, seconds in health) < HEALTH_BOUND, health
    assert max(seconds for _, _, _, seconds in readiness) < READINESS_BOUND
    assert readiness[-1][2] == 200  # recovered


def assert_accounted(run: Run) -> None:
    """Every account the clients made (retrying with their key) exists once, and
    every copy of the book is on the shelf or on an open loan."""
    with run.app.app_context():
        made = sql.session.scalars(
            sqlalchemy.select(UserModel.email).where(
                UserModel.email.in_(run.load.written)
            )
        ).all()
        assert sorted(made) == sorted(run.load.written)
        held = sql.session.scalar(
            sqlalchemy.select(sqlalchemy.func.count()).where(
                LoanModel.book_id == run.book["id"], LoanModel.returned_at.is_(None)
            )
        )
        copies = sql.session.get(BookModel, run.book["id"])
        assert copies.copies_available + held == copies.copies_total
        sql.session.remove()


def assert_bounded(run: Run, start: str, end: str, bound: float) -> None:
    slowest = max(o.seconds for o in run.outcomes(start, end))
    assert slowest < bound, slowest


# --- PostgreSQL frozen

FREEZE_SECONDS = 20
# The most a request may take while the database is frozen: its deadline (the
# statement timeout and half a second) and a little for the machine.
DATABASE_ANSWER_BOUND = 3.5


@pytest.mark.parametrize("kind", SERVERS)
def test_a_frozen_postgres_fails_fast_and_health_answers_throughout(
    backing, workdir, kind
):
    """PostgreSQL frozen (SIGSTOP) for longer than the worker timeout: every request
    is answered within DATABASE_ANSWER_BOUND, a 503 with Retry-After while it
    lasts; /readiness says the database is down; no worker is killed; everything
    recovers by itself."""
    postgres = backing[0]
    with under_load(backing, workdir, kind) as run:
        run.mark("frozen")
        postgres.freeze()
        time.sleep(FREEZE_SECONDS)
        postgres.thaw()
        run.mark("thawed")
        time.sleep(DATABASE_ANSWER_BOUND)
        run.mark("recovered")
        time.sleep(2)
    run.report(f"PostgreSQL frozen {FREEZE_SECONDS} s", "frozen", "recovered")
    assert_bounded(run, "frozen", "recovered", DATABASE_ANSWER_BOUND)
    frozen = collections.Counter(o.status for o in run.outcomes("frozen", "thawed"))
    assert frozen[503] > 0, frozen
    readiness = run.probe.of("/readiness", run.marks["frozen"] + 1, run.marks["thawed"])
    assert readiness and {answer[2] for answer in readiness} == {503}, readiness
    assert all(o.status < 500 for o in run.outcomes("recovered")), run.load.summary()


# --- Redis frozen, full, restarted empty

REDIS_FAULT_SECONDS = 6
# The most a request may take while Redis is frozen: one call's timeout
# (REDIS_SOCKET_TIMEOUT, 0.5 s) and a little for the machine; every call after it
# is refused at once (myapp/breaker.py).
REDIS_ANSWER_BOUND = 1.5


@pytest.mark.parametrize("kind", SERVERS)
def test_redis_frozen_full_and_restarted_under_load(backing, workdir, kind):
    """Redis frozen, then full, then restarted empty, each under the load:
    - frozen: the catalog still answers 200 (limits count in memory); whatever
      needs Redis (a token, an Idempotency-Key) is a 503 within
      REDIS_ANSWER_BOUND; /readiness 503;
    - full: signed-in reads still 200; a write with an Idempotency-Key 503;
      /readiness 503;
    - restarted empty: the sessions are gone, so the clients' token is 401 (as
      documented); the catalog and new accounts work;
    and after each, everything it stopped works again by itself."""
    redis = backing[1]
    with under_load(backing, workdir, kind) as run:
        run.mark("frozen")
        redis.freeze()
        frozen_reads = run.reads(REDIS_FAULT_SECONDS)
        redis.thaw()
        run.mark("thawed")
        time.sleep(3)
        run.mark("full")
        client = redis_client.Redis.from_url(redis.url)
        client.config_set("maxmemory", 1)
        full_reads = run.reads(REDIS_FAULT_SECONDS)
        client.config_set("maxmemory", 0)
        client.close()
        run.mark("emptied")
        time.sleep(3)
        run.mark("restarted")
        redis.stop()
        redis.start()
        time.sleep(4)
        run.mark("end")
    run.report(f"Redis frozen {REDIS_FAULT_SECONDS} s", "frozen", "thawed")
    print("  reads beside the load:", frozen_reads)
    run.report(f"Redis full {REDIS_FAULT_SECONDS} s", "full", "emptied")
    print("  reads beside the load:", full_reads)
    run.report("Redis restarted empty", "restarted", "end")
    assert_bounded(run, "frozen", "thawed", REDIS_ANSWER_BOUND)
    assert frozen_reads["slowest"] < REDIS_ANSWER_BOUND, frozen_reads

    assert set(frozen_reads[READ]) == {200}, frozen_reads  # limits in memory
    assert set(frozen_reads[SIGNED_IN_READ]) == {503}, frozen_reads
    assert run.statuses(BORROW, "frozen", "thawed")[503] > 0
    assert_readiness(run, "frozen", "thawed", 503)

    assert set(full_reads[READ]) == set(full_reads[SIGNED_IN_READ]) == {200}
    full = {kind: run.statuses(kind, "full", "emptied") for kind in KINDS}
    assert full[BORROW][503] > 0 or full[WRITE][503] > 0, full
    assert_readiness(run, "full", "emptied", 503)

    # Between the faults nothing failed for long: the last answers before the
    # next fault (answered before it began) all succeeded.
    for start, end in (("thawed", "full"), ("emptied", "restarted")):
        before_next = [
            o
            for o in run.outcomes(start, end)
            if o.started + o.seconds < run.marks[end]
        ]
        late = before_next[-10:]
        assert late and all(o.status < 500 for o in late), run.load.summary()
    restarted = {kind: run.statuses(kind, "restarted", "end") for kind in KINDS}
    assert restarted[SIGNED_IN_READ][401] > 0, restarted  # the sessions are gone
    assert restarted[READ][200] > 0 and restarted[WRITE][201] > 0, restarted


def assert_readiness(run: Run, start: str, end: str, status: int) -> None:
    """What /readiness answered while the fault lasted, after its first second."""
    answers = run.probe.of("/readiness", run.marks[start] + 1, run.marks[end])
    assert answers and {answer[2] for answer in answers} == {status}, answers
