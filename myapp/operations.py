"""What each operation declares about itself (`Operation`), recorded by the
decorators of myapp/api.py on the view function, and the routes they are found at:
the material of the OpenAPI documents (myapp/openapi.py) and of the contract
tests."""

import re
from dataclasses import dataclass, field

from myapp.errors import ERROR_SCHEMA, STATUSES
from myapp.headers import ERROR_HEADERS, EVERY_RESPONSE
from myapp.schema import ID

METHODS = ("get", "put", "post", "patch", "delete")


@dataclass(frozen=True)
class Model:
    """A named JSON Schema: a request or response body."""

    name: str
    schema: dict


ERROR_MODEL = Model("Error", ERROR_SCHEMA)


@dataclass
class Reply:
    """One documented response of an operation."""

    description: str
    model: Model | None = None
    headers: tuple[str, ...] = ()


@dataclass
class Operation:
    """What an operation declares about itself, recorded by api.py's decorators."""

    security: str | None = None  # a TOKEN_SECURITY key; None: public
    body: Model | None = None
    body_required: bool = True
    query: dict[str, dict] = field(default_factory=dict)
    headers: list[str] = field(default_factory=list)  # REQUEST_HEADERS it reads
    responses: dict[int, Reply] = field(default_factory=dict)
    idempotent: bool = False

    def error(self, *statuses: int) -> None:
        for status in statuses:
            self.responses[status] = Reply(
                STATUSES[status].description, ERROR_MODEL, ERROR_HEADERS.get(status, ())
            )

    def replies(self) -> dict[int, Reply]:
        """The responses with what every one carries; for an idempotent write,
        those its view answers can be replayed (not the refusals before it)."""
        replies = {}
        for status, reply in sorted(self.responses.items()):
            headers = EVERY_RESPONSE + reply.headers
            if self.idempotent and status < 500 and status not in (401, 403, 429):
                headers += ("Idempotent-Replayed",)
                if status == 409:
                    headers += ("Retry-After",)
            replies[status] = Reply(reply.description, reply.model, headers)
        return replies


def operation_of(function) -> Operation:
    """The Operation a view function's decorators record into (created on first use;
    functools.wraps carries it to every wrapper)."""
    if "openapi" not in function.__dict__:
        function.openapi = Operation()
    return function.openapi


@dataclass(frozen=True)
class Route:
    """A resource at a Flask URL rule (such as /books/<int:book_id>), under a tag."""

    rule: str
    resource: type
    tag: str


RULE_PARAMETER = re.compile(r"<(?:(\w+):)?(\w+)>")
PATH_SCHEMAS = {
    "int": ID,
    "string": {"type": "string", "minLength": 1, "pattern": "^[^/]+$"},
}


def path_template(rule: str) -> str:
    """/books/<int:book_id> -> /books/{book_id}"""
    return RULE_PARAMETER.sub(r"{\2}", rule)


def path_parameters(rule: str) -> list[dict]:
    return [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": PATH_SCHEMAS[converter or "string"],
        }
        for converter, name in RULE_PARAMETER.findall(rule)
    ]


def operation_id(resource: type, method: str) -> str:
    """get_book, post_book_loans: the method and the resource's name in snake case
    (the ids Flask-RESTX gives the same operations in swagger.json)."""
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", resource.__name__).lower()
    return f"{method}_{snake}"


def operations(routes: list[Route]):
    """(route, method, view function) for every operation, in a stable order."""
    for route in routes:
        for method in METHODS:
            if method.upper() in route.resource.methods:
                yield route, method, getattr(route.resource, method)
