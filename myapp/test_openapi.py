"""The OpenAPI 3.1 documents as their consumers read them: valid, linted, built from
the routes and the validators' own schemas, and served with the pages people read
(the index, Swagger UI). What the server does against them is test_contract.py's."""

import json
import os
import subprocess
from importlib.metadata import version

import pytest
from openapi_spec_validator import validate

from myapp import create_app
from myapp.books.loans import LoanModel
from myapp.books.models import BookModel
from myapp.errors import ERROR_SCHEMA
from myapp.headers import REQUEST_HEADERS, RESPONSE_HEADERS
from myapp.operations import path_template

FEATURES = ["users", "books", "sites"]
DOCUMENTS = ["/openapi.json"] + [f"/{name}/openapi.json" for name in FEATURES]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REDOCLY = os.path.join(ROOT, "node_modules", ".bin", "redocly")


@pytest.fixture(scope="module")
def documents():
    """Each document as the app serves it (no database needed to build them)."""
    app = create_app(
        "testing", {"SQLALCHEMY_DATABASE_URI": "sqlite://", "REDIS_URL": "redis://x"}
    )
    client = app.test_client()
    served = {path: client.get(path) for path in DOCUMENTS}
    for path, response in served.items():
        assert response.status_code == 200 and response.is_json, path
    return app, {path: response.get_json() for path, response in served.items()}


def operations(document: dict):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


@pytest.mark.parametrize("path", DOCUMENTS)
def test_each_document_is_valid_openapi_3_1(documents, path):
    document = documents[1][path]
    assert document["openapi"].startswith("3.1.")
    validate(document)


