"""The targets a bench run is held to, checked against its results (issue 7)."""

from bench import before_lean_path
from bench.report import fmt_scale

BOOK_VS_RAW = 0.60
BOOK_VS_FASTAPI = 1.0
VALIDATION_COST = 0.10
LIST_GROWTH = 1.5
POPULAR_P50_MS = 5.0
POPULAR_VS_PYTHON = 100
BORROW_VS_READS = 0.5
WORKER_RSS_MIB = 80
# The plain reads that borrow/return is held to, measured in turns with it
READS_BESIDE_BORROWING = "book_beside_borrowing"
LIST_SCENARIOS = ("list_first", "list_deep", "search_first", "search_deep")
# Deep pages by cursor, held to the first page of the smallest catalog
CURSOR_SCENARIOS = ("list_middle_cursor", "list_last_cursor")
# Signed-in reads and borrowing are held to the release before the lean request
# path, served in the same run (bench/before_lean_path.py), in turns with it.
SIGNED_IN_GAIN = 1.5
FASTAPI = "fastapi-async-uvicorn"
# Why a target is missed when it is, in RESULTS.md's note column; ANALYSIS.md has
# the profiles and measurements behind each.
WHY_MISSED = {
    "raw": "the ceiling runs one query on a connection it owns; myapp also runs, "
    "per request, a Redis rate-limit script through redis-py (about a sixth of a "
    "gunicorn worker's CPU under wrk), its read by key on a pooled connection, a "
    "JSON access log and metrics (a tenth), an ETag, CORS, the security headers "
    "and RESTX's dispatch (COMPONENTS.md; ANALYSIS.md: against raw bare Flask)",
    "fastapi": "FastAPI async answers from an asyncpg pool on an event loop and does "
    "less per request (no rate limit, log, metrics, ETag or CORS); ANALYSIS.md: "
    "against FastAPI async",
    "lists": "the scales are measured minutes apart on a shared machine: compare "
    "the growth of the read by key, whose cost does not depend on the catalog's "
    "size (ANALYSIS.md: how the bench measures)",
    "validation": "a few per cent of a write in-process; a run moves by about "
    "±15% (ANALYSIS.md: validation's share)",
    "borrow": "a borrow or return costs about 2.5x a read's CPU: a transaction of "
    "two or three statements, the session's commit and two more Redis calls; not "
    "the WAL flush (ANALYSIS.md: borrow and return)",
    "signed_in": "measured in turns with that release: what is left of a request's "
    "CPU is the frameworks' (Flask, RESTX, SQLAlchemy's session and pool, "
    "redis-py), and this release runs 4 threads per worker where that one ran 1 "
    "(ANALYSIS.md: signed-in reads and borrowing)",
    "rss": "the imported libraries the product is built on (SQLAlchemy, Flask, "
    "psycopg, redis, RESTX) take about 70 MiB before the app starts; uWSGI adds "
    "about 4 (ANALYSIS.md: worker memory)",
}


