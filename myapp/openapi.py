"""The OpenAPI 3.1 documents: one per feature at /<feature>/openapi.json and one for
the whole API at /openapi.json, built once when the app is made.

They are built from what the code itself declares: the routes each feature
registered (`Feature.route`) and, for each operation, what its decorators in
myapp/api.py recorded (`Operation`): the JSON Schemas its validators use, its
query parameters, the headers it reads and writes, its responses, its security.
OpenAPI 3.1's schemas are JSON Schema 2020-12, the validators' own dialect, so
every schema goes in as it is: nullable types, patterns, formats, bounds and
`additionalProperties: false` all survive.
"""

import json
import os
import re

from flask import Response

from myapp.headers import REQUEST_HEADERS, RESPONSE_HEADERS
from myapp.operations import (
    ERROR_MODEL,
    Model,
    Operation,
    Reply,
    Route,
    operation_id,
    operation_of,
    operations,
    path_parameters,
    path_template,
)
from myapp.idempotency import HEADER as IDEMPOTENCY_KEY

OPENAPI_VERSION = "3.1.0"
API_VERSION = "1.0"
JSON = "application/json"

# The security schemes: an access token for every protected operation, the refresh
# token for POST /users/tokens/refresh, either one for signing out.
SECURITY_SCHEMES = {
    "accessToken": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "The `access_token` from `POST /users/tokens` (15 minutes).",
    },
    "refreshToken": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "The `refresh_token` from `POST /users/tokens`: only "
        "`POST /users/tokens/refresh` and `DELETE /users/tokens/current` take it.",
    },
}
TOKEN_SECURITY = {
    "access": [{"accessToken": []}],
    "refresh": [{"refreshToken": []}],
    "any": [{"accessToken": []}, {"refreshToken": []}],
}

# Settings the documents' prose may name as {NAME}: the text says what this
# deployment does, not what the defaults are.
DOCUMENTED_SETTINGS = ("LOAN_DAYS", "MAX_OPEN_LOANS")
SETTING = re.compile(r"\{(" + "|".join(DOCUMENTED_SETTINGS) + r")\}")


class Document:
    """Builds one OpenAPI document from the routes of one or more features."""

    def __init__(self, models: list[Model], settings: dict):
        self.settings = settings
        self.models = {ERROR_MODEL.name: ERROR_MODEL}
        for model in models:
            known = self.models.setdefault(model.name, model)
            if known.schema is not model.schema and known.schema != model.schema:
                raise ValueError(f"two different schemas are named {model.name!r}")
        # A registered schema found inside another becomes a $ref to it.
        self.by_identity = {id(model.schema): model for model in self.models.values()}

    def build(self, info: dict, tags: list[dict], routes: list[Route]) -> dict:
        paths: dict[str, dict] = {}
        for route, method, view in operations(routes):
            item = paths.setdefault(path_template(route.rule), {})
            item[method] = self.operation(route, method, view)
        # Only the headers, parameters and schemes these operations use.
        used = set(re.findall(r'"#/components/(\w+)/([^"]+)"', json.dumps(paths)))
        schemes = {
            scheme
            for item in paths.values()
            for operation in item.values()
            for option in operation["security"]
            for scheme in option
        }
        return {
            "openapi": OPENAPI_VERSION,
            "info": {"version": API_VERSION, **info},
            "servers": [{"url": "/"}],
            "tags": tags,
            "paths": paths,
            "components": {
                "schemas": {
                    name: self.schema(model.schema, top=True)
                    for name, model in sorted(self.models.items())
                },
                "parameters": {
                    name: {"name": name, "in": "header", "required": False, **header}
                    for name, header in REQUEST_HEADERS.items()
                    if ("parameters", name) in used
                },
                "headers": {
                    name: header
                    for name, header in RESPONSE_HEADERS.items()
                    if ("headers", name) in used
                },
                "securitySchemes": {
                    name: scheme
                    for name, scheme in SECURITY_SCHEMES.items()
                    if name in schemes
                },
            },
        }

    def operation(self, route: Route, method: str, view) -> dict:
        declared = operation_of(view)
        summary, description = summarize(self.prose(view.__doc__ or ""))
        operation = {
            "operationId": operation_id(route.resource, method),
            "tags": [route.tag],
            "summary": summary,
        }
        if description != summary:
            operation["description"] = description
        operation["security"] = TOKEN_SECURITY.get(declared.security, [])
        operation["parameters"] = self.parameters(route, declared)
        if declared.body is not None:
            operation["requestBody"] = {
                "required": declared.body_required,
                "content": {JSON: {"schema": self.ref(declared.body)}},
            }
        operation["responses"] = {
            str(status): self.response(reply)
            for status, reply in declared.replies().items()
        }
        return operation

    def parameters(self, route: Route, declared: Operation) -> list[dict]:
        parameters = path_parameters(route.rule)
        for name, schema in declared.query.items():
            parameter = {"name": name, "in": "query", "required": False}
            if "description" in schema:
                parameter["description"] = schema["description"]
            parameters.append({**parameter, "schema": schema})
        headers = list(declared.headers)
        if declared.idempotent:
            headers.append(IDEMPOTENCY_KEY)
        for name in headers + ["X-Request-ID"]:
            parameters.append({"$ref": f"#/components/parameters/{name}"})
        return parameters

    def response(self, reply: Reply) -> dict:
        response = {
            "description": self.prose(reply.description),
            "headers": {
                name: {"$ref": f"#/components/headers/{name}"} for name in reply.headers
            },
        }
        if reply.model is not None:
            response["content"] = {JSON: {"schema": self.ref(reply.model)}}
        return response

    def prose(self, text: str) -> str:
        return SETTING.sub(lambda match: str(self.settings[match[1]]), text.strip())

    def ref(self, model: Model) -> dict:
        if self.models.get(model.name) is not model:
            raise ValueError(f"the schema {model.name!r} is not registered")
        return {"$ref": f"#/components/schemas/{model.name}"}

    def schema(self, node, top: bool = False):
        """A copy of a JSON Schema in which every registered schema nested in it
        is a $ref (a page's items refer to the item's own schema)."""
        if isinstance(node, dict):
            if not top and id(node) in self.by_identity:
                return self.ref(self.by_identity[id(node)])
            return {key: self.schema(value) for key, value in node.items()}
        if isinstance(node, list):
            return [self.schema(item) for item in node]
        return node