@pytest.mark.skipif(not os.path.exists(REDOCLY), reason="needs `npm ci` (Redocly)")
@pytest.mark.parametrize("path", DOCUMENTS)
def test_redocly_finds_no_error(documents, path, tmp_path):
    """Redocly's recommended rules, less those redocly.yaml switches off (each with
    its reason): no error and no warning."""
    written = tmp_path / "openapi.json"
    written.write_text(json.dumps(documents[1][path]))
    config = os.path.join(ROOT, "redocly.yaml")
    result = subprocess.run(
        [REDOCLY, "lint", str(written), "--config", config, "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "REDOCLY_TELEMETRY": "off", "NO_COLOR": "1"},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["totals"] == {"errors": 0, "warnings": 0, "ignored": 0}, report


def test_the_whole_api_document_has_every_operation_of_every_feature(documents):
    app, served = documents
    whole = {(p, m) for p, m, _ in operations(served["/openapi.json"])}
    parts = {
        (p, m)
        for name in FEATURES
        for p, m, _ in operations(served[f"/{name}/openapi.json"])
    }
    assert whole == parts
    routed = {
        (path_template(rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.endpoint.split(".")[0] in FEATURES
        and not rule.rule.endswith(("/docs", "/swagger.json", "/openapi.json"))
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert whole == routed


def test_operation_ids_are_unique_and_stable(documents):
    ids = [
        op["operationId"] for _p, _m, op in operations(documents[1]["/openapi.json"])
    ]
    assert len(ids) == len(set(ids)) == 48
    assert {"get_book", "post_book_loans", "post_tokens", "delete_container"} <= set(
        ids
    )
    rebuilt = create_app(
        "testing", {"SQLALCHEMY_DATABASE_URI": "sqlite://", "REDIS_URL": "redis://x"}
    ).test_client()
    assert rebuilt.get("/openapi.json").get_json() == documents[1]["/openapi.json"]


def test_the_schemas_are_the_validators_own(documents):
    schemas = documents[1]["/openapi.json"]["components"]["schemas"]
    assert schemas["BookWrite"] == BookModel.write_schema
    assert schemas["Book"] == BookModel.read_schema
    assert schemas["Error"] == ERROR_SCHEMA
    assert schemas["Book"]["properties"]["published_year"]["type"] == [
        "integer",
        "null",
    ]
    assert schemas["Loan"]["properties"]["returned_at"]["type"] == ["string", "null"]
    assert schemas["BookWrite"]["additionalProperties"] is False
    assert schemas["BookWrite"]["properties"]["isbn"]["format"] == "isbn"
    # A page's items are the item's own schema, by reference.
    assert schemas["BookPage"]["properties"]["items"]["items"] == {
        "$ref": "#/components/schemas/Book"
    }


def test_every_error_response_is_the_one_error_shape(documents):
    for path, method, operation in operations(documents[1]["/openapi.json"]):
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (path, status)


def test_security_is_bearer_and_public_operations_say_so(documents):
    document = documents[1]["/openapi.json"]
    schemes = document["components"]["securitySchemes"]
    assert {scheme["type"] for scheme in schemes.values()} == {"http"}
    assert {scheme["scheme"] for scheme in schemes.values()} == {"bearer"}
    public = {
        (method, path)
        for path, method, operation in operations(document)
        if operation["security"] == []
    }
    assert public == {
        ("get", "/books/"),
        ("get", "/books/popular"),
        ("get", "/books/{book_id}"),
        ("post", "/users/"),
        ("post", "/users/tokens"),
    }
    refresh = document["paths"]["/users/tokens/refresh"]["post"]
    assert refresh["security"] == [{"refreshToken": []}]


def test_borrowing_takes_an_optional_body(documents):
    borrow = documents[1]["/openapi.json"]["paths"]["/books/{book_id}/loans"]["post"]
    assert borrow["requestBody"]["required"] is False
    assert LoanModel.write_schema["properties"] == {}


def test_the_whole_api_document_carries_the_shared_rules(documents):
    description = documents[1]["/openapi.json"]["info"]["description"]
    with open(os.path.join(ROOT, "docs", "api.md")) as page:
        assert description == page.read().partition("\n")[2].strip()
    for name in FEATURES:
        about = documents[1][f"/{name}/openapi.json"]["info"]["description"]
        assert "description of /openapi.json" in about


def test_every_request_and_response_header_is_described(documents):
    components = documents[1]["/openapi.json"]["components"]
    assert set(components["headers"]) == set(RESPONSE_HEADERS)
    assert set(components["parameters"]) == set(REQUEST_HEADERS)


# --- The pages people read


def test_the_index_is_json_for_programs(client):
    body = client.get("/").get_json()
    assert body["openapi_url"] == "/openapi.json"
    features = {feature["name"]: feature for feature in body["features"]}
    assert features["books"] == {
        "name": "books",
        "description": features["books"]["description"],
        "docs_url": "/books/docs",
        "spec_url": "/books/openapi.json",
        "swagger_url": "/books/swagger.json",
    }


def test_the_index_tells_caches_it_varies_by_accept(client):
    assert "Accept" in client.get("/").headers["Vary"]
    assert "Accept" in client.get("/", headers={"Accept": "text/html"}).headers["Vary"]


def test_the_index_is_a_page_for_browsers(client):
    response = client.get("/", headers={"Accept": "text/html,*/*;q=0.8"})
    assert response.status_code == 200 and response.mimetype == "text/html"
    for name in FEATURES:
        for link in (f"/{name}/docs", f"/{name}/openapi.json"):
            assert f'href="{link}"' in response.text
            assert client.get(link).status_code == 200
    assert 'href="/openapi.json"' in response.text


@pytest.mark.parametrize("name", FEATURES)
def test_each_features_root_is_its_list(app, name):
    """api.FeatureApi keeps Flask-RESTX's root view (a 404) out of every feature: a
    library upgrade that brought it back would shadow each list."""
    endpoint, _ = app.url_map.bind("localhost").match(f"/{name}/", method="GET")
    assert app.view_functions[endpoint].view_class.__name__ != "Api"
    assert f"{name}.root" not in app.view_functions
    assert f"{name}.doc" in app.view_functions


@pytest.mark.parametrize("name", FEATURES)
def test_each_docs_page_starts_swagger_ui_5_on_its_document(client, name):
    page = client.get(f"/{name}/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert "<script>" not in page.text  # no inline script: the CSP allows none
    offered = json.loads(
        page.text.split("data-documents='")[1].split("'")[0].replace("&#34;", '"')
    )
    assert {"name": name, "url": f"/{name}/openapi.json"} in offered
    assert f'data-primary="{name}"' in page.text
    for asset in ("swagger-ui-bundle.js", "swagger-ui-standalone-preset.js"):
        script = client.get(f"/docs/swagger-ui/{asset}")
        assert script.status_code == 200 and script.mimetype == "text/javascript"
    # Swagger UI renders OpenAPI 3.1 from version 5 on.
    assert int(version("flask-swagger-ui").split(".")[0]) >= 5
    init = client.get("/docs/static/swagger-ui-init.js")
    assert init.status_code == 200 and b"persistAuthorization: true" in init.data
    assert b"validatorUrl: null" in init.data  # no call to a third party


def test_a_missing_trailing_slash_is_redirected_in_json(client):
    response = client.get("/books?per_page=5", headers={"Host": "evil.example"})
    assert response.status_code == 308
    assert response.headers["Location"] == "/books/?per_page=5"
    body = response.get_json()
    assert body["code"] == "permanent_redirect" and "/books/" in body["message"]
    assert "evil" not in response.text


def test_browsers_may_read_every_documented_response_header(client):
    origin = "https://app.example.test"
    exposed = client.get("/books/", headers={"Origin": origin}).headers[
        "Access-Control-Expose-Headers"
    ]
    assert {name.strip().lower() for name in exposed.split(",")} == {
        name.lower() for name in RESPONSE_HEADERS
    }
    assert "idempotent-replayed" in exposed.lower()
    preflight = client.options(
        "/books/1/loans",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,idempotency-key,if-match",
        },
    )
    allowed = preflight.headers["Access-Control-Allow-Headers"].lower()
    assert {"authorization", "idempotency-key", "if-match"} <= set(
        part.strip() for part in allowed.split(",")
    )


def test_redocly_config_names_a_reason_for_each_rule_it_switches_off():
    with open(os.path.join(ROOT, "redocly.yaml")) as handle:
        lines = handle.read().splitlines()
    for index, line in enumerate(lines):
        if line.strip().endswith(": off"):
            assert lines[index - 1].strip().startswith("#"), line


def test_node_tools_are_pinned():
    with open(os.path.join(ROOT, "package.json")) as handle:
        pins = json.load(handle)["devDependencies"]
    assert all(version[0].isdigit() for version in pins.values()), pins
    assert {"@redocly/cli", "openapi-typescript", "openapi-fetch"} <= set(pins)


def test_index_lists_each_feature_with_working_links(client):
    response = client.get("/")
    features = {feature["name"]: feature for feature in response.get_json()["features"]}
    assert features["users"]["docs_url"] == "/users/docs"
    assert features["users"]["description"]
    for feature in features.values():
        assert client.get(feature["docs_url"]).status_code == 200
        assert client.get(feature["spec_url"]).status_code == 200


def test_the_swagger_2_spec_stays_for_older_tools(client):
    spec = client.get("/users/swagger.json").get_json()
    assert spec["swagger"] == "2.0" and spec["basePath"] == "/users"
    assert {"User", "Registration", "Error", "TokenPair"} <= set(spec["definitions"])
    assert "$schema" not in client.get("/users/swagger.json").text


def test_documented_operations_share_their_models():
    """Flask-RESTX deep-copies an operation's documentation at each decorator; the
    models in it are shared, not copied (api.SharedModel: 1.4 MiB per worker)."""
    from myapp.books import endpoints

    operation = endpoints.Book.get.__apidoc__["responses"]
    assert operation["429"][1] is endpoints.feature.error_model.swagger
    assert operation["404"][1] is endpoints.feature.error_model.swagger
    assert operation["200"][1] is endpoints.book_model.swagger
