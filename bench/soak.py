"""`make soak`: myapp as it runs in production (uWSGI per myapp.ini, PostgreSQL,
Redis) under a steady mixed load for 10 minutes; writes bench/SOAK.md and
bench/soak.json.

    python -m bench.soak                 # 10 minutes
    python -m bench.soak --seconds 60    # a short run: checks the harness

The load is deploy/load.py's: catalog reads, signed-in reads, borrows and returns
with an Idempotency-Key, new accounts, from 4 clients. It records every answer,
the workers' resident memory every half second (its floor and peak per 30 s),
and Redis's memory and keys at the start and the end, and checks the loan
accounting and that no secret reached the logs.
"""

import argparse
import collections
import json
import tempfile
import time
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import redis

from bench import load, servers
from bench.run import (
    UNLIMITED,
    app_env,
    create_database,
    machine,
    migrate,
    sign_in,
)
from deploy.load import Load

HERE = Path(__file__).resolve().parent
SAMPLE_SECONDS = 30  # a window of memory readings
READ_EVERY_SECONDS = 0.5
WARM_UP_SECONDS = 60
COPIES = 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=600)
    arguments = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="myapp-soak-"))
    with ExitStack() as stack:
        server_url, _ = stack.enter_context(servers.postgres(workdir))
        redis_url, _ = stack.enter_context(servers.redis(workdir))
        env = {
            **app_env(create_database(server_url), redis_url),
            "RATELIMIT_LOGIN": UNLIMITED,
            "RATELIMIT_REGISTER": UNLIMITED,
        }
        book = prepare(env)
        command = [servers.BIN / "uwsgi", "--ini", "myapp.ini"]
        command += servers.UWSGI_HTTP
        base, master = stack.enter_context(
            servers.http_server("myapp-uwsgi", command, env, workdir, "/healthz")
        )
        token = sign_in(base, "staff@bench.example")
        store = stack.enter_context(redis.Redis.from_url(redis_url))
        results = soak(base, master, token, book, store, arguments.seconds)
        results["loans"] = loan_accounting(env["DATABASE_URL"], book)
        results["secrets_in_logs"] = secrets_in_logs(workdir, env, token)
    results["machine"] = machine()
    results["generated_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    (HERE / "soak.json").write_text(json.dumps(results, indent=2) + "\n")
    (HERE / "SOAK.md").write_text(report(results))
    print(report(results))


def prepare(env: dict) -> int:
    """The schema, the bench's accounts, and one book with COPIES copies."""
    migrate(env)
    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as db:
        load.load_users(db)
        load.load_books(db, 1, 1000)
        db.execute(
            "UPDATE books SET copies_total = %s, copies_available = %s WHERE id = 1",
            (COPIES, COPIES),
        )
    return 1


def soak(base, master, token, book, store, seconds) -> dict:
    started = time.monotonic()
    memory_before = store.info("memory")["used_memory"]
    samples = []
    with Load(base, token, book, close=True) as running:
        while time.monotonic() - started < seconds:
            window_end = min(started + seconds, time.monotonic() + SAMPLE_SECONDS)
            readings = []
            while time.monotonic() < window_end:
                readings.append(servers.worker_rss_mib(master))
                time.sleep(READ_EVERY_SECONDS)
            samples.append(
                {
                    "at_s": round(time.monotonic() - started),
                    "requests": len(running.outcomes),
                    # per worker, its lowest and highest reading in the window
                    "workers_rss_floor_mib": [min(r) for r in zip(*readings)],
                    "workers_rss_peak_mib": [max(r) for r in zip(*readings)],
                }
            )
    elapsed = time.monotonic() - started
    answers = collections.Counter((o.kind, o.status) for o in running.outcomes)
    memory_after = store.info("memory")["used_memory"]
    keys = collections.Counter(
        key.decode().split(":")[1] if key.startswith(b"myapp:") else "rate limits"
        for key in store.scan_iter(count=1000)
        if not key.startswith(b"flask_cache")
    )
    requests = len(running.outcomes)
    return {
        "seconds": round(elapsed),
        "requests": requests,
        "requests_per_second": round(requests / elapsed, 1),
        "answers": {f"{kind} {status}": n for (kind, status), n in answers.items()},
        "unexpected": sum(
            n for (_, status), n in answers.items() if status not in (200, 201, 409)
        ),
        "samples": samples,
        "rss_growth_after_warm_up": rss_growth(samples),
        "redis": {
            "used_memory_before": memory_before,
            "used_memory_after": memory_after,
            "bytes_per_1000_requests": round(
                (memory_after - memory_before) / requests * 1000
            ),
            "keys": dict(keys),
        },
        "accounts_made": len(running.written),
    }


def rss_growth(samples: list[dict]) -> float | None:
    """The workers' memory floor in the last window against the first one after
    warm-up, as a fraction. The floor, not a single reading: each password hash
    (a sign-in, a new account) holds Argon2's memory_cost, 64 MiB, for the tenth
    of a second it runs and gives it back, so one reading says how many hashes
    happened to be running; what a leak would raise is the floor."""
    warm = [s for s in samples if s["at_s"] > WARM_UP_SECONDS]
    if len(warm) < 2:
        return None
    first = sum(warm[0]["workers_rss_floor_mib"])
    last = sum(warm[-1]["workers_rss_floor_mib"])
    return round((last - first) / first, 4)


def loan_accounting(database_url: str, book: int) -> dict:
    with psycopg.connect(database_url) as db:
        available, total = db.execute(
            "SELECT copies_available, copies_total FROM books WHERE id = %s", (book,)
        ).fetchone()
        open_loans = db.execute(
            "SELECT count(*) FROM loans WHERE book_id = %s AND returned_at IS NULL",
            (book,),
        ).fetchone()[0]
    return {
        "copies_total": total,
        "copies_available": available,
        "open_loans": open_loans,
        "exact": available + open_loans == total,
    }


def secrets_in_logs(workdir: Path, env: dict, token: str) -> int:
    """Lines of the server's log holding a secret, the password or a token."""
    needles = [env["SECRET_KEY"], env["JWT_SECRET_KEY"], load.PASSWORD, token]
    found = 0
    for log in workdir.glob("*.log"):
        for line in log.read_text(errors="replace").splitlines():
            found += any(needle in line for needle in needles)
    return found


def report(results: dict) -> str:
    redis_memory = results["redis"]
    lines = [
        "# Soak: myapp under a steady mixed load",
        "",
        f"`make soak` ({results['generated_at']}): uWSGI per `myapp.ini` (2 workers"
        f" of 4 threads), PostgreSQL and Redis on this machine "
        f"({results['machine']['cores']} cores), 4 clients for "
        f"{results['seconds']} s.",
        "",
        f"- Requests: {results['requests']:,} "
        f"({results['requests_per_second']}/s); answers other than 200, 201 and "
        f"409: {results['unexpected']}.",
        "- Answers: "
        + ", ".join(f"{k}: {v:,}" for k, v in sorted(results["answers"].items())),
        f"- Worker memory, its floor after warm-up ({WARM_UP_SECONDS} s) to the "
        f"end: {fmt_growth(results['rss_growth_after_warm_up'])}. Per 30 s, each "
        "worker's floor and peak (MiB; a peak is the floor and 64 MiB for each "
        "password hash running then): "
        + "; ".join(
            f"{s['at_s']} s: "
            + ", ".join(
                f"{floor:.0f}-{peak:.0f}"
                for floor, peak in zip(
                    s["workers_rss_floor_mib"], s["workers_rss_peak_mib"]
                )
            )
            for s in results["samples"]
        ),
        f"- Redis: {redis_memory['used_memory_before']:,} to "
        f"{redis_memory['used_memory_after']:,} bytes, "
        f"{redis_memory['bytes_per_1000_requests']:,} bytes per 1,000 requests; "
        f"keys at the end: {redis_memory['keys']}.",
        f"- Loans: {results['loans']} (exact: copies available + open loans = "
        "copies).",
        f"- Log lines holding a secret, the password or a token: "
        f"{results['secrets_in_logs']}.",
        "",
    ]
    return "\n".join(lines)


def fmt_growth(growth: float | None) -> str:
    return "not measured (too short)" if growth is None else f"{growth:+.1%}"


if __name__ == "__main__":
    main()