def summarize(docstring: str) -> tuple[str, str]:
    """A docstring's first sentence (the summary), and all of it with each
    paragraph on one line (the description)."""
    paragraphs = [
        " ".join(line.strip() for line in paragraph.splitlines())
        for paragraph in docstring.strip().split("\n\n")
    ]
    first, stop, _ = paragraphs[0].partition(". ")
    return first + stop.strip(), "\n\n".join(paragraphs)


def build(title: str, description: str, features: list, settings: dict) -> dict:
    """The document of these features (each with its models, tags and routes)."""
    models = [model for feature in features for model in feature.models]
    tags = [
        {"name": name, "description": about}
        for feature in features
        for name, about in feature.tags.items()
    ]
    if len({tag["name"] for tag in tags}) != len(tags):
        raise ValueError("two features use the same tag")
    routes = [route for feature in features for route in feature.routes]
    info = {"title": title, "description": description}
    return Document(models, settings).build(info, tags, routes)


WHOLE_API = "myapp"
# The rules every operation shares, in the project's own words: the whole API's
# document carries them as its description, so they travel with every client.
SHARED_RULES = os.path.join(
    os.path.dirname(os.path.dirname(__file__)), "docs", "api.md"
)
SHARED_RULES_ELSEWHERE = (
    "The rules every operation shares (errors, tokens, lists, conditional "
    "requests, Idempotency-Key, rate limits, CORS) are the description of "
    "/openapi.json, the document of the whole API."
)


def shared_rules() -> str:
    """docs/api.md without its title (the document's info has one)."""
    with open(SHARED_RULES, encoding="utf-8") as page:
        title, _, rules = page.read().partition("\n")
    return rules.strip()


class Documents:
    """An app's documents, built and serialized once: each feature's by its name,
    and the whole API's (every operation of every feature) as WHOLE_API."""

    def __init__(self, features: list, config: dict):
        settings = {name: config[name] for name in DOCUMENTED_SETTINGS}
        self.documents = {
            feature.name: build(
                feature.title,
                f"{feature.description}.\n\n{SHARED_RULES_ELSEWHERE}",
                [feature],
                settings,
            )
            for feature in features
        }
        self.documents[WHOLE_API] = build("myapp", shared_rules(), features, settings)
        self.bodies = {
            name: json.dumps(document, indent=1).encode()
            for name, document in self.documents.items()
        }

    def response(self, name: str = WHOLE_API) -> Response:
        return Response(self.bodies[name], content_type=JSON)
