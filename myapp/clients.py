"""Client artifacts generated from the live Swagger specs: a Postman collection (an
auth flow, then every operation with an example body and a test that the status is
one the spec documents) and an api.http file (VS Code REST Client, JetBrains HTTP
Client). `flask --app myapp export-clients` writes both."""

import json
import re

from flask import Flask

POSTMAN_SCHEMA = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
EXAMPLE_IDS = {"uuid": "00000000-0000-4000-8000-000000000000"}


def specs(app: Flask) -> dict[str, dict]:
    """Each feature's spec, as its /<feature>/swagger.json serves it."""
    client = app.test_client()
    return {
        feature["name"]: client.get(feature["spec_url"]).get_json()
        for feature in app.extensions["myapp.features"]
    }


def example(schema: dict, definitions: dict):
    """A value that the schema accepts, for documentation and smoke runs."""
    if "$ref" in schema:
        return example(definitions[schema["$ref"].split("/")[-1]], definitions)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        return {
            name: example(value, definitions)
            for name, value in schema.get("properties", {}).items()
        }
    if kind == "array":
        return [example(schema.get("items", {}), definitions)]
    if kind == "integer":
        return max(schema.get("minimum", 1), 1)
    if kind == "boolean":
        return True
    if kind == "string":
        return example_string(schema)
    return None


def example_string(schema: dict) -> str:
    fmt, pattern = schema.get("format"), schema.get("pattern", "")
    if fmt == "email":
        return "reader@example.com"
    if fmt == "isbn":
        return "9780306406157"
    if fmt == "uuid":
        return EXAMPLE_IDS["uuid"]
    if fmt == "date-time":
        return "2026-01-01T00:00:00Z"
    if "[0-9A-Fa-f]{2}" in pattern:
        return "aa:bb:cc:dd:ee:ff"
    if schema.get("minLength", 0) >= 10:
        return "a long enough example password"
    return "Example"


METHOD_ORDER = ["get", "post", "put", "patch", "delete"]


def operations(spec: dict):
    """(method, path with {{variables}}, operation) for every operation in a spec,
    in a stable order (Flask-RESTX lists a resource's methods from a set)."""
    base = spec["basePath"].rstrip("/")
    for path in sorted(spec["paths"]):
        url_path = re.sub(r"{(\w+)}", r"{{\1}}", base + path)
        methods = spec["paths"][path]
        for method in sorted(set(methods) & set(METHOD_ORDER), key=METHOD_ORDER.index):
            yield method.upper(), url_path, methods[method]


def body_of(operation: dict, definitions: dict):
    for parameter in operation.get("parameters", []):
        if parameter.get("in") == "body":
            return example(parameter["schema"], definitions)
    return None


def documented(operation: dict) -> list[int]:
    return sorted(int(code) for code in operation["responses"] if code.isdigit())


def postman_url(path: str) -> dict:
    return {
        "raw": "{{baseUrl}}" + path,
        "host": ["{{baseUrl}}"],
        "path": [part for part in path.split("/") if part],
    }


def postman_request(method, path, operation, definitions, name=None) -> dict:
    headers = [{"key": "Accept", "value": "application/json"}]
    if operation.get("security"):
        headers.append({"key": "Authorization", "value": "Bearer {{accessToken}}"})
    request = {
        "method": method,
        "header": headers,
        "url": postman_url(path),
    }
    body = body_of(operation, definitions)
    if body is not None:
        headers.append({"key": "Content-Type", "value": "application/json"})
        request["body"] = {"mode": "raw", "raw": json.dumps(body, indent=2)}
    codes = documented(operation)
    test = (
        f"pm.test('{method} {path}: a documented status', function () {{\n"
        f"  pm.expect({json.dumps(codes)}).to.include(pm.response.code);\n}});"
    )
    return {
        "name": name or operation.get("summary") or f"{method} {path}",
        "request": request,
        "event": [{"listen": "test", "script": {"exec": test.splitlines()}}],
    }


