"""The client artifacts in clients/ are generated from the live specs and kept
current: regenerate with `flask --app myapp export-clients` when an endpoint
changes."""

import json
import os

from myapp import clients

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTION = os.path.join(ROOT, "clients", "myapp.postman_collection.json")
HTTP_FILE = os.path.join(ROOT, "clients", "api.http")


def test_the_committed_artifacts_match_the_specs(app):
    with open(COLLECTION) as handle:
        assert json.load(handle) == clients.postman_collection(
            app
        ), "clients/ is stale: run flask --app myapp export-clients"
    with open(HTTP_FILE) as handle:
        assert handle.read() == clients.http_file(app) + "\n"


def test_the_collection_covers_every_operation_after_the_auth_flow(app):
    collection = clients.postman_collection(app)
    flow, *features = collection["item"]
    assert [step["name"] for step in flow["item"]] == [
        "Register",
        "Sign in",
        "Your profile, with the token",
    ]
    for folder in features:
        spec = clients.specs(app)[folder["name"]]
        assert len(folder["item"]) == len(list(clients.operations(spec)))
        for item in folder["item"]:
            assert item["event"][0]["script"]["exec"], item["name"]
    secured = [
        item
        for folder in features
        for item in folder["item"]
        if any(h["key"] == "Authorization" for h in item["request"]["header"])
    ]
    assert len(secured) > 30


def test_example_bodies_are_valid_requests(app, staff):
    """The collection's POST /books/ example really creates a book."""
    books = next(
        f for f in clients.postman_collection(app)["item"] if f["name"] == "books"
    )
    create = next(
        item
        for item in books["item"]
        if item["request"]["method"] == "POST"
        and item["request"]["url"]["raw"].endswith("/books/")
    )
    body = json.loads(create["request"]["body"]["raw"])
    response = app.test_client().post("/books/", json=body, headers=staff.headers)
    assert response.status_code == 201, response.get_json()


def test_export_clients_writes_both_files(app, tmp_path):
    result = app.test_cli_runner().invoke(
        args=["export-clients", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    with open(tmp_path / "api.http") as written, open(HTTP_FILE) as committed:
        assert written.read() == committed.read()
    assert json.loads((tmp_path / "myapp.postman_collection.json").read_text())["item"]
