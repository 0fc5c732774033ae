"""Profile one myapp request path in-process with pyinstrument, against a
throwaway PostgreSQL and Redis holding the bench's data (1k books by default).

    python -m bench.profile /books/1 [--requests 2000] [--books 1000] [--token]

--token signs in as a member first and sends the token (for signed-in paths).
The per-component table of the same request paths is `make bench-profile`
(bench/components.py).
"""

import argparse
import os
import shutil
import subprocess
import tempfile
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psycopg
from pyinstrument import Profiler

from bench import load, servers
from bench.run import app_env, create_database

WARM_UP = 100  # requests before measuring: caches and pools filled


@contextmanager
def bench_data(books: int):
    """A throwaway PostgreSQL and Redis with the bench's users, sites and `books`
    books, migrated as production is; sets the production environment the apps
    read (os.environ) while it lasts."""
    workdir = Path(tempfile.mkdtemp(prefix="myapp-profile-"))
    saved = dict(os.environ)
    with ExitStack() as stack:
        server_url, _ = stack.enter_context(servers.postgres(workdir))
        redis_url, _ = stack.enter_context(servers.redis(workdir))
        env = app_env(create_database(server_url), redis_url)
        flask = [servers.BIN / "flask", "--app", "myapp", "db", "upgrade"]
        subprocess.run(flask, cwd=servers.ROOT, env=env, check=True)
        with psycopg.connect(env["DATABASE_URL"], autocommit=True) as db:
            load.load_users(db)
            load.load_sites(db)
            load.load_books(db, 1, books)
            load.analyze(db)
        # Flask's test client asks for the host "localhost".
        os.environ.update(env, TRUSTED_HOSTS="localhost")
        try:
            yield env
        finally:
            os.environ.clear()
            os.environ.update(saved)
    shutil.rmtree(workdir)  # kept on failure, for its logs


def member_headers(client) -> dict:
    """A signed-in member's Authorization header."""
    response = client.post(
        "/users/tokens",
        json={"email": "member1@bench.example", "password": load.PASSWORD},
    )
    return {"Authorization": f"Bearer {response.json['access_token']}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--books", type=int, default=1000)
    parser.add_argument("--token", action="store_true")
    args = parser.parse_args()
    with bench_data(args.books):
        from myapp import create_app

        client = create_app().test_client()
        headers = member_headers(client) if args.token else {}
        for _ in range(WARM_UP):
            client.get(args.path, headers=headers)
        profiler = Profiler(interval=0.0002)
        with profiler:
            for _ in range(args.requests):
                status = client.get(args.path, headers=headers).status_code
        print(f"last status {status}")
        print(profiler.output_text(unicode=True, color=False, show_all=False))


if __name__ == "__main__":
    main()
