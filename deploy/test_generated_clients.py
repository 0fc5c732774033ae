"""Clients generated from the live /openapi.json, as frontend and integration teams
generate them, run the same flow against a live gunicorn: sign in, list books,
borrow with an Idempotency-Key and see the replay, read with If-None-Match (304),
meet a 409 and a 412, return the loan, sign out.

- TypeScript: openapi-typescript + openapi-fetch, type-checked by tsc --noEmit
  (strict), then run by node (clients/typescript/flow.mts).
- Python: openapi-python-client (clients/python/flow.py).
"""

import os
import shutil
import subprocess
import sys

import pytest

from myapp.db import sql
from myapp.users.models import UserModel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NODE_BIN = os.path.join(ROOT, "node_modules", ".bin")
PYTHON_BIN = os.path.dirname(sys.executable)
READER = {"email": "generated-client@example.com", "password": "a long client password"}


@pytest.fixture
def reader(committing_app):
    """A member, and books with copies to borrow."""
    from myapp.books.models import BookModel, isbn13

    with committing_app.app_context():
        UserModel.create({**READER, "name": "Client"})
        for serial in range(3):
            BookModel.create(
                {
                    "title": f"Generated {serial}",
                    "author": "A. Client",
                    "isbn": isbn13(900000000 + serial),
                    "copies_total": 2,
                }
            )
        sql.session.commit()
    return READER


def run(arguments: list[str], cwd: str, **env) -> str:
    result = subprocess.run(
        arguments,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
    )
    assert result.returncode == 0, (
        arguments[:3],
        result.stdout[-3000:],
        result.stderr[-3000:],
    )
    return result.stdout


@pytest.mark.skipif(
    not os.path.exists(os.path.join(NODE_BIN, "tsc")), reason="needs `npm ci`"
)
def test_a_typescript_client_completes_the_flow(live, reader, tmp_path):
    for name in ("flow.mts", "tsconfig.json"):
        shutil.copy(os.path.join(ROOT, "clients", "typescript", name), tmp_path)
    os.symlink(os.path.join(ROOT, "node_modules"), tmp_path / "node_modules")
    generate = [os.path.join(NODE_BIN, "openapi-typescript"), f"{live}/openapi.json"]
    run(generate + ["--output", "schema.d.ts"], str(tmp_path))
    tsc = os.path.join(NODE_BIN, "tsc")
    run([tsc, "--noEmit", "-p", "."], str(tmp_path))
    run([tsc, "-p", "."], str(tmp_path))
    output = run(
        ["node", "dist/flow.mjs", live, reader["email"], reader["password"]],
        str(tmp_path),
    )
    assert "ok   304 read it with If-None-Match" in output
    assert "ok   412 rename from a stale copy" in output
    assert output.rstrip().endswith("the TypeScript flow completed")


def test_a_python_client_completes_the_flow(live, reader, tmp_path):
    generator = os.path.join(PYTHON_BIN, "openapi-python-client")
    if not os.path.exists(generator):
        pytest.skip("needs requirements-clients.txt (openapi-python-client)")
    path = f"{PYTHON_BIN}{os.pathsep}{os.environ['PATH']}"  # its formatter, ruff
    generate = [generator, "generate", "--url", f"{live}/openapi.json"]
    generate += ["--meta", "none", "--output-path", "myapp_client"]
    output = run(generate, str(tmp_path), PATH=path)
    assert "Warning" not in output, output
    flow = os.path.join(ROOT, "clients", "python", "flow.py")
    output = run(
        [sys.executable, flow, live, reader["email"], reader["password"]],
        str(tmp_path),
        PYTHONPATH=str(tmp_path),
    )
    assert "ok   304 read it with If-None-Match" in output
    assert output.rstrip().endswith("the Python flow completed")
