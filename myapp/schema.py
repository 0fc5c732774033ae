"""JSON Schema validation, compiled once per schema, reporting every problem.

The same schema dicts validate request bodies and become the Swagger models
(myapp/api.py), so what the docs promise is what the server enforces.
"""

import json
import re
from functools import cache
from typing import Any

from flask import g, request
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError
from werkzeug.exceptions import RequestEntityTooLarge

from myapp.errors import ApiError

FORMAT_CHECKER = Draft202012Validator.FORMAT_CHECKER


@cache
def ecma_regex(pattern: str) -> re.Pattern:
    r"""JSON Schema patterns are ECMA-262, where `$` is the end of the input; in
    Python it also matches before a final newline ("ab\n" would pass "^ab$").
    Translate each unescaped `$` outside a character class to `\Z`."""
    translated, escaped, in_class = [], False, False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "[":
            in_class = True
        elif char == "]":
            in_class = False
        elif char == "$" and not in_class:
            char = r"\Z"
        translated.append(char)
    return re.compile("".join(translated))


def ecma_pattern(validator, pattern, instance, schema):
    if validator.is_type(instance, "string") and not ecma_regex(pattern).search(
        instance
    ):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


Validator = validators.extend(Draft202012Validator, {"pattern": ecma_pattern})
# Text a person typed: no control character (C0, DEL or C1: PostgreSQL cannot store
# NUL, and no name, title or search term needs a newline), and not blank: at least
# one character that is not a space of any kind. Written with explicit ranges, so
# ECMA-262 (clients) and Python read them alike.
CONTROLS = r"\x00-\x1f\x7f-\x9f"
SPACES = r"\x20\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
TEXT_PATTERN = rf"^[^{CONTROLS}]*[^{CONTROLS}{SPACES}][^{CONTROLS}]*$"
EMAIL_PATTERN = rf"^[^{CONTROLS}{SPACES}@]+@[^{CONTROLS}{SPACES}@]+$"
# id(schema) -> (schema, validator). Schemas are module constants, so ids are stable;
# keeping the schema in the value keeps its id from being reused.
_compiled: dict[int, tuple[dict, Validator]] = {}


TIMESTAMP = {"type": "string", "format": "date-time"}
# Ids are INTEGER columns: past this they cannot exist (and PostgreSQL would refuse
# to compare an int4 column with a larger bound value).
MAX_ID = 2**31 - 1
ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}


@FORMAT_CHECKER.checks("isbn")
def is_isbn(value: object) -> bool:
    """ISBN-10 (last digit may be X) or ISBN-13, digits only, checksum included."""
    if not isinstance(value, str):
        return True  # other types are the "type" keyword's business
    if (
        len(value) == 10
        and value[:9].isdigit()
        and (value[9].isdigit() or value[9] == "X")
    ):
        digits = [int(char) for char in value[:9]] + [
            10 if value[9] == "X" else int(value[9])
        ]
        return sum((10 - index) * digit for index, digit in enumerate(digits)) % 11 == 0
    if len(value) == 13 and value.isascii() and value.isdigit():
        weights = [1, 3] * 6 + [1]
        return sum(w * int(char) for w, char in zip(weights, value)) % 10 == 0
    return False


def object_schema(title: str, properties: dict) -> dict:
    """The schema of an object the server answers: exactly these properties, every
    one always present."""
    return {
        "title": title,
        "type": "object",
        "additionalProperties": False,
        "required": list(properties),
        "properties": properties,
    }


def patch_form(schema: dict, **changes) -> dict:
    """The PATCH form of a write schema: the same fields, none required, not empty."""
    patched = {key: value for key, value in schema.items() if key != "required"}
    return {**patched, "minProperties": 1, **changes}


def text_schema(max_length: int, **extra) -> dict:
    """The schema of a text field: 1..max_length characters, see TEXT_PATTERN."""
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": max_length,
        "pattern": TEXT_PATTERN,
        **extra,
    }


def email_address(**extra) -> dict:
    return {
        "type": "string",
        # Any script, as the server takes them (RFC 6531), not ASCII only.
        "format": "idn-email",
        "maxLength": 254,
        "pattern": EMAIL_PATTERN,
        **extra,
    }


