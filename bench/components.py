"""`make bench-profile`: where one request's CPU goes, per component, in µs per
request, in-process; writes bench/COMPONENTS.md.

Each app answers the same requests from a throwaway PostgreSQL and Redis holding
the bench's data: myapp (GET /books/<id> anonymous, GET /users/me signed in), the
bare Flask + psycopg route and the typical Flask-RESTX app (bench/apps/). The CPU
per request is timed without a profiler (best of ROUNDS); a pyinstrument profile
of the same requests then shares it out: each sample goes to the innermost
component on its stack (COMPONENTS), and within that to the library it ran in.

    python -m bench.components [--requests 3000] [--books 1000]
"""

import argparse
import os
import random
import time
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

from pyinstrument import Profiler

from bench.profile import WARM_UP, bench_data, member_headers
from myapp.settings import READS

HERE = Path(__file__).resolve().parent
ROUNDS = 3
# (component, file path ending, function or None for any): a frame that matches
# makes its subtree that component's, unless a frame deeper in it matches another.
COMPONENTS = [
    ("test client (not in production)", "werkzeug/test.py", None),
    ("Flask request handling", "flask/app.py", "wsgi_app"),
    ("URL routing", "werkzeug/routing/map.py", None),
    ("RESTX dispatch", "flask_restx/", None),
    ("the view", "/endpoints.py", None),
    ("the view", "bench/apps/", None),
    ("JSON body read", "myapp/schema.py", "read_json_body"),
    ("rate limit", "myapp/rate_limits.py", None),
    ("rate limit", "flask_limiter/", None),
    ("token check", "myapp/tokens.py", None),
    ("token check", "myapp/auth.py", None),
    ("session check (Redis)", "myapp/users/sessions.py", None),
    ("SQL read", "myapp/sql_model.py", None),
    ("SQL read", "myapp/transactions.py", "read_on_a_live_connection"),
    ("SQL read", "flask_sqlalchemy/extension.py", "get_or_404"),
    ("SQL session end", "myapp/transactions.py", "end_session"),
    ("SQL session end", "flask_sqlalchemy/session.py", None),
    ("SQL stall guard", "myapp/stalls.py", None),
    ("ETag", "myapp/conditional.py", None),
    ("JSON serialisation", "flask_restx/representations.py", None),
    ("JSON serialisation", "flask_restx/marshalling.py", None),
    ("JSON serialisation", "flask/json/", None),
    ("security headers", "myapp/ops.py", "finish_response"),
    ("request id", "myapp/request_id.py", None),
    ("access log", "myapp/telemetry.py", "log_request"),
    ("metrics", "prometheus_client/", None),
    ("CORS", "flask_cors/", None),
    ("error handling", "myapp/errors.py", None),
]
LIBRARIES = [
    "psycopg",
    "sqlalchemy",
    "flask_sqlalchemy",
    "redis",
    "limits",
    "flask_limiter",
    "jwt",
    "werkzeug",
    "flask_restx",
    "flask_cors",
    "flask",
    "prometheus_client",
    "pythonjsonlogger",
    "myapp",
    "bench",
]


def component_of(frame) -> str | None:
    path = frame.file_path or ""
    for name, ending, function in COMPONENTS:
        if ending in path and function in (None, frame.function):
            return name
    return None


# Where a request waits for an answer (PostgreSQL's, Redis's) rather than computes:
# psycopg's wait loop, and the socket reads below redis-py.
WAITS = (
    ("psycopg/connection.py", "wait"),
    ("", "socket.recv"),
    ("", "socket.recv_into"),
)
WAITING = "(waiting)"


def library_of(frame) -> str:
    path = frame.file_path or ""
    for ending, function in WAITS:
        if path.endswith(ending) and frame.function == function:
            return WAITING
    for library in LIBRARIES:
        if f"/{library}/" in path:
            return library
    return "python" if path else "native"


def attribute(frame, component: str, library: str, shares: dict) -> None:
    """Add each frame's own time to (its component, its library). pyinstrument
    gives a function's own time to a synthetic "[self]" child: its parent's."""
    if not frame.is_synthetic:
        component = component_of(frame) or component
        library = library_of(frame)
    own = frame.time - sum(child.time for child in frame.children)
    shares[component][library] += own
    for child in frame.children:
        attribute(child, component, library, shares)


def measure(client, paths, headers: dict, requests: int) -> dict:
    """CPU and wall µs per request without a profiler (the round of least CPU of
    ROUNDS), and how the profile shares them out."""
    for path in paths[:WARM_UP]:
        client.get(path, headers=headers)
    best, wall = None, None
    for _ in range(ROUNDS):
        started, started_wall = time.process_time(), time.perf_counter()
        for path in paths:
            status = client.get(path, headers=headers).status_code
            assert status == 200, (path, status)
        spent = (time.process_time() - started) / len(paths) * 1e6
        if best is None or spent < best:
            best = spent
            wall = (time.perf_counter() - started_wall) / len(paths) * 1e6
    profiler = Profiler(interval=0.0001)
    with profiler:
        for path in paths:
            client.get(path, headers=headers)
    shares: dict = defaultdict(lambda: defaultdict(float))
    attribute(profiler.last_session.root_frame(), "other", "python", shares)
    waited = sum(libraries.pop(WAITING, 0) for libraries in shares.values())
    computing = sum(sum(libraries.values()) for libraries in shares.values())
    return {
        "cpu_us": best,
        "wall_us": wall,
        "wait_share": waited / (waited + computing),
        "components": {
            name: {lib: best * t / computing for lib, t in libraries.items()}
            for name, libraries in shares.items()
        },
    }


