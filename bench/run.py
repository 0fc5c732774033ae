"""`make bench`: myapp under load, side by side with its baselines, at three
scales, in one run; writes bench/results.json, bench/RESULTS.md and the charts.

    python -m bench.run            # the full run (about 10 minutes here)
    python -m bench.run --quick    # small scales, short runs: checks the harness

Everything it starts (PostgreSQL, Redis, the servers) listens on 127.0.0.1 and
is stopped when it ends, also on failure or Ctrl-C.
"""

import argparse
import collections
import json
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

import psycopg
import redis

from bench import load, servers
from bench import before_lean_path
from bench.report import fmt_scale, write_report
from bench.targets import READS_BESIDE_BORROWING, evaluate

HERE = Path(__file__).resolve().parent
WRK_SCRIPTS = HERE / "wrk"
FULL = {
    "scales": [1_000, 100_000, 1_000_000],
    "connections": 4,
    "warmup_s": 2,
    "duration_s": 3,
    "repetitions": 3,
}
QUICK = {**FULL, "scales": [1_000, 10_000], "warmup_s": 1, "duration_s": 1}
WORKERS = 2
PAGE_SIZE = 20  # the lists' default
# The bench's own budget: never throttled (the limiter still runs: a Redis call
# per request, as in production).
UNLIMITED = "1000000 per second"
CONTENDED_BOOKS, CONTENDED_COPIES, BORROWERS = 4, 2, 16
# The comparisons of one server or release with another in the same scenario
# (validation's share, signed-in reads and borrowing against the release before
# the lean path): a single run of either moves by up to a third on this shared
# machine, so more runs, for steadier medians.
PAIRED_REPETITIONS = 6

