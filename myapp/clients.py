"""The client artifacts in clients/, made from the client flow (myapp/flow.py) and
the app's OpenAPI document of the whole API: each step's method, path and security
come from its operation there. `flask --app myapp export-clients` writes both:

- myapp.postman_collection.json (Postman, newman): every request asserts the status
  its step must get, and keeps what later steps use (ids, ETags, tokens);
- api.http (VS Code REST Client): the same requests, each later one reading what it
  needs from the earlier responses.
"""

import json
import re

from flask import Flask

from myapp.flow import FLOW
from myapp.steps import GENERATED, TOKENS, VARIABLES, Number, Step
from myapp.openapi import WHOLE_API

POSTMAN_SCHEMA = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
VARIABLE = re.compile(r"{{(\w+)}}")


def document(app: Flask) -> dict:
    return app.extensions["myapp.openapi"].documents[WHOLE_API]


def operations(document: dict) -> dict[str, tuple[str, str, dict]]:
    """operationId -> (method, path template, operation)."""
    return {
        operation["operationId"]: (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }


def request_of(step: Step, document: dict) -> tuple[str, str, list[tuple[str, str]]]:
    """The step's method, its URL path with the path parameters filled in, and its
    headers."""
    method, template, operation = operations(document)[step.operation]
    path = re.sub(r"{(\w+)}", lambda match: str(step.path[match[1]]), template)
    if step.query:
        path += "?" + "&".join(f"{key}={value}" for key, value in step.query.items())
    headers = [("Accept", "application/json")]
    if step.actor:
        headers.append(("Authorization", f"Bearer {{{{{TOKENS[step.actor]}}}}}"))
    if step.body is not None:
        headers.append(("Content-Type", "application/json"))
    return method, path, headers + list(step.headers.items())


def body_text(body: dict, indent: int | None = None) -> str:
    """The JSON of a step's body; a Number is its {{variable}}, unquoted."""
    marked = {
        key: f"\0{value.variable}" if isinstance(value, Number) else value
        for key, value in body.items()
    }
    return re.sub(r'"\\u0000(\w+)"', r"{{\1}}", json.dumps(marked, indent=indent))


# --- Postman


def javascript_path(field: str) -> str:
    """items.0.id -> .items[0].id"""
    return "".join(
        f"[{part}]" if part.isdigit() else f".{part}" for part in field.split(".")
    )


def postman_tests(step: Step) -> list[str]:
    lines = [
        f"pm.test({json.dumps(f'{step.name}: {step.expect}')}, function () {{",
        f"  pm.response.to.have.status({step.expect});",
        "});",
    ]
    if step.replayed:
        lines += [
            "pm.test('replayed', function () {",
            "  const replayed = pm.response.headers.get('Idempotent-Replayed');",
            "  pm.expect(replayed).to.eql('true');",
            "});",
        ]
    for variable, source in step.keep.items():
        if source.startswith("header:"):
            value = f"pm.response.headers.get({json.dumps(source[len('header:'):])})"
        else:
            value = f"pm.response.json(){javascript_path(source)}"
        lines.append(f"pm.collectionVariables.set({json.dumps(variable)}, {value});")
    return lines


# The first step makes the values each run needs new (emails, an ISBN, a MAC).
FRESH_VALUES = [
    "const keep = (name, value) => pm.collectionVariables.set(name, value);",
    "const stamp = Date.now();",
    "keep('memberEmail', 'flow-member-' + stamp + '@example.com');",
    "keep('readerEmail', 'flow-reader-' + stamp + '@example.com');",
    "const digits = '978' + String(Math.floor(Math.random() * 1e9)).padStart(9, '0');",
    "let sum = 0;",
    "for (let i = 0; i < 12; i++) sum += Number(digits[i]) * (i % 2 ? 3 : 1);",
    "keep('isbn', digits + ((10 - (sum % 10)) % 10));",
    "const octet = () => Math.floor(Math.random() * 256).toString(16);",
    "const mac = [2, 0, 0, 0, 0, 0].map((n, i) => (i ? octet() : '02'));",
    "keep('mac', mac.map((part) => part.padStart(2, '0')).join(':'));",
]


def postman_item(step: Step, document: dict, first: bool) -> dict:
    method, path, headers = request_of(step, document)
    url_path, _, query = path.partition("?")
    url = {
        "raw": "{{baseUrl}}" + path,
        "host": ["{{baseUrl}}"],
        "path": url_path.split("/")[1:],  # a trailing slash: a last "" part
    }
    if query:
        url["query"] = [
            dict(zip(("key", "value"), pair.split("=", 1))) for pair in query.split("&")
        ]
    request = {
        "method": method,
        "header": [{"key": key, "value": value} for key, value in headers],
        "url": url,
    }
    if step.body is not None:
        request["body"] = {"mode": "raw", "raw": body_text(step.body, indent=2)}
    events = [{"listen": "test", "script": {"exec": postman_tests(step)}}]
    if first:
        events.insert(0, {"listen": "prerequest", "script": {"exec": FRESH_VALUES}})
    return {"name": f"{step.name} ({step.expect})", "request": request, "event": events}


def postman_collection(app: Flask) -> dict:
    spec = document(app)
    variables = {**VARIABLES, **{token: "" for token in TOKENS.values()}}
    return {
        "info": {
            "name": "myapp",
            "description": "Generated by `flask --app myapp export-clients` from "
            "/openapi.json: a flow through every operation of the API, each request "
            "asserting the status its step must get. Run it in order; it signs in "
            "as {{adminEmail}} (the demo admin of `make run` by default).",
            "schema": POSTMAN_SCHEMA,
        },
        "variable": [{"key": key, "value": value} for key, value in variables.items()],
        "item": [
            postman_item(step, spec, first=index == 0)
            for index, step in enumerate(FLOW)
        ],
    }


# --- api.http


def http_file(app: Flask) -> str:
    """The flow for VS Code's REST Client: each request is named, and a variable an
    earlier step kept is read from that step's response where it is used."""
    spec = document(app)
    lines = [
        "# Generated by `flask --app myapp export-clients` from /openapi.json: a flow",
        "# through every operation, for VS Code's REST Client. Send the requests in",
        "# order against `make run` (it signs in as the demo admin); each comment",
        "# says the status that request must get.",
    ]
    lines += [f"@{name} = {value}" for name, value in VARIABLES.items()]
    lines.append(
        "# New on every run in the Postman collection; here change them by hand to "
        f"run the flow again: {', '.join(GENERATED)}."
    )
    kept: dict[str, str] = {}
    for index, step in enumerate(FLOW, start=1):
        method, path, headers = request_of(step, spec)
        name = f"step{index}"
        request = [f"{method} {{{{baseUrl}}}}{path}"]
        request += [f"{key}: {value}" for key, value in headers]
        if step.body is not None:
            request += ["", body_text(step.body)]
        lines += ["", f"### {step.name}: expect {step.expect}", f"# @name {name}"]
        lines += [resolve(line, kept) for line in request]
        for variable, source in step.keep.items():
            kept[variable] = response_reference(name, source)
    return "\n".join(lines)


def response_reference(request_name: str, source: str) -> str:
    if source.startswith("header:"):
        return f"{{{{{request_name}.response.headers.{source[len('header:'):]}}}}}"
    return f"{{{{{request_name}.response.body.${javascript_path(source)}}}}}"


def resolve(line: str, kept: dict[str, str]) -> str:
    return VARIABLE.sub(lambda match: kept.get(match[1], match[0]), line)
