"""List endpoints: page/per_page/sort/filter parsing, the envelope, RFC 8288 Links.

An endpoint declares its query parameters once (`QueryParams`, or `ListParams` for
lists); the same object documents them in Swagger and parses them.
"""

import math
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from flask import current_app, request

from myapp.errors import bad_request
from myapp.schema import problems

# ASCII digits only (str.isdigit() and int() also take '²' or other scripts'
# digits), and few enough that int() and the database take them.
INTEGER = re.compile(r"-?[0-9]{1,18}")
DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 100
# Far past any real last page; exact in JavaScript, and its offset fits every database.
MAX_PAGE = 2**53 - 1
PAGING_PARAMS = {
    "page": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 1},
    "per_page": {
        "type": "integer",
        "minimum": 1,
        "maximum": MAX_PER_PAGE,
        "default": DEFAULT_PER_PAGE,
    },
}


@dataclass(frozen=True)
class ListQuery:
    page: int
    per_page: int
    sort: str
    descending: bool
    filters: dict[str, Any] = field(default_factory=dict)

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page


class QueryParams:
    """An endpoint's query parameters, declared once as JSON Schemas by name: the
    same declaration documents them in Swagger and parses them, rejecting unknown,
    repeated and invalid parameters with a 400 listing every problem."""

    def __init__(self, properties: dict[str, dict]):
        self.schema = {
            "type": "object",
            "properties": properties,
            "additionalProperties": False,
        }

    def swagger_params(self) -> dict:
        """Swagger 2.0 query parameter docs, for @ns.doc(params=...)."""
        return {
            name: {"in": "query", **schema}
            for name, schema in self.schema["properties"].items()
        }

    def parse(self) -> dict[str, Any]:
        values, errors = {}, []
        for name in request.args:
            raw_values = request.args.getlist(name)
            if len(raw_values) > 1:
                errors.append({"field": name, "problem": "is given more than once"})
                continue
            values[name] = self._typed(name, raw_values[0])
        errors += problems(self.schema, values)
        if errors:
            raise bad_request("Invalid query parameters", errors)
        return values

    def _typed(self, name: str, raw: str) -> Any:
        """Query strings are text; convert to the declared type when it parses, and
        leave the text for the schema to reject when it does not."""
        kind = self.schema["properties"].get(name, {}).get("type")
        if kind == "integer" and INTEGER.fullmatch(raw):
            return int(raw)
        if kind == "boolean" and raw in ("true", "false"):
            return raw == "true"
        return raw


class ListParams(QueryParams):
    """The query parameters of a list endpoint: paging, a whitelisted sort, and the
    endpoint's filters (name -> JSON Schema of the value)."""

    def __init__(self, sortable: list[str], default_sort: str, filters=None):
        self.sortable = sortable
        self.default_sort = default_sort
        sort_values = [f"{prefix}{name}" for name in sortable for prefix in ("", "-")]
        sort = {
            "type": "string",
            "enum": sort_values,
            "default": default_sort,
            "description": f"One of {', '.join(sortable)}; '-' descends",
        }
        super().__init__({**PAGING_PARAMS, "sort": sort, **(filters or {})})

    def parse(self) -> ListQuery:
        values = super().parse()
        sort = values.pop("sort", self.default_sort)
        return ListQuery(
            page=values.pop("page", 1),
            per_page=values.pop("per_page", DEFAULT_PER_PAGE),
            sort=sort.lstrip("-"),
            descending=sort.startswith("-"),
            filters=values,
        )


def page_response(items: list[dict], total: int, query: ListQuery):
    """The list envelope with its Link header, as a Resource return value."""
    body = {
        "items": items,
        "page": query.page,
        "per_page": query.per_page,
        "total": total,
    }
    return body, 200, {"Link": link_header(query.page, query.per_page, total)}


def link_header(page: int, per_page: int, total: int) -> str:
    last = max(1, math.ceil(total / per_page))
    targets = {"first": 1}
    if page > 1:
        targets["prev"] = min(page - 1, last)
    if page < last:
        targets["next"] = page + 1
    targets["last"] = last
    return ", ".join(
        f'<{_page_url(number)}>; rel="{rel}"' for rel, number in targets.items()
    )


def _page_url(page: int) -> str:
    """On PUBLIC_BASE_URL when it is set, else on the request's host (which
    TRUSTED_HOSTS vouches for)."""
    args = [(key, value) for key, value in request.args.items(multi=True)]
    args = [(key, value) for key, value in args if key != "page"] + [("page", page)]
    base = current_app.config.get("PUBLIC_BASE_URL") or request.host_url.rstrip("/")
    return f"{base}{request.path}?{urlencode(args)}"


def list_schema(item_schema: dict) -> dict:
    """The JSON Schema of a page of `item_schema` items."""
    return {
        "title": f"{item_schema.get('title', 'Item')}Page",
        "type": "object",
        "additionalProperties": False,
        "required": ["items", "page", "per_page", "total"],
        "properties": {
            "items": {"type": "array", "items": item_schema},
            "page": {"type": "integer", "minimum": 1},
            "per_page": {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE},
            "total": {"type": "integer", "minimum": 0},
        },
    }
