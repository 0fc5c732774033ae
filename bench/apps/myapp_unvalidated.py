"""myapp with request-body validation switched off, for the bench only: the same
app and `POST /books/`, minus the JSON Schema check, to measure what validation
costs. Never served in production (wsgi.py is)."""

import myapp.books.models
from myapp import create_app


def skip_validation(schema: dict, data) -> None:
    """Accept any body, as `validate` would a valid one."""


myapp.books.models.validate = skip_validation
app = create_app()
