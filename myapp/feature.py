"""A feature's declarations: `Feature` carries a feature's blueprint, Api and
namespace, and the decorators that say what each operation reads, writes and
answers (see myapp/api.py for how a Resource method uses them). Each declaration
is recorded once, for the OpenAPI documents (myapp/operations.py), and handed to
Flask-RESTX for the Swagger 2.0 spec that /<feature>/swagger.json keeps serving to
older tools."""

from dataclasses import dataclass, field

from flask import Blueprint
from flask_restx import Api, Namespace, SchemaModel

from myapp import auth, idempotency
from myapp.errors import STATUSES
from myapp.headers import REQUEST_HEADERS
from myapp.operations import ERROR_MODEL, Model, Reply, Route, operation_of
from myapp.pagination import QueryParams


class SharedModel(SchemaModel):
    """A Swagger model that Flask-RESTX's documentation decorators share rather than
    deep-copy: each `ns.response`/`ns.doc` merge copied every model already on the
    operation, the Error model once per documented status of every endpoint (1.4 MiB
    of each worker, bench/ANALYSIS.md). A model is never changed once made."""

    def __deepcopy__(self, memo):
        return self


@dataclass(frozen=True)
class DocumentedModel(Model):
    """A named JSON Schema, and the Swagger 2.0 model Flask-RESTX made of it."""

    swagger: SchemaModel = field(compare=False, repr=False, default=None)


@dataclass
class Feature:
    name: str
    title: str
    description: str
    tags: dict[str, str]
    blueprint: Blueprint
    api: Api  # myapp.api.FeatureApi
    ns: Namespace
    models: list[Model] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)

    def __post_init__(self):
        self.error_model = self.model(ERROR_MODEL.name, ERROR_MODEL.schema)

    def model(self, name: str, schema: dict) -> DocumentedModel:
        """Register a JSON Schema as a documented model (the same dict validates)."""
        swagger = self.api.add_model(name, SharedModel(name, swagger_schema(schema)))
        model = DocumentedModel(name, schema, swagger)
        self.models.append(model)
        return model

    def route(self, path: str, tag: str | None = None):
        """ns.route, recorded for the OpenAPI documents under `tag` (the feature's
        name by default), with the errors any operation can meet."""
        if (tag or self.name) not in self.tags:
            raise ValueError(f"undeclared tag {tag!r} for {path}")
        route = self.ns.route(path)

        def decorate(resource):
            for method in resource.methods:
                self.errors(429, 503)(getattr(resource, method.lower()))
            self.routes.append(
                Route(self.blueprint.url_prefix + path, resource, tag or self.name)
            )
            return route(resource)

        return decorate

    def response(self, status: int, description: str, model=None, headers=()):
        """A response other than an error: its status, meaning, body and headers."""

        def decorate(method):
            operation_of(method).responses[status] = Reply(
                description, model, tuple(headers)
            )
            swagger = model.swagger if model is not None else None
            return self.ns.response(status, description, swagger)(method)

        return decorate

    def errors(self, *statuses: int):
        """Error responses, each with the one error shape."""

        def decorate(method):
            operation_of(method).error(*statuses)
            for status in statuses:
                description = STATUSES[status].description
                method = self.ns.response(
                    status, description, self.error_model.swagger
                )(method)
            return method

        return decorate

    def expects(self, model: DocumentedModel, *, required: bool = True):
        """A JSON request body (optional unless `required`), and the errors reading
        it can give."""

        def decorate(method):
            operation = operation_of(method)
            operation.body, operation.body_required = model, required
            method = self.ns.expect(model.swagger)(method)
            return self.errors(400, 413, 415)(method)

        return decorate

    def query(self, params: QueryParams):
        """Query parameters (every one optional); a bad one is a 400."""

        def decorate(method):
            operation_of(method).query = params.schema["properties"]
            method = self.ns.doc(params=params.swagger_params())(method)
            return self.errors(400)(method)

        return decorate

    def reads_header(self, *names: str):
        """Request headers the operation honours (see openapi.REQUEST_HEADERS)."""

        def decorate(method):
            operation_of(method).headers.extend(names)
            swagger = {
                name: {"in": "header", "type": "string", **doc_of(name)}
                for name in names
            }
            return self.ns.doc(params=swagger)(method)

        return decorate

    def requires(self, role: str = "member", *, token: str = "access"):
        """auth.requires, documented: the token it takes, 401, and 403 where a role
        above member is needed."""
        statuses = (401, 403) if role != "member" else (401,)

        def decorate(method):
            guarded = auth.requires(role, token=token)(method)
            operation_of(guarded).security = token
            documented = self.ns.doc(security="bearer")(guarded)
            return self.errors(*statuses)(documented)

        return decorate

    def idempotent(self, method):
        """Honours Idempotency-Key (myapp.idempotency), documented."""
        guarded = idempotency.idempotent(method)
        operation_of(guarded).idempotent = True
        return self.ns.doc(params=idempotency.SWAGGER_PARAMS)(guarded)

    # The named stacks: what a list, a conditional read and the writes answer.

    def lists(self, model: DocumentedModel, params: QueryParams, description: str):
        """A page of a collection, with its Link header."""

        def decorate(method):
            method = self.query(params)(method)
            return self.response(200, description, model, ["Link"])(method)

        return decorate

    def reads(self, model: DocumentedModel, description: str, *, missing=True):
        """A conditional read: 200 with an ETag, 304 for a current If-None-Match,
        404 when it does not exist (unless it always does)."""

        def decorate(method):
            method = self.reads_header("If-None-Match")(method)
            method = self.response(200, description, model, ["ETag"])(method)
            method = self.response(
                304, "Not modified: your copy is current", None, ["ETag"]
            )(method)
            return self.errors(404)(method) if missing else method

        return decorate

    def creates(self, model: DocumentedModel, description: str):
        """201 with the new resource, its ETag and its Location."""
        return self.response(201, description, model, ["ETag", "Location"])

    def updates(self, model: DocumentedModel, description: str, *, missing=True):
        """A conditional write: If-Match (412 when stale), 200 with the new ETag,
        404 when it does not exist (unless it always does)."""

        def decorate(method):
            method = self.reads_header("If-Match")(method)
            method = self.response(200, description, model, ["ETag"])(method)
            method = self.errors(412)(method)
            return self.errors(404)(method) if missing else method

        return decorate

    def deletes(self, description: str):
        """A conditional delete: If-Match (412 when stale), 204, 404."""

        def decorate(method):
            method = self.reads_header("If-Match")(method)
            method = self.response(204, description)(method)
            return self.errors(404, 412)(method)

        return decorate


def doc_of(header: str) -> dict:
    return {"description": REQUEST_HEADERS[header]["description"]}


def swagger_schema(schema: dict) -> dict:
    """A JSON Schema as Swagger 2.0 accepts it: a nullable type written as
    x-nullable (the OpenAPI 3.1 documents keep the schema as it is)."""
    if isinstance(schema, list):
        return [swagger_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {key: swagger_schema(value) for key, value in schema.items()}
    kind = converted.get("type")
    if isinstance(kind, list) and "null" in kind:
        others = [item for item in kind if item != "null"]
        converted["type"] = others[0] if len(others) == 1 else others
        converted["x-nullable"] = True
    return converted
