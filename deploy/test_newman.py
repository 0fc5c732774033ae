"""The generated Postman collection, run by newman against a live gunicorn: every
request asserts the status its step of the flow must get (myapp/flow.py), so the
run is green only when each step got exactly that, and a broken token turns it
red."""

import json
import os
import subprocess

import pytest

from myapp.db import sql
from myapp.flow import FLOW
from myapp.users.models import UserModel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NEWMAN = os.path.join(ROOT, "node_modules", ".bin", "newman")
COLLECTION = os.path.join(ROOT, "clients", "myapp.postman_collection.json")
ADMIN = {"email": "flow-admin@example.com", "password": "a long admin password"}
pytestmark = pytest.mark.skipif(
    not os.path.exists(NEWMAN), reason="needs `npm ci` (newman)"
)


@pytest.fixture
def admin(committing_app):
    with committing_app.app_context():
        UserModel.create({**ADMIN, "name": "Flow Admin"}, role="admin")
        sql.session.commit()
    return ADMIN


def newman(base: str, admin: dict, report, *extra: str) -> subprocess.CompletedProcess:
    variables = {
        "baseUrl": base,
        "adminEmail": admin["email"],
        "adminPassword": admin["password"],
    }
    arguments = [NEWMAN, "run", COLLECTION, "--color", "off", "--bail", "failure"]
    arguments.append("--ignore-redirects")  # each request must use the right URL
    for name, value in variables.items():
        arguments += ["--env-var", f"{name}={value}"]
    arguments += ["--reporters", "cli,json", "--reporter-json-export", str(report)]
    return subprocess.run(
        arguments + list(extra), capture_output=True, text=True, timeout=300
    )


def test_every_step_gets_its_status(live, admin, tmp_path):
    report = tmp_path / "newman.json"
    result = newman(live, admin, report)
    assert result.returncode == 0, result.stdout[-4000:]
    run = json.loads(report.read_text())["run"]
    statuses = [execution["response"]["code"] for execution in run["executions"]]
    assert statuses == [step.expect for step in FLOW]
    # Every request asserted its status (and nothing failed): one assertion each,
    # and one more where a replay must say so.
    assertions = run["stats"]["assertions"]
    assert assertions["failed"] == 0
    assert assertions["total"] == len(FLOW) + sum(step.replayed for step in FLOW)
    assert any(status >= 400 for status in statuses)  # the error steps ran too


def test_a_broken_token_turns_the_run_red(live, admin, tmp_path):
    """The tokens the sign-in steps keep are replaced by a forged one (a run's
    environment variables win over the collection's): every signed-in step then
    gets a 401 that its assertion refuses."""
    report = tmp_path / "newman.json"
    forged = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.forged"
    result = newman(
        live,
        admin,
        report,
        "--env-var",
        f"adminToken={forged}",
        "--env-var",
        f"memberToken={forged}",
    )
    assert result.returncode != 0
    run = json.loads(report.read_text())["run"]
    failed = [failure["source"]["name"] for failure in run["failures"]]
    assert failed, result.stdout[-2000:]
    # The first step to send a forged token failed: it got a 401, not its 200.
    executions = {e["item"]["name"]: e["response"]["code"] for e in run["executions"]}
    assert failed[0] == "Your profile (200)" and executions[failed[0]] == 401
    print(result.stdout[-3000:])  # the red run, for the record
