"""One factory for every feature's blueprint, Api and namespace.

`make_api("books", title, description)` gives a uniquely named blueprint mounted at
/books, its Swagger UI at /books/docs and spec at /books/swagger.json, errors in our
one shape, and helpers that document models, errors and auth the same way everywhere.
"""

from copy import deepcopy
from dataclasses import dataclass, field

import flask_restx
from flask import Blueprint, Response, request
from flask_restx import Api, Namespace, SchemaModel
from werkzeug.routing import IntegerConverter

from myapp import auth
from myapp.db import SAFE_METHODS, commit
from myapp.errors import ERROR_SCHEMA, error_response
from myapp.schema import MAX_ID

BEARER = "bearer"
AUTHORIZATIONS = {
    BEARER: {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "'Bearer <access token>', from POST /users/tokens",
    }
}
ERROR_DESCRIPTIONS = {
    400: "Invalid request: validation_error (body) or bad_request (JSON, query)",
    401: "unauthorized: missing, invalid, expired or revoked token, or bad credentials",
    403: "forbidden: the caller's role may not do this",
    404: "not_found",
    409: "conflict",
    412: "precondition_failed: If-Match does not match the current ETag",
    413: "payload_too_large: body over MAX_CONTENT_LENGTH",
    415: "unsupported_media_type: the body is not application/json",
    429: "rate_limited: see Retry-After",
    500: "internal_error",
    503: "service_unavailable: the database or Redis is unreachable",
}


class DatabaseIdConverter(IntegerConverter):
    """`<int:...>` in every route: ids past MAX_ID cannot exist, so they are a 404
    at routing rather than an overflow in the database."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


class FeatureApi(Api):
    def _register_doc(self, app_or_blueprint):
        # Flask-RESTX also registers a "root" view at the blueprint's "/" that answers
        # 404 and shadows the feature's own list route; register only the docs page.
        if self._add_specs and self._doc:
            app_or_blueprint.add_url_rule(self._doc, "doc", self.render_doc)

    # ...and so its base path and URL come from the blueprint, not that view.
    @property
    def base_path(self):
        return f"{self.blueprint.url_prefix}/"

    @property
    def base_url(self):
        return request.host_url.rstrip("/") + self.base_path

    def handle_error(self, e):
        return error_response(e)


class Resource(flask_restx.Resource):
    """Commits once per request, after the handler succeeded: an exception anywhere
    before that leaves the session to be rolled back, so a failed request writes
    nothing. Work that must follow the commit (revoking sessions in Redis) is queued
    with `after_commit`."""

    def dispatch_request(self, *args, **kwargs):
        response = super().dispatch_request(*args, **kwargs)
        if request.method not in SAFE_METHODS:
            commit()
        return response


class SharedModel(SchemaModel):
    """A Swagger model that Flask-RESTX's documentation decorators share rather than
    deep-copy: each `ns.response`/`ns.doc` merge copied every model already on the
    operation, the Error model once per documented status of every endpoint (1.4 MiB
    of each worker, bench/ANALYSIS.md). A model is never changed once made."""

    def __deepcopy__(self, memo):
        return self


@dataclass
class Feature:
    name: str
    title: str
    description: str
    blueprint: Blueprint
    api: FeatureApi
    ns: Namespace
    error_model: object = field(init=False)

    def __post_init__(self):
        self.error_model = self.model("Error", ERROR_SCHEMA)

    def model(self, name: str, schema: dict):
        """Register a JSON Schema as a Swagger model (the same dict validates)."""
        return self.api.add_model(name, SharedModel(name, swagger_schema(schema)))

    def route(self, path: str):
        """ns.route, plus the errors any operation can meet."""
        route = self.ns.route(path)

        def decorate(resource):
            return route(self.errors(429, 500, 503)(resource))

        return decorate

    def errors(self, *statuses: int):
        """Document error responses, each with the Error model."""

        def decorate(target):
            for status in statuses:
                description = ERROR_DESCRIPTIONS[status]
                target = self.ns.response(status, description, self.error_model)(target)
            return target

        return decorate

    def expects(self, model):
        """Document a JSON request body and the errors reading it can give."""

        def decorate(method):
            return self.ns.expect(model)(self.errors(400, 413, 415)(method))

        return decorate

    def requires(self, role: str = "member", *, token: str = "access"):
        """auth.requires, documented: the bearer scheme, 401, and 403 where a role
        above member is needed."""
        statuses = (401, 403) if role != "member" else (401,)

        def decorate(method):
            guarded = auth.requires(role, token=token)(method)
            documented = self.ns.doc(security=BEARER)(guarded)
            return self.errors(*statuses)(documented)

        return decorate


def make_api(name: str, title: str, description: str) -> Feature:
    blueprint = Blueprint(name, __name__, url_prefix=f"/{name}")
    api = FeatureApi(
        blueprint,
        title=title,
        description=description,
        version="1.0",
        doc="/docs",
        authorizations=AUTHORIZATIONS,
    )
    ns = Namespace(name, description=description, path="/")
    api.add_namespace(ns)
    blueprint.record_once(
        lambda state: state.app.extensions.setdefault("myapp.features", []).append(
            {
                "name": name,
                "description": description,
                "docs_url": f"/{name}/docs",
                "spec_url": f"/{name}/swagger.json",
            }
        )
    )
    return Feature(name, title, description, blueprint, api, ns)


def swagger_schema(schema: dict) -> dict:
    """A JSON Schema as Swagger 2.0 accepts it: no $schema/$id, and a nullable type
    written as x-nullable."""
    converted = deepcopy(schema)
    _to_swagger(converted)
    return converted


def _to_swagger(node) -> None:
    if isinstance(node, list):
        for item in node:
            _to_swagger(item)
        return
    if not isinstance(node, dict):
        return
    node.pop("$schema", None)
    node.pop("$id", None)
    kind = node.get("type")
    if isinstance(kind, list) and "null" in kind:
        others = [item for item in kind if item != "null"]
        node["type"] = others[0] if len(others) == 1 else others
        node["x-nullable"] = True
    for value in node.values():
        _to_swagger(value)


def no_content() -> Response:
    """204 with no body (a Resource returning "" would send a JSON string). It keeps
    the API's media type: Swagger 2.0 declares `produces` per operation, not per
    status, so a 204 without one would contradict the spec."""
    return Response(status=204, content_type="application/json")