def cpu_us_per_call(call, keys: list) -> float:
    """CPU µs per call of `call(key)`, the least of ROUNDS rounds over `keys`."""
    for key in keys[:WARM_UP]:
        call(key)
    best = None
    for _ in range(ROUNDS):
        started = time.process_time()
        for key in keys:
            call(key)
        spent = (time.process_time() - started) / len(keys) * 1e6
        best = spent if best is None else min(best, spent)
    return best


def read_alone(app, keys: list) -> list[tuple[str, float]]:
    """One book read by key, alone, each way the code could read it: what the
    profile's shares (which weigh code of many small calls heavier) stand on."""
    import psycopg

    from myapp.books.models import BookModel
    from myapp.db import sql
    from myapp.sql_model import read_by_key

    read = read_by_key(BookModel)
    statement = read.statement
    with app.test_request_context("/books/1"):
        raw = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)
        compiled = str(statement.compile(sql.engines[READS]))
        sql_text = compiled.replace("%(key)s", "%s")

        def through_core(key):
            with sql.engines[READS].connect() as connection:
                connection.execute(statement, {"key": key}).first()

        def through_session(key):
            sql.session.execute(statement, {"key": key}).first()
            sql.session.remove()

        ways = [
            (
                "psycopg alone, one connection",
                lambda key: raw.execute(sql_text, (key,)).fetchone(),
            ),
            ("`KeyRead`: the pool's DBAPI connection (myapp's GET)", read.first_row),
            ("SQLAlchemy Core on a pooled connection", through_core),
            ("the ORM session's execute, and its end", through_session),
        ]
        measured = [(label, cpu_us_per_call(call, keys)) for label, call in ways]
        raw.close()
    return measured


def apps(books: int, requests: int) -> list[tuple[str, object, list, dict]]:
    """(label, app, request paths, headers) for each measurement."""
    from myapp import create_app

    from bench.apps import flask_raw, restx_typical

    rng = random.Random(1)
    by_key = [f"/books/{rng.randint(1, books)}" for _ in range(requests)]
    myapp = create_app()
    signed_in = member_headers(myapp.test_client())
    return [
        ("myapp GET /books/<id>", myapp, by_key, {}),
        ("myapp GET /users/me (signed in)", myapp, ["/users/me"] * requests, signed_in),
        ("bare Flask + psycopg GET /books/<id>", flask_raw.app, by_key, {}),
        ("typical Flask-RESTX GET /books/<id>", restx_typical.app, by_key, {}),
    ]


def report(results: list, reads: list, requests: int, books: int) -> str:
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    lines = [
        "# Where a request's CPU goes",
        "",
        f"Regenerated by `make bench-profile` on {stamp} (do not edit by hand: edit",
        "bench/components.py and rerun). In-process through Flask's test client,",
        f"{requests:,} requests per round, best of {ROUNDS} rounds, {books:,} books",
        "in a throwaway PostgreSQL, a real Redis. The test client's own share is",
        "shown and is not paid in production; a production server's (uWSGI, gunicorn)",
        "is not shown. The components share out the CPU time only: the time spent",
        "waiting for PostgreSQL's and Redis's answers is the last column, from the",
        "same profile. Components of a few µs are within the profiler's noise.",
        "",
        "| request | CPU µs per request | without the test client | wall µs "
        "| of which waiting |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, result in results:
        client = sum(result["components"].get(COMPONENTS[0][0], {}).values())
        cpu, wall = result["cpu_us"], result["wall_us"]
        lines.append(
            f"| {label} | {cpu:,.0f} | {cpu - client:,.0f} | {wall:,.0f} "
            f"| {result['wait_share']:.0%} |"
        )
    for label, result in results:
        lines += ["", f"## {label}", "", "| component | µs | share | by library |"]
        lines.append("|---|---:|---:|---|")
        rows = sorted(
            result["components"].items(), key=lambda item: -sum(item[1].values())
        )
        for name, libraries in rows:
            spent = sum(libraries.values())
            if spent < 0.5:
                continue
            biggest = sorted(libraries.items(), key=lambda item: -item[1])[:4]
            split = ", ".join(f"{lib} {us:,.0f}" for lib, us in biggest if us >= 0.5)
            share = spent / result["cpu_us"]
            lines.append(f"| {name} | {spent:,.0f} | {share:.0%} | {split} |")
    lines += ["", "## The read by key alone", "", "| way | CPU µs per read |"]
    lines.append("|---|---:|")
    lines += [f"| {label} | {us:,.0f} |" for label, us in reads]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--books", type=int, default=1000)
    args = parser.parse_args()
    with bench_data(args.books):
        results = []
        measured = apps(args.books, args.requests)
        for label, app, paths, headers in measured:
            print(label, flush=True)
            result = measure(app.test_client(), paths, headers, args.requests)
            results.append((label, result))
        _, myapp, by_key, _ = measured[0]
        reads = read_alone(myapp, [int(path.rsplit("/", 1)[1]) for path in by_key])
    text = report(results, reads, args.requests, args.books)
    (HERE / "COMPONENTS.md").write_text(text)
    print("bench/COMPONENTS.md written")


if __name__ == "__main__":
    main()
