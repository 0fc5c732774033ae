"""One factory for every feature's blueprint, Api and namespace, and the decorators
that document its operations.

`make_api("books", title, description, tags)` gives a uniquely named blueprint
mounted at /books, its Swagger UI at /books/docs, its OpenAPI 3.1 document at
/books/openapi.json (myapp/openapi.py), errors in our one shape, and a `Feature`
(myapp/feature.py) whose decorators declare what each operation reads, writes and
answers. Resources subclass `Resource`: one commit per request.

A Resource method carries a few named declarations:
    @feature.requires("staff")          # a token and a role: 401, 403
    @feature.expects(book_write_model)  # a JSON body: 400, 413, 415
    @feature.updates(book_model, "Replaced")  # If-Match; 200 with ETag, 404, 412
    @feature.errors(409)                # whatever else the operation can answer
"""

import flask_restx
from flask import Blueprint, Response, current_app, request
from flask_restx import Api, Namespace
from werkzeug.routing import IntegerConverter

from myapp.db import SAFE_METHODS
from myapp.transactions import commit, read_on_a_live_connection
from myapp.stalls import database_slot_on_first_use
from myapp.feature import Feature
from myapp.errors import error_response
from myapp.schema import MAX_ID

# The Swagger 2.0 spec's stand-in for the bearer schemes of the OpenAPI documents.
SWAGGER_AUTHORIZATIONS = {
    "bearer": {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "Bearer <token> (see /openapi.json for the OpenAPI 3.1 "
        "document of the whole API)",
    }
}


class DatabaseIdConverter(IntegerConverter):
    """`<int:...>` in every route: ids outside 1..MAX_ID cannot exist (the
    documents say so), so they are a 404 at routing: no overflow in the database,
    and no PUT that makes a site with id 0."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("min", 1)
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


DOCS_PATH = "/docs"


class FeatureApi(Api):
    def _register_doc(self, app_or_blueprint):
        # Flask-RESTX also registers a "root" view at the blueprint's "/" that
        # answers 404 and shadows the feature's own list route, and has no public
        # switch for it: this hook registers only the docs page. The one override
        # of a library's private name; test_openapi pins what it keeps (each list
        # at its "/", each docs page).
        app_or_blueprint.add_url_rule(DOCS_PATH, "doc", self.render_doc)

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
    with `after_commit`. A read that meets a dead pooled connection runs again on a
    new one (`read_on_a_live_connection`). Each request holds one of its process's
    database slots from its first use of the database
    (`database_slot_on_first_use`), so a stalled database never takes every
    thread."""

    def dispatch_request(self, *args, **kwargs):
        dispatch = super().dispatch_request
        with database_slot_on_first_use():
            if request.method in SAFE_METHODS:
                return read_on_a_live_connection(dispatch, *args, **kwargs)
            response = dispatch(*args, **kwargs)
            commit()
            return response


def make_api(name: str, title: str, description: str, tags: dict[str, str]) -> Feature:
    """A feature's blueprint and Api. `tags` names the groups its operations are
    listed under in the docs, each with a sentence about it."""
    blueprint = Blueprint(name, __name__, url_prefix=f"/{name}")
    api = FeatureApi(
        blueprint,
        title=title,
        description=description,
        version="1.0",
        doc=DOCS_PATH,
        authorizations=SWAGGER_AUTHORIZATIONS,
    )
    ns = Namespace(name, description=description, path="/")
    api.add_namespace(ns)
    feature = Feature(name, title, description, tags, blueprint, api, ns)
    blueprint.add_url_rule(
        "/openapi.json",
        "openapi",
        lambda: current_app.extensions["myapp.openapi"].response(name),
    )
    blueprint.record_once(
        lambda state: state.app.extensions.setdefault("myapp.features", []).append(
            feature
        )
    )
    return feature


def no_content() -> Response:
    """204 with no body (a Resource returning "" would send a JSON string). It keeps
    the API's media type: Swagger 2.0 declares `produces` per operation, not per
    status, so a 204 without one would contradict the spec."""
    return Response(status=204, content_type="application/json")
