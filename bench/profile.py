"""Profile one myapp request path in-process with pyinstrument, against a
throwaway PostgreSQL and Redis holding the bench's data (1k books by default).

    python -m bench.profile /books/1 [--requests 2000] [--books 1000] [--token]

--token signs in as a member first and sends the token (for signed-in paths).
"""

import argparse
import os
import subprocess
import tempfile
from contextlib import ExitStack
from pathlib import Path

import psycopg
from pyinstrument import Profiler

from bench import load, servers
from bench.run import app_env, create_database


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--books", type=int, default=1000)
    parser.add_argument("--token", action="store_true")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="myapp-profile-"))
    with ExitStack() as stack:
        server_url, _ = stack.enter_context(servers.postgres(workdir))
        redis_url, _ = stack.enter_context(servers.redis(workdir))
        env = app_env(create_database(server_url), redis_url)
        flask = [servers.BIN / "flask", "--app", "myapp", "db", "upgrade"]
        subprocess.run(flask, cwd=servers.ROOT, env=env, check=True)
        with psycopg.connect(env["DATABASE_URL"], autocommit=True) as db:
            load.load_users(db)
            load.load_sites(db)
            load.load_books(db, 1, args.books)
            load.analyze(db)
        os.environ.update(env)
        from myapp import create_app

        client = create_app().test_client()
        headers = {}
        if args.token:
            response = client.post(
                "/users/tokens",
                json={"email": "member1@bench.example", "password": load.PASSWORD},
            )
            headers["Authorization"] = f"Bearer {response.json['access_token']}"
        for _ in range(100):  # warm caches and pools
            client.get(args.path, headers=headers)
        profiler = Profiler(interval=0.0002)
        with profiler:
            for _ in range(args.requests):
                status = client.get(args.path, headers=headers).status_code
        print(f"last status {status}")
        print(profiler.output_text(unicode=True, color=False, show_all=False))


if __name__ == "__main__":
    main()