def validator_for(schema: dict):
    entry = _compiled.get(id(schema))
    if entry is None:
        Validator.check_schema(schema)
        entry = (schema, Validator(schema, format_checker=FORMAT_CHECKER))
        _compiled[id(schema)] = entry
    return entry[1]


def problems(schema: dict, instance: Any) -> list[dict]:
    """Every way `instance` breaks `schema`, as {"field", "problem"}, by field."""
    found = []
    for error in validator_for(schema).iter_errors(instance):
        found.extend(describe(error))
    found.sort(key=lambda item: (item["field"], item["problem"]))
    if len(found) > MAX_PROBLEMS:  # a body of 20,000 unknown fields is not echoed
        more = len(found) - MAX_PROBLEMS
        found[MAX_PROBLEMS:] = [{"field": "body", "problem": f"and {more} more"}]
    return found


# Of a value or a field name sent, a problem quotes this many characters back: a
# 1 MiB string is named, not echoed; and a 400 lists this many problems at most.
QUOTED = 40
MAX_PROBLEMS = 50


def quoted(text: str) -> str:
    return text if len(text) <= QUOTED else text[:QUOTED] + "..."


def describe(error: ValidationError) -> list[dict]:
    path = ".".join(quoted(str(part)) for part in error.absolute_path)
    if error.validator == "required":
        missing = error.message.split("'")[1]
        return [{"field": _join(path, missing), "problem": "is required"}]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        return [
            {"field": _join(path, quoted(name)), "problem": "is not an allowed field"}
            for name in error.instance
            if name not in allowed
        ]
    return [{"field": path or "body", "problem": problem_text(error)}]


def problem_text(error: ValidationError) -> str:
    """jsonschema's message, which starts with the value sent, quoted short."""
    sent = repr(error.instance)
    if error.message.startswith(sent):
        return quoted(sent) + error.message[len(sent) :]
    return error.message


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def validate(schema: dict, instance: Any) -> Any:
    """Return `instance` unchanged if it is valid, else raise 400 validation_error."""
    found = problems(schema, instance)
    if found:
        raise ApiError(400, "validation_error", "Request body is invalid", found)
    return instance


def json_number(text: str) -> int | float:
    """A JSON number with a fraction or exponent. A whole one (2.0, 1e2) is the
    same number as 2 or 100, and JSON Schema takes it for an integer: read it as
    one, so it is stored, answered and hashed into ETags as 2, whatever the
    spelling."""
    number = float(text)
    return int(number) if number.is_integer() else number


def not_json(text: str):
    """NaN, Infinity and -Infinity: Python's json reads them, JSON has no such
    literals."""
    raise ValueError(f"{text} is not JSON")


def json_body() -> Any:
    """The request's JSON body: 415 unless it is application/json, 400 if malformed
    (413 if too large). Parsed once per request, by `read_json_body` when the
    request came in."""
    if not request.is_json:
        raise ApiError(
            415, "unsupported_media_type", "Request body must be application/json"
        )
    if "json_body" not in g:
        g.json_body = parse_json(request_body())
    return g.json_body


def request_body() -> bytes:
    """The body's bytes, all of them or a 413. Werkzeug stops a body sent in
    chunks (no Content-Length) at MAX_CONTENT_LENGTH without saying so; one that
    reaches it is refused whole, as one announced that long would be."""
    raw = request.get_data(cache=True)
    limit = request.max_content_length
    if request.content_length is None and limit is not None and len(raw) >= limit:
        raise RequestEntityTooLarge()
    return raw


def read_json_body() -> None:
    """Before anything else looks at it (a rate limit's key among them): a JSON
    body is read and parsed once, as the request comes in, after the request has
    spent its identity's budget (RATELIMIT_DEFAULT, which needs no body). One that
    is not JSON (or too large) is refused here, before any limit that reads the
    body is counted, so no body can make a limit misbehave."""
    if request.is_json and (
        request.content_length or request.headers.get("Transfer-Encoding")
    ):
        json_body()


def parse_json(raw: bytes) -> Any:
    try:
        body = json.loads(raw, parse_float=json_number, parse_constant=not_json)
        # JSON may escape lone UTF-16 surrogates ("\ud800") that no UTF-8 text,
        # database or hash function accepts; refuse them here, once.
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except (ValueError, UnicodeError, RecursionError):
        raise ApiError(400, "bad_request", "Request body is not valid JSON") from None
    return body