SERVERS = {
    "myapp-uwsgi": (
        "myapp, uWSGI per myapp.ini, plus an HTTP socket for wrk",
        [servers.BIN / "uwsgi", "--ini", "myapp.ini"],
    ),
    "myapp-gunicorn": (
        "myapp, gunicorn per gunicorn.conf.py (sync workers)",
        [servers.BIN / "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
    ),
    "flask-raw-uwsgi": (
        "bare Flask + raw psycopg (bench/apps/flask_raw.py), uWSGI as myapp.ini",
        [servers.BIN / "uwsgi", "--ini", "myapp.ini", "--module"]
        + ["bench.apps.flask_raw:app"],
    ),
    "flask-raw-gunicorn": (
        "bare Flask + raw psycopg, gunicorn as gunicorn.conf.py",
        [servers.BIN / "gunicorn", "-c", "gunicorn.conf.py"]
        + ["bench.apps.flask_raw:app"],
    ),
    "fastapi-async-uvicorn": (
        "FastAPI async + asyncpg pool + pydantic (bench/apps/fastapi_async.py), "
        "uvicorn with uvloop and httptools",
        [servers.BIN / "uvicorn", "bench.apps.fastapi_async:app", "--host"]
        + ["127.0.0.1", "--port", "{port}", "--workers", str(WORKERS)]
        + ["--no-access-log", "--log-level", "warning"],
    ),
    "restx-typical-gunicorn": (
        "a typical Flask-RESTX app: ORM, marshal_with, Flask-Limiter on Redis "
        "(bench/apps/restx_typical.py), gunicorn as gunicorn.conf.py",
        [servers.BIN / "gunicorn", "-c", "gunicorn.conf.py"]
        + ["bench.apps.restx_typical:app"],
    ),
    "myapp-unvalidated-uwsgi": (
        "myapp with body validation switched off (bench/apps/myapp_unvalidated.py)",
        [servers.BIN / "uwsgi", "--ini", "myapp.ini", "--module"]
        + ["bench.apps.myapp_unvalidated:app"],
    ),
}
SCENARIOS = {
    "book": (
        "GET /books/<id>",
        "One book by primary key, ids at random, every server in turns.",
    ),
    "book_keepalive": (
        "GET /books/<id>, keep-alive",
        "The same, each wrk connection kept open (servers that close it anyway, "
        "as sync workers do, are reconnected), every server in turns.",
    ),
    "list_first": ("GET /books/ (page 1)", "First page of 20, default sort."),
    "list_deep": (
        "GET /books/?page=50",
        "Rows 981-1000 of the default sort: the 1k catalog's last page.",
    ),
    "list_middle": (
        "GET /books/ (middle page)",
        "The page halfway through the whole catalog (OFFSET grows with the data).",
    ),
    "list_middle_cursor": (
        "GET /books/?cursor= (middle page)",
        "The same page, asked for with the cursor its previous page's next link "
        "carries (keyset: no rows read before it).",
    ),
    "list_last_cursor": (
        "GET /books/?cursor= (last page)",
        "The catalog's last page, by the cursor of its previous page's next link.",
    ),
    "search_first": (
        f"GET /books/?q={load.SEARCH_TERM}",
        f"Substring search matching {load.SEARCH_MATCHES} books at every scale.",
    ),
    "search_deep": (
        f"GET /books/?q={load.SEARCH_TERM}&page=10",
        "The last page of that search.",
    ),
    "popular": ("GET /books/popular", "The 10 most borrowed books."),
    "popular_python": (
        "popular books sorted in Python",
        "The seed's approach: load every book and its loans, sort in Python.",
    ),
    "instruments": (
        "GET /sites/instruments/",
        f"Freezers and computers of {load.SITES:,} sites, page 1, signed in.",
    ),
    "me": ("GET /users/me", "The signed-in member's profile (JWT + session check)."),
    "create": ("POST /books/", "Add a book (staff): JSON Schema validation on/off."),
    READS_BESIDE_BORROWING: (
        "GET /books/<id> beside borrowing",
        "The reads borrow/return is held to, measured in turns with it.",
    ),
    "borrow_return": (
        "borrow/return under contention",
        f"{BORROWERS} members borrowing and returning {CONTENDED_BOOKS} books of "
        f"{CONTENDED_COPIES} copies each, one connection each.",
    ),
}


# measure()'s options that time a whole measurement rather than one wrk run
TIMING = ("repetitions", "duration")


@dataclass
class Trial:
    """One scenario on one server, as `Bench.measure_in_turns` runs it. options: wrk's
    (threads, connections, timeout) and after_each, called after every wrk run.
    warmup=False for a scenario whose every request must be counted."""

    scenario: str
    server: str
    base: str
    script: str
    args: list | Callable[[], list]
    baseline: dict | None = None
    options: dict = field(default_factory=dict)
    warmup: bool = True

    @property
    def key(self) -> dict:
        return {"scenario": self.scenario, "server": self.server}


class Bench:
    def __init__(self, settings: dict, workdir: Path, only=None):
        self.settings = settings
        self.only = only  # scenario ids to run (while working on one), or all
        self.workdir = workdir
        self.runs: list[dict] = []

    # --- load generation -------------------------------------------------------

    def wrk(self, base: str, script: str, args: list, duration: float, **options):
        """One wrk run; returns the JSON its done() printed, with req/s. Each
        request on a new connection, unless keep_alive."""
        scripts = [script, "report.lua"]
        if not options.get("keep_alive"):
            scripts.insert(0, "close.lua")
        source = "\n".join((WRK_SCRIPTS / name).read_text() for name in scripts)
        path = self.workdir / script
        path.write_text(source)
        threads = options.get("threads", 1)
        connections = options.get("connections", self.settings["connections"])
        command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s"]
        command += ["--timeout", options.get("timeout", "10s"), "-s", str(path), base]
        output = subprocess.run(
            command + ["--"] + [str(arg) for arg in args],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        line = next(line for line in output.splitlines() if line.startswith("BENCH "))
        result = json.loads(line[len("BENCH ") :])
        seconds = result.pop("duration_us") / 1e6
        return {
            "rps": round(result["requests"] / seconds, 1),
            "p50_ms": result.pop("p50_us") / 1000,
            "p99_ms": result.pop("p99_us") / 1000,
            **result,
        }

    def measure(self, scenario, server, scale, base, script, args, **options):
        """Warm up, then `repetitions` timed runs; records and returns the run."""
        timing = {key: options.pop(key) for key in TIMING if key in options}
        baseline = options.pop("baseline", None)
        warmup = options.pop("warmup", True)
        trial = Trial(scenario, server, base, script, args, baseline, options, warmup)
        runs = self.measure_in_turns([trial], scale, **timing)
        return runs[0] if runs else None

    def measure_in_turns(self, trials: list, scale, **timing) -> list[dict]:
        """`measure` for several trials at once, their timed runs taken in turns
        (A B, then B A, ...), so that a drift in the machine or in the data (a
        write scenario grows its tables) falls on each alike. Returns the runs."""
        if self.only:  # the scenarios asked for, and the baselines they are held to
            wanted = [trial for trial in trials if trial.scenario in self.only]
            needed = [trial.baseline for trial in wanted]
            trials = [t for t in trials if t in wanted or t.key in needed]
        settings = self.settings
        reps = timing.get("repetitions", settings["repetitions"])
        duration = timing.get("duration", settings["duration_s"])
        for trial in trials:
            if trial.warmup and settings["warmup_s"]:
                self.run_trial(trial, settings["warmup_s"])
        results: list[list] = [[] for _ in trials]
        for rep in range(reps):
            order = list(enumerate(trials))
            for index, trial in order if rep % 2 == 0 else order[::-1]:
                results[index].append(self.run_trial(trial, duration))
        return [
            self.record(trial.scenario, trial.server, scale, trial.baseline, result)
            for trial, result in zip(trials, results)
        ]

    def run_trial(self, trial: "Trial", seconds: float) -> dict:
        options = dict(trial.options)
        after_each = options.pop("after_each", None)
        # args may be a function: a fresh list for every wrk run
        args = trial.args() if callable(trial.args) else trial.args
        result = self.wrk(trial.base, trial.script, args, seconds, **options)
        if after_each:
            after_each()
        return result

    def record(self, scenario, server, scale, baseline, results: list) -> dict:
        run = {
            "scenario": scenario,
            "server": server,
            "scale": scale,
            "reps": [
                {key: value for key, value in rep.items() if key != "extra"}
                for rep in results
            ],
            "rps": statistics.median(rep["rps"] for rep in results),
            "p50_ms": statistics.median(rep["p50_ms"] for rep in results),
            "p99_ms": statistics.median(rep["p99_ms"] for rep in results),
            "non_2xx": sum(rep["non_2xx"] for rep in results),
            "socket_errors": sum(rep["socket_errors"] for rep in results),
            "baseline": baseline,
            "ratio": None,
            "extra": merge_extra([rep["extra"] for rep in results]),
        }
        self.runs.append(run)
        print(
            f"  {scenario:<15} {server:<24} {fmt_scale(scale):>5} "
            f"{run['rps']:>9.0f} req/s  p50 {run['p50_ms']:7.2f} ms  "
            f"p99 {run['p99_ms']:7.2f} ms  errors {run['non_2xx']}",
            flush=True,
        )
        return run


def merge_extra(extras: list[dict]) -> dict:
    """Counters from each repetition, summed."""
    merged: dict = {}
    for extra in extras:
        for key, value in extra.items():
            merged[key] = merged.get(key, 0) + value
    return merged


def app_env(database_url: str, redis_url: str) -> dict:
    """Production config, as /etc/myapp/env would give it."""
    return {
        **os.environ,
        "MYAPP_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "JWT_SECRET_KEY": secrets.token_urlsafe(48),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "RATELIMIT_DEFAULT": UNLIMITED,
        "TRUSTED_PROXIES": "0",
        "TRUSTED_HOSTS": "127.0.0.1",
        "CORS_ORIGINS": "",
        "WEB_CONCURRENCY": str(WORKERS),
        "BIND": "127.0.0.1:{port}",
        "MYAPP_SOCKET": "{workdir}/uwsgi-{port}.sock",
        # The log lines go to each server's log file in the work folder.
        "LOG_LEVEL": "INFO",
    }


def migrate(env: dict) -> None:
    """The schema, as production makes it: `flask db upgrade`."""
    subprocess.run(
        [servers.BIN / "flask", "--app", "myapp", "db", "upgrade"],
        cwd=servers.ROOT,
        env=env,
        check=True,
        capture_output=True,
    )


def create_database(server_url: str) -> str:
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute("CREATE DATABASE myapp")
    return server_url.rsplit("/", 1)[0] + "/myapp"


def start_servers(stack: ExitStack, env: dict, workdir: Path) -> dict:
    """Every server, each with WORKERS workers; returns name -> (base URL, pid)."""
    started = {}
    for name, (_, command) in SERVERS.items():
        if "uwsgi" in name:
            command = command + servers.UWSGI_HTTP
        ready = "/healthz" if name.startswith("myapp") else "/books/1"
        context = servers.http_server(name, command, env, workdir, ready)
        started[name] = stack.enter_context(context)
    return started


def sign_in(base: str, email: str) -> str:
    body = json.dumps({"email": email, "password": load.PASSWORD}).encode()
    request = urllib.request.Request(
        base + "/users/tokens",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["access_token"]


def post(base: str, path: str, token: str) -> int:
    request = urllib.request.Request(
        base + path, headers={"Authorization": f"Bearer {token}"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def bench_scale(bench: Bench, bases: dict, scale: int) -> None:
    """The scenarios whose cost could grow with the catalog, at this scale."""
    print(f"scale {fmt_scale(scale)}", flush=True)
    # The peers are held to each other (the targets' ratios): their timed runs
    # take turns, so a drift of the machine falls on each alike.
    bench.measure_in_turns(
        [
            Trial(
                "book",
                server,
                bases[server],
                "book.lua",
                [scale],
                baseline and {"scenario": "book", "server": baseline},
            )
            for server, baseline in (
                ("flask-raw-uwsgi", None),
                ("flask-raw-gunicorn", None),
                ("myapp-uwsgi", "flask-raw-uwsgi"),
                ("myapp-gunicorn", "flask-raw-gunicorn"),
                ("fastapi-async-uvicorn", "flask-raw-uwsgi"),
                ("restx-typical-gunicorn", "flask-raw-gunicorn"),
            )
        ],
        scale,
    )
    middle = max(2, scale // 40)
    last = -(-scale // PAGE_SIZE)
    myapp = bases["myapp-uwsgi"]
    paths = {
        "list_first": "/books/",
        "list_deep": "/books/?page=50",
        "list_middle": f"/books/?page={middle}",
        "list_middle_cursor": next_link(myapp, f"/books/?page={middle - 1}"),
        "list_last_cursor": next_link(myapp, f"/books/?page={last - 1}"),
        "search_first": f"/books/?q={load.SEARCH_TERM}",
        "search_deep": f"/books/?q={load.SEARCH_TERM}&page=10",
        "popular": "/books/popular",
    }
    for scenario, path in paths.items():
        baseline = None
        if scenario == "popular":
            baseline = {"scenario": "popular_python", "server": "flask-raw-uwsgi"}
        bench.measure(
            scenario,
            "myapp-uwsgi",
            scale,
            bases["myapp-uwsgi"],
            "get.lua",
            [path],
            baseline=baseline,
        )
    # Seconds per request at 1M: a few requests on one connection tell enough.
    bench.measure(
        "popular_python",
        "flask-raw-uwsgi",
        scale,
        bases["flask-raw-uwsgi"],
        "get.lua",
        ["/books/popular"],
        connections=1,
        duration=max(10, bench.settings["duration_s"]),
        repetitions=1,
        warmup=False,
        timeout="60s",
    )


def next_link(base: str, path: str) -> str:
    """The path and query of a list page's `Link: rel="next"` (its cursor)."""
    with urllib.request.urlopen(base + path, timeout=60) as response:
        link = response.headers["Link"]
    target = next(
        part.split(">")[0].lstrip(" <")
        for part in link.split(",")
        if 'rel="next"' in part
    )
    return target[len(base) :] if target.startswith(base) else target


def bench_once(bench: Bench, bases: dict, before: str, db, scale: int):
    """The scenarios whose cost does not depend on the catalog's size, measured
    with the largest catalog loaded."""
    print("keep-alive", flush=True)
    bench.measure_in_turns(
        [
            Trial(
                "book_keepalive",
                name,
                base,
                "book.lua",
                [scale],
                options={"keep_alive": True},
            )
            for name, base in bases.items()
            if name != "myapp-unvalidated-uwsgi"
        ],
        scale,
    )
    print("signed in and writing", flush=True)
    myapp = bases["myapp-uwsgi"]
    member = sign_in(myapp, "member1@bench.example")
    staff = sign_in(myapp, "staff@bench.example")
    path = "/sites/instruments/"
    bench.measure("instruments", "myapp-uwsgi", None, myapp, "get.lua", [path, member])
    bench.measure_in_turns(
        [
            Trial(
                "me",
                before_lean_path.NAME,
                before,
                "get.lua",
                ["/users/me", sign_in(before, "member1@bench.example")],
            ),
            Trial(
                "me",
                "myapp-uwsgi",
                myapp,
                "get.lua",
                ["/users/me", member],
                baseline={"scenario": "me", "server": before_lean_path.NAME},
            ),
        ],
        None,
        repetitions=PAIRED_REPETITIONS,
    )
    numbers = iter(range(0, 10**9, 10**6))  # each wrk run its own ISBN block
    unvalidated = "myapp-unvalidated-uwsgi"
    new_book = ("create.lua", lambda: [staff, next(numbers)])
    bench.measure_in_turns(
        [
            Trial("create", unvalidated, bases[unvalidated], *new_book),
            Trial(
                "create",
                "myapp-uwsgi",
                myapp,
                *new_book,
                baseline={"scenario": "create", "server": unvalidated},
            ),
        ],
        scale,
        repetitions=PAIRED_REPETITIONS,
    )
    bench_borrowing(bench, myapp, before, db, scale)


def bench_borrowing(bench, base: str, before: str, db, scale: int) -> None:
    """Members race for a few copies, on this release and (on books of its own) on
    the release before the lean path, in turns; afterwards every copy and loan of
    this release's books must add up."""
    books = range(1, CONTENDED_BOOKS + 1)
    books_before = range(CONTENDED_BOOKS + 1, 2 * CONTENDED_BOOKS + 1)
    db.execute(
        "UPDATE books SET copies_total = %s, copies_available = %s WHERE id = ANY(%s)",
        (CONTENDED_COPIES, CONTENDED_COPIES, [*books, *books_before]),
    )
    borrowed_before = loan_ids_and_times_borrowed(db, books)
    cleanup_returns = collections.Counter()

    def borrowing(server: str, url: str, contended: range, held_to=None) -> Trial:
        tokens = [
            sign_in(url, f"member{number}@bench.example")
            for number in range(2, BORROWERS + 2)
        ]
        staff = sign_in(url, "staff@bench.example")

        def return_open_loans():
            """A run stops mid-cycle; give back what it left borrowed, through the
            API (after a pause for requests still in flight when wrk stopped)."""
            time.sleep(0.5)
            for (loan,) in db.execute(
                "SELECT id FROM loans WHERE returned_at IS NULL AND book_id = ANY(%s)",
                (list(contended),),
            ).fetchall():
                post(url, f"/books/loans/{loan}/return", staff)
                cleanup_returns[server] += 1

        return Trial(
            "borrow_return",
            server,
            url,
            "borrow.lua",
            [contended.start, len(contended), *tokens],
            baseline=held_to,
            options=dict(
                threads=BORROWERS, connections=BORROWERS, after_each=return_open_loans
            ),
            # This release's every borrow and return is counted in the accounting;
            # the other's books are not, and it is warmed up as any server is.
            warmup=server != "myapp-uwsgi",
        )

    # The reads it is held to are measured in turns with it, on the same server,
    # rather than minutes before at another moment of the machine.
    reads = Trial(READS_BESIDE_BORROWING, "myapp-uwsgi", base, "book.lua", [scale])
    trials = [
        borrowing("myapp-uwsgi", base, books, reads.key),
        reads,
        borrowing(before_lean_path.NAME, before, books_before),
    ]
    runs = bench.measure_in_turns(trials, scale, repetitions=PAIRED_REPETITIONS)
    run = next((run for run in runs if run["baseline"] == reads.key), None)
    if run is None:
        return
    after = loan_ids_and_times_borrowed(db, books)
    copies = db.execute(
        "SELECT sum(copies_total), sum(copies_available) FROM books WHERE id = ANY(%s)",
        (list(books),),
    ).fetchone()
    new_loans = after["loans"] - borrowed_before["loans"]
    extra = run["extra"]
    extra.update(
        cleanup_returns=cleanup_returns["myapp-uwsgi"],
        loans_created=new_loans,
        times_borrowed_added=after["times_borrowed"]
        - borrowed_before["times_borrowed"],
        copies_total=copies[0],
        copies_available=copies[1],
    )
    open_loans = db.execute(
        "SELECT count(*) FROM loans WHERE returned_at IS NULL AND book_id = ANY(%s)",
        (list(books),),
    ).fetchone()[0]
    # The database must agree with itself exactly. wrk may miss the answers to
    # requests in flight when it stopped (at most one per connection per run).
    in_flight = BORROWERS * len(run["reps"])
    extra["accounting_exact"] = int(
        new_loans == extra["times_borrowed_added"]
        and open_loans == 0
        and copies[0] == copies[1]
        and extra["borrowed"] <= new_loans <= extra["borrowed"] + in_flight
    )


def loan_ids_and_times_borrowed(db, books: range) -> dict:
    loans, times = db.execute(
        """SELECT (SELECT count(*) FROM loans WHERE book_id = ANY(%(books)s)),
                  (SELECT sum(times_borrowed) FROM books WHERE id = ANY(%(books)s))""",
        {"books": list(books)},
    ).fetchone()
    return {"loans": loans, "times_borrowed": times}


def compute_ratios(runs: list[dict]) -> None:
    """Each run's req/s over its baseline's, at the same scale."""
    index = {(run["scenario"], run["server"], run["scale"]): run for run in runs}
    for run in runs:
        baseline = run["baseline"]
        if baseline:
            other = index.get((baseline["scenario"], baseline["server"], run["scale"]))
            if other and other["rps"]:
                run["ratio"] = round(run["rps"] / other["rps"], 3)


def machine() -> dict:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpu_model": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kib / 2**20, 1),
        "kernel": platform.release(),
        "os": platform.platform(terse=True),
    }


def versions(postgres: str, redis: str) -> dict:
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    found = {
        "python": platform.python_version(),
        "postgresql": postgres,
        "redis": redis,
        "wrk": (wrk.stdout + wrk.stderr).split()[1],
    }
    for package in (
        "flask",
        "flask-restx",
        "sqlalchemy",
        "psycopg",
        "jsonschema",
        "uwsgi",
        "gunicorn",
        "fastapi",
        "pydantic",
        "uvicorn",
        "asyncpg",
        "flask-limiter",
    ):
        found[package] = version(package)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="check the harness")
    parser.add_argument("--only", help="comma-separated scenarios (no report)")
    arguments = parser.parse_args()
    settings = QUICK if arguments.quick else FULL
    only = arguments.only and set(arguments.only.split(","))
    servers.require("wrk")
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="myapp-bench-"))
    bench = Bench(settings, workdir, only)
    data = []
    with ExitStack() as stack:
        server_url, postgres_version = stack.enter_context(servers.postgres(workdir))
        redis_url, redis_version = stack.enter_context(servers.redis(workdir))
        database_url = create_database(server_url)
        env = app_env(database_url, redis_url)
        migrate(env)
        db = stack.enter_context(psycopg.connect(database_url, autocommit=True))
        load.load_users(db)
        data.append({"scale": None, **load.load_sites(db)})
        bases, loaded = None, 0
        for scale in settings["scales"]:
            loading = load.load_books(db, loaded + 1, scale)
            load.analyze(db)
            loaded = scale
            data.append({"scale": scale, **load.counts(db), **loading})
            print(f"loaded {data[-1]}", flush=True)
            bases = bases or start_servers(stack, env, workdir)
            # The catalog changed under the app: drop the popular books cache.
            with redis.Redis.from_url(redis_url) as cache:
                cache.flushdb()
            bench_scale(bench, {name: base for name, (base, _) in bases.items()}, scale)
        urls = {name: base for name, (base, _) in bases.items()}
        before = stack.enter_context(before_lean_path.serve(env, workdir))
        bench_once(bench, urls, before, db, loaded)
        rss = [
            {"server": name, "workers_mib": sizes, "max_mib": max(sizes)}
            for name, (_, pid) in bases.items()
            for sizes in [servers.worker_rss_mib(pid)]
        ]
    compute_ratios(bench.runs)
    if only:
        return
    results = {
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "elapsed_s": round(time.monotonic() - started, 1),
        "command": "make bench",
        "machine": machine(),
        "versions": versions(postgres_version, redis_version),
        "settings": {**settings, "threads": 1, "workers": WORKERS},
        "servers": {
            **{name: description for name, (description, _) in SERVERS.items()},
            before_lean_path.NAME: before_lean_path.DESCRIPTION,
        },
        "scenarios": {
            key: {"label": label, "description": description}
            for key, (label, description) in SCENARIOS.items()
        },
        "scales": settings["scales"],
        "data": data,
        "runs": bench.runs,
        "rss": rss,
    }
    results["checks"] = evaluate(results)
    (HERE / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    write_report(results, HERE)
    shutil.rmtree(workdir)  # kept on failure, for its logs
    print(f"done in {results['elapsed_s']:.0f} s: bench/RESULTS.md", flush=True)


if __name__ == "__main__":
    main()
