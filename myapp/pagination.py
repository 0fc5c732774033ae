"""List endpoints: page/cursor/per_page/sort/filter parsing, the envelope, RFC 8288
Links.

An endpoint declares its query parameters once (`QueryParams`, or `ListParams` for
lists); the same object documents them in Swagger and parses them.

A page is named by its number, or by a cursor: the `next` Link of each page
carries one, which names the sort values of that page's last row, so the next
page is read from there (myapp/ordering.py) and costs the same at any depth. A
cursor is signed with SECRET_KEY and names its list and sort: a forged or altered
one, or one from another list or sort, is a 400.
"""

import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from flask import current_app, request
from itsdangerous import BadSignature, URLSafeSerializer

from myapp.errors import bad_request
from myapp.schema import problems, quoted

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


CURSOR = {
    "type": "string",
    # The longest a cursor gets: a 300-character title of \uXXXX escapes, signed.
    "maxLength": 4000,
    "description": "Where a page starts: the `cursor` of the `next` Link of the page "
    "before it (every page costs the same, however deep). With `page`, both must "
    "name the same page.",
}


@dataclass(frozen=True)
class ListQuery:
    page: int
    per_page: int
    sort: str
    descending: bool
    filters: dict[str, Any] = field(default_factory=dict)
    after: tuple | None = None  # a cursor's sort values of the previous page's end

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page

    @property
    def sort_param(self) -> str:
        return ("-" if self.descending else "") + self.sort


@dataclass
class Page:
    """One page of a list: its items, the true total, and the sort values of its
    last item (where the next page starts) when it is full."""

    items: list
    total: int
    last: tuple | None = None

    def json(self, as_json) -> "Page":
        return Page([as_json(item) for item in self.items], self.total, self.last)


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
                problem = "is given more than once"
                errors.append({"field": quoted(name), "problem": problem})
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

    def __init__(
        self, sortable: list[str], default_sort: str, filters=None, *, cursors=True
    ):
        """`cursors`: whether pages can be named by cursor (lists read from SQL)."""
        self.sortable = sortable
        self.default_sort = default_sort
        sort_values = [f"{prefix}{name}" for name in sortable for prefix in ("", "-")]
        sort = {
            "type": "string",
            "enum": sort_values,
            "default": default_sort,
            "description": f"One of {', '.join(sortable)}; '-' descends",
        }
        paging = {**PAGING_PARAMS, **({"cursor": CURSOR} if cursors else {})}
        super().__init__({**paging, "sort": sort, **(filters or {})})

    def parse(self) -> ListQuery:
        values = super().parse()
        sort = values.pop("sort", self.default_sort)
        page, after = values.pop("page", None), None
        if "cursor" in values:
            page, after = read_cursor(values.pop("cursor"), sort, page)
        return ListQuery(
            page=page or 1,
            per_page=values.pop("per_page", DEFAULT_PER_PAGE),
            sort=sort.lstrip("-"),
            descending=sort.startswith("-"),
            filters=values,
            after=after,
        )


def cursor_signer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.secret_key, salt="myapp.pagination.cursor")


def make_cursor(query: ListQuery, last: tuple) -> str:
    """The cursor of the page after `query`'s, which ended on a row with the sort
    values `last`."""
    after = [
        {"datetime": v.isoformat()} if isinstance(v, datetime) else v for v in last
    ]
    return cursor_signer().dumps(
        {"list": request.path, "sort": query.sort_param, "page": query.page + 1}
        | {"after": after}
    )


def read_cursor(text: str, sort: str, page: int | None) -> tuple[int, tuple]:
    """The page a cursor names and the sort values it starts after; a 400 for one
    this list did not give in this sort, or a `page` that names another page."""
    try:
        cursor = cursor_signer().loads(text)
    except BadSignature:
        cursor = None
    if not isinstance(cursor, dict) or set(cursor) != {"list", "sort", "page", "after"}:
        raise bad_cursor("is not a cursor this API gave")
    if cursor["list"] != request.path or cursor["sort"] != sort:
        raise bad_cursor("belongs to another list or sort")
    if page is not None and page != cursor["page"]:
        raise bad_request(
            "Invalid query parameters",
            [{"field": "page", "problem": "is not the page the cursor names"}],
        )
    after = tuple(
        datetime.fromisoformat(v["datetime"]) if isinstance(v, dict) else v
        for v in cursor["after"]
    )
    return cursor["page"], after


def bad_cursor(problem: str):
    return bad_request(
        "Invalid query parameters", [{"field": "cursor", "problem": problem}]
    )


def page_response(page: Page, query: ListQuery):
    """The list envelope (of JSON items) with its Link header, as a Resource return
    value. Its `next` Link carries the cursor of the next page (lists that give
    one) as well as its number."""
    body = {
        "items": page.items,
        "page": query.page,
        "per_page": query.per_page,
        "total": page.total,
    }
    # Signed only when there is a next page for it to lead to.
    more = query.page * query.per_page < page.total
    cursor = make_cursor(query, page.last) if more and page.last else None
    link = link_header(query.page, query.per_page, page.total, cursor)
    return body, 200, {"Link": link}


def link_header(page: int, per_page: int, total: int, cursor: str | None = None):
    last = max(1, math.ceil(total / per_page))
    targets = {"first": (1, None)}
    if page > 1:
        targets["prev"] = (min(page - 1, last), None)
    if page < last:
        targets["next"] = (page + 1, cursor)
    targets["last"] = (last, None)
    return ", ".join(
        f'<{_page_url(*target)}>; rel="{rel}"' for rel, target in targets.items()
    )


def _page_url(page: int, cursor: str | None) -> str:
    """On PUBLIC_BASE_URL when it is set, else on the request's host (which
    TRUSTED_HOSTS vouches for)."""
    args = [(key, value) for key, value in request.args.items(multi=True)]
    args = [(key, value) for key, value in args if key not in ("page", "cursor")]
    args += [("page", page)] + ([("cursor", cursor)] if cursor else [])
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