def auth_flow() -> dict:
    """Register, sign in (keeping the token), and use the token."""

    def step(name, method, path, body=None, tests=(), auth=False):
        headers = [{"key": "Content-Type", "value": "application/json"}]
        if auth:
            headers.append({"key": "Authorization", "value": "Bearer {{accessToken}}"})
        request = {
            "method": method,
            "header": headers,
            "url": postman_url(path),
        }
        if body is not None:
            request["body"] = {"mode": "raw", "raw": json.dumps(body, indent=2)}
        return {
            "name": name,
            "request": request,
            "event": [{"listen": "test", "script": {"exec": list(tests)}}],
        }

    credentials = {"email": "{{email}}", "password": "{{password}}"}
    return {
        "name": "Auth flow: register, sign in, use the token",
        "item": [
            step(
                "Register",
                "POST",
                "/users/",
                {**credentials, "name": "Postman Reader"},
                [
                    "pm.test('registered', () => pm.response.to.have.status(201));",
                ],
            ),
            step(
                "Sign in",
                "POST",
                "/users/tokens",
                credentials,
                [
                    "pm.test('signed in', () => pm.response.to.have.status(201));",
                    "pm.collectionVariables.set('accessToken',"
                    " pm.response.json().access_token);",
                ],
            ),
            step(
                "Your profile, with the token",
                "GET",
                "/users/me",
                None,
                [
                    "pm.test('it is me', () => {",
                    "  pm.response.to.have.status(200);",
                    "  pm.expect(pm.response.json().email)"
                    ".to.eql(pm.collectionVariables.get('email'));",
                    "});",
                ],
                auth=True,
            ),
        ],
    }


def postman_collection(app: Flask) -> dict:
    folders = [auth_flow()]
    variables = {"baseUrl": "http://127.0.0.1:5000", "accessToken": ""}
    for name, spec in specs(app).items():
        definitions = spec.get("definitions", {})
        items = []
        for method, path, operation in operations(spec):
            for variable in re.findall(r"{{(\w+)}}", path):
                variables.setdefault(variable, EXAMPLE_IDS.get(variable[-4:], "1"))
            items.append(postman_request(method, path, operation, definitions))
        folders.append(
            {"name": name, "description": spec["info"]["description"], "item": items}
        )
    return {
        "info": {
            "name": "myapp",
            "description": "Generated by `flask --app myapp export-clients` from the "
            "/users, /books and /sites Swagger specs. Run the auth flow first.",
            "schema": POSTMAN_SCHEMA,
        },
        "event": [
            {
                "listen": "prerequest",
                "script": {
                    "exec": [
                        "if (!pm.collectionVariables.get('email')) {",
                        "  pm.collectionVariables.set('email',"
                        " 'postman-' + Date.now() + '@example.com');",
                        "  pm.collectionVariables.set('password',"
                        " 'postman password ' + Date.now());",
                        "}",
                    ]
                },
            }
        ],
        "variable": [{"key": key, "value": value} for key, value in variables.items()],
        "item": folders,
    }


def http_file(app: Flask) -> str:
    """api.http: the auth flow, then every operation, with example bodies."""
    lines = [
        "# Generated by `flask --app myapp export-clients`. VS Code REST Client or",
        "# JetBrains HTTP Client: run the first three requests, then any other.",
        "@baseUrl = http://127.0.0.1:5000",
        "@email = http-reader@example.com",
        "@password = a long enough example password",
        "",
        "### Register",
        "POST {{baseUrl}}/users/",
        "Content-Type: application/json",
        "",
        '{"email": "{{email}}", "password": "{{password}}", "name": "HTTP Reader"}',
        "",
        "### Sign in",
        "# @name signIn",
        "POST {{baseUrl}}/users/tokens",
        "Content-Type: application/json",
        "",
        '{"email": "{{email}}", "password": "{{password}}"}',
        "",
        "@accessToken = {{signIn.response.body.access_token}}",
        "",
    ]
    for name, spec in specs(app).items():
        definitions = spec.get("definitions", {})
        for method, path, operation in operations(spec):
            path = re.sub(r"{{(\w+)}}", lambda m: EXAMPLE_IDS.get(m[1][-4:], "1"), path)
            lines.append(f"### {name}: {operation.get('summary', method + ' ' + path)}")
            lines.append(f"{method} {{{{baseUrl}}}}{path}")
            if operation.get("security"):
                lines.append("Authorization: Bearer {{accessToken}}")
            body = body_of(operation, definitions)
            if body is not None:
                lines += ["Content-Type: application/json", "", json.dumps(body)]
            lines.append("")
    return "\n".join(lines)