def evaluate(results: dict) -> list[dict]:
    runs = {(r["scenario"], r["server"], r["scale"]): r for r in results["runs"]}
    smallest, largest = min(results["scales"]), max(results["scales"])
    checks = []

    def check(target, limit, measured, met, note="", why=""):
        if not met and why:
            note = f"{note}; {WHY_MISSED[why]}" if note else WHY_MISSED[why]
        checks.append(
            {
                "target": target,
                "limit": limit,
                "measured": measured,
                "met": bool(met),
                "note": note,
            }
        )

    for server, raw in (
        ("myapp-uwsgi", "flask-raw-uwsgi"),
        ("myapp-gunicorn", "flask-raw-gunicorn"),
    ):
        ratio = (
            runs[("book", server, largest)]["rps"] / runs[("book", raw, largest)]["rps"]
        )
        check(
            f"GET /books/<id> vs raw bare Flask ({server}, {fmt_scale(largest)})",
            f">= {BOOK_VS_RAW:.2f}x",
            f"{ratio:.2f}x",
            ratio >= BOOK_VS_RAW,
            why="raw",
        )
    fastapi = runs[("book", FASTAPI, largest)]["rps"]
    for server, raw in (
        ("myapp-uwsgi", "flask-raw-uwsgi"),
        ("myapp-gunicorn", "flask-raw-gunicorn"),
    ):
        ratio = runs[("book", server, largest)]["rps"] / fastapi
        # What any app on this server could reach: the bare route's own ratio.
        ceiling = runs[("book", raw, largest)]["rps"] / fastapi
        check(
            f"GET /books/<id> vs FastAPI async ({server}, {fmt_scale(largest)})",
            f">= {BOOK_VS_FASTAPI:.1f}x",
            f"{ratio:.2f}x",
            ratio >= BOOK_VS_FASTAPI,
            f"bare Flask + psycopg on the same server: {ceiling:.2f}x",
            why="fastapi",
        )
    validated = runs[("create", "myapp-uwsgi", largest)]
    unvalidated = runs[("create", "myapp-unvalidated-uwsgi", largest)]
    cost = 1 - validated["rps"] / unvalidated["rps"]
    check(
        "POST /books/: throughput lost to validation",
        f"<= {VALIDATION_COST:.0%}",
        f"{cost:.1%} ({validated['rps']:.0f} vs {unvalidated['rps']:.0f} req/s)",
        cost <= VALIDATION_COST,
        why="validation",
    )
    # The scales are measured minutes apart; a read whose cost does not depend on
    # the catalog's size shows how much of a growth is the machine's drift.
    by_key = [
        runs[("book", "myapp-uwsgi", scale)]["p50_ms"] for scale in (smallest, largest)
    ]
    drift = (
        f"GET /books/<id> (by key) on the same server: {by_key[1] / by_key[0]:.2f}x "
        "over the same scales"
    )
    # Each list at its largest, held to itself at the smallest scale; a deep page
    # by cursor, to page 1 at the smallest.
    held_to = [(scenario, scenario) for scenario in LIST_SCENARIOS]
    held_to += [(scenario, "list_first") for scenario in CURSOR_SCENARIOS]
    for scenario, baseline in held_to:
        small = runs[(baseline, "myapp-uwsgi", smallest)]["p50_ms"]
        large = runs[(scenario, "myapp-uwsgi", largest)]["p50_ms"]
        growth = large / small
        label = results["scenarios"][scenario]["label"]
        of_what = "p50" if scenario == baseline else "p50 of page 1"
        check(
            f"{label}: p50 at {fmt_scale(largest)} / {of_what} at "
            f"{fmt_scale(smallest)}",
            f"<= {LIST_GROWTH}x",
            f"{growth:.2f}x ({large:.2f} vs {small:.2f} ms)",
            growth <= LIST_GROWTH,
            drift,
            why="lists",
        )
    popular = runs[("popular", "myapp-uwsgi", largest)]
    check(
        f"GET /books/popular p50 at {fmt_scale(largest)} books",
        f"<= {POPULAR_P50_MS:.0f} ms",
        f"{popular['p50_ms']:.2f} ms",
        popular["p50_ms"] <= POPULAR_P50_MS,
    )
    python_sort = runs[("popular_python", "flask-raw-uwsgi", largest)]
    speedup = python_sort["p50_ms"] / popular["p50_ms"]
    check(
        "GET /books/popular vs sorting in Python (p50)",
        f">= {POPULAR_VS_PYTHON}x",
        f"{speedup:,.0f}x ({python_sort['p50_ms']:,.0f} ms vs "
        f"{popular['p50_ms']:.2f} ms)",
        speedup >= POPULAR_VS_PYTHON,
    )
    borrow = runs[("borrow_return", "myapp-uwsgi", largest)]
    extra = borrow["extra"]
    check(
        "borrow/return under contention: 5xx responses",
        "0",
        str(extra["server_errors"]),
        extra["server_errors"] == 0,
        f"{borrow['socket_errors']} socket errors",
    )
    check(
        "borrow/return under contention: copies and loans add up",
        "exact",
        "exact" if extra["accounting_exact"] else "MISMATCH",
        extra["accounting_exact"],
        f"{extra['borrowed']} borrowed, {extra['returned']} returned in the runs "
        f"+ {extra['cleanup_returns']} after, {extra['refused']} refused (409)",
    )
    reads = runs[(READS_BESIDE_BORROWING, "myapp-uwsgi", largest)]["rps"]
    ratio = borrow["rps"] / reads
    check(
        "borrow/return throughput vs GET /books/<id>, measured in turns",
        f">= {BORROW_VS_READS:.1f}x",
        f"{ratio:.2f}x ({borrow['rps']:.0f} vs {reads:.0f} req/s)",
        ratio >= BORROW_VS_READS,
        why="borrow",
    )
    for scenario, scale in (("me", None), ("borrow_return", largest)):
        now, before = (
            runs[(scenario, server, scale)]["rps"]
            for server in ("myapp-uwsgi", before_lean_path.NAME)
        )
        check(
            f"{results['scenarios'][scenario]['label']} throughput vs the release "
            f"before the lean path ({before_lean_path.COMMIT[:7]}), in turns",
            f">= {SIGNED_IN_GAIN:.1f}x",
            f"{now / before:.2f}x ({now:.0f} vs {before:.0f} req/s)",
            now / before >= SIGNED_IN_GAIN,
            why="signed_in",
        )
    for entry in results["rss"]:
        if entry["server"].startswith("myapp"):
            check(
                f"worker RSS, {entry['server']}",
                f"<= {WORKER_RSS_MIB} MiB",
                f"{entry['max_mib']:.1f} MiB",
                entry["max_mib"] <= WORKER_RSS_MIB,
                why="rss",
            )
    return checks
