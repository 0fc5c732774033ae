"""The client artifacts in clients/ come from the client flow (myapp/flow.py) and
the OpenAPI document, and are kept current: regenerate them with
`flask --app myapp export-clients` when an operation changes. newman runs the
collection against a live server in `make deploy-test` (deploy/test_newman.py)."""

import json
import os
import re

from myapp import clients
from myapp.flow import FLOW
from myapp.steps import TOKENS, VARIABLES, Number
from myapp.testing import response_problems

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTION = os.path.join(ROOT, "clients", "myapp.postman_collection.json")
HTTP_FILE = os.path.join(ROOT, "clients", "api.http")


def test_the_committed_artifacts_are_current(app):
    with open(COLLECTION) as handle:
        assert json.load(handle) == clients.postman_collection(
            app
        ), "clients/ is stale: run flask --app myapp export-clients"
    with open(HTTP_FILE) as handle:
        assert handle.read() == clients.http_file(app) + "\n"


def test_the_flow_runs_every_operation(app):
    documented = clients.operations(clients.document(app))
    assert {step.operation for step in FLOW} == set(documented)


def test_each_step_expects_a_status_its_operation_documents(app):
    documented = clients.operations(clients.document(app))
    for step in FLOW:
        _method, _path, operation = documented[step.operation]
        assert str(step.expect) in operation["responses"], step.name


def test_each_signed_in_step_sends_the_kind_of_token_its_operation_takes(app):
    documented = clients.operations(clients.document(app))
    for step in FLOW:
        schemes = {
            name
            for option in documented[step.operation][2]["security"]
            for name in option
        }
        if step.actor is None:
            assert not schemes or step.expect == 401, step.name
        else:
            kind = (
                "refreshToken"
                if TOKENS[step.actor].endswith("RefreshToken")
                else ("accessToken")
            )
            assert kind in schemes, step.name


def sample(value):
    """A step's body with its variables given example values of their kind."""
    if isinstance(value, Number):
        return 1
    if isinstance(value, dict):
        return {key: sample(item) for key, item in value.items()}
    if isinstance(value, str):
        return re.sub(r"{{(\w+)}}", lambda match: VARIABLES.get(match[1], "x"), value)
    return value


def test_each_body_is_what_its_operation_takes(app):
    document = clients.document(app)
    documented = clients.operations(document)
    for step in FLOW:
        request_body = documented[step.operation][2].get("requestBody")
        if step.body is None:
            assert not (request_body and request_body["required"]), step.name
            continue
        schema = request_body["content"]["application/json"]["schema"]
        found = response_problems(document, schema["$ref"], sample(step.body))
        assert not found, (step.name, found)


def test_the_collection_asserts_every_step_and_the_first_makes_fresh_values(app):
    items = clients.postman_collection(app)["item"]
    assert len(items) == len(FLOW)
    for item, step in zip(items, FLOW):
        tests = next(e for e in item["event"] if e["listen"] == "test")
        assert f"pm.response.to.have.status({step.expect});" in "\n".join(
            tests["script"]["exec"]
        )
    assert items[0]["event"][0]["listen"] == "prerequest"
    assert FLOW[-1].operation == "delete_current_token"  # signing out comes last


def test_export_clients_writes_both_files(app, tmp_path):
    result = app.test_cli_runner().invoke(
        args=["export-clients", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    with open(tmp_path / "api.http") as written, open(HTTP_FILE) as committed:
        assert written.read() == committed.read()
    assert json.loads((tmp_path / "myapp.postman_collection.json").read_text())["item"]
