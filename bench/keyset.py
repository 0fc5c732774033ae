"""What a deep page of the catalog costs, by number (OFFSET) and by cursor (keyset),
at 1M books on a throwaway PostgreSQL: in-process (the test client), so it measures
the query path, not a server. Writes bench/KEYSET.md. Run: make bench-keyset.
"""

import os
import re
import statistics
import tempfile
import time

import flask_migrate
import psycopg

from bench import load
from myapp import create_app, init_migrations
from myapp.throwaway import PostgresProcess, RedisProcess

BOOKS = 1_000_000
PER_PAGE = 20
MIDDLE = BOOKS // PER_PAGE // 2
SORTS = ("title", "-published_year", "created_at", "-times_borrowed")
RUNS = 15
HERE = os.path.dirname(os.path.abspath(__file__))


def p50_ms(client, path: str, runs: int = RUNS):
    times, response = [], None
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(path)
        times.append(time.perf_counter() - started)
        assert response.status_code == 200, response.get_json()
    return statistics.median(times) * 1000, response


def next_path(response) -> str:
    link = re.search(r'<([^>]+)>; rel="next"', response.headers["Link"]).group(1)
    return link.split("localhost", 1)[1]


def measure(client) -> list[tuple]:
    rows = []
    for sort in SORTS:
        first, _ = p50_ms(client, f"/books/?sort={sort}")
        by_number, middle = p50_ms(client, f"/books/?sort={sort}&page={MIDDLE}", 5)
        by_cursor, after = p50_ms(client, next_path(middle))
        assert after.get_json()["page"] == MIDDLE + 1
        rows.append((sort, first, by_number, by_cursor))
    return rows


def report(rows: list[tuple], seconds: float) -> str:
    lines = [
        "# Deep pages: by number and by cursor",
        "",
        f"`make bench-keyset` at {BOOKS:,} books on PostgreSQL, in-process (the test "
        f"client), p50 of {RUNS} requests; written {time.strftime('%Y-%m-%d')} in "
        f"{seconds:.0f} s (do not edit by hand).",
        "",
        f"| sort | page 1 | page {MIDDLE:,} by number | page {MIDDLE + 1:,} by "
        "cursor | cursor vs page 1 |",
        "|---|---:|---:|---:|---:|",
    ]
    for sort, first, by_number, by_cursor in rows:
        lines.append(
            f"| `{sort}` | {first:.1f} ms | {by_number:.1f} ms | {by_cursor:.1f} ms "
            f"| {by_cursor / first:.2f}x |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    started = time.time()
    directory = tempfile.mkdtemp(prefix="keyset-")
    redis = RedisProcess(directory)
    redis.start()
    postgres = PostgresProcess(os.path.join(directory, "pg"))
    try:
        app = create_app(
            "testing",
            {
                "SQLALCHEMY_DATABASE_URI": postgres.url,
                "REDIS_URL": redis.url,
                "RATELIMIT_DEFAULT": "100000000 per hour",
                "LOG_LEVEL": "WARNING",
            },
        )
        init_migrations(app)
        with app.app_context():
            flask_migrate.upgrade()
        url = postgres.url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(url, autocommit=True) as db:
            load.load_users(db)
            load.load_books(db, 1, BOOKS)
            load.analyze(db)
        rows = measure(app.test_client())
    finally:
        redis.stop()
        postgres.server.cleanup()
    text = report(rows, time.time() - started)
    with open(os.path.join(HERE, "KEYSET.md"), "w") as out:
        out.write(text)
    print(text)


if __name__ == "__main__":
    main()
