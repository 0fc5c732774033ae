"""What a person reads: the index at /, each feature's Swagger UI at /<feature>/docs,
and the OpenAPI 3.1 document of the whole API at /openapi.json.

Swagger UI 5 (the first to render OpenAPI 3.1) comes from the pinned
flask-swagger-ui package and is served from here, never from a CDN. Our pages start
it from a script file of ours (static/swagger-ui-init.js), so their
Content-Security-Policy allows no inline script.
"""

from flask import Blueprint, Flask, current_app, jsonify, render_template, request
from flask_swagger_ui import get_swaggerui_blueprint

from myapp import rate_limits
from myapp.openapi import JSON, WHOLE_API, Documents

SWAGGER_UI_ASSETS = "/docs/swagger-ui"

docs = Blueprint(
    "docs",
    __name__,
    static_folder="static",
    static_url_path="/docs/static",
    template_folder="templates",
)
# Swagger UI's own files (its script bundles, styles and icons), from the package.
swagger_ui_assets = get_swaggerui_blueprint(
    SWAGGER_UI_ASSETS, "/openapi.json", blueprint_name="swagger_ui"
)


@docs.get("/")
def index():
    """Each feature's name, description and documents: an HTML page for a browser
    (that asks for text/html), JSON for everyone else."""
    features = [links(feature) for feature in current_app.extensions["myapp.features"]]
    if request.accept_mimetypes.best_match([JSON, "text/html"]) == "text/html":
        response = current_app.make_response(
            render_template("index.html", features=features)
        )
    else:
        response = jsonify({"features": features, "openapi_url": "/openapi.json"})
    response.vary.add("Accept")  # one URL, two representations: caches must know
    return response


# The documentation of each feature, served by its own blueprint.
FEATURE_DOCUMENTATION = {"doc", "specs", "openapi"}


@rate_limits.exempt_when
def is_documentation() -> bool:
    """Documents and docs pages are not rate-limited: they are the same bytes for
    everyone, and a page that loads four of them must not spend a client's
    budget."""
    endpoint = request.endpoint or ""
    return endpoint.rpartition(".")[2] in FEATURE_DOCUMENTATION and (
        request.blueprint in current_app.extensions["myapp.openapi"].documents
    )


@docs.get("/openapi.json")
def whole_api():
    """The OpenAPI 3.1 document of every operation of every feature."""
    return current_app.extensions["myapp.openapi"].response()


def links(feature) -> dict:
    return {
        "name": feature.name,
        "description": feature.description,
        "docs_url": f"/{feature.name}/docs",
        "spec_url": f"/{feature.name}/openapi.json",
        "swagger_url": f"/{feature.name}/swagger.json",
    }


def swagger_ui_page(feature_name: str):
    """A feature's Swagger UI, which can switch to the other documents."""
    features = current_app.extensions["myapp.features"]
    documents = [
        {"name": feature.name, "url": f"/{feature.name}/openapi.json"}
        for feature in features
    ]
    documents.append({"name": f"{WHOLE_API} (all)", "url": "/openapi.json"})
    return render_template(
        "swagger-ui.html",
        title=f"myapp {feature_name}",
        assets=SWAGGER_UI_ASSETS,
        documents=documents,
        primary=feature_name,
    )


def init_app(app: Flask) -> None:
    """Serve the docs, and build the OpenAPI documents of every registered feature
    (call after the features' blueprints are registered)."""
    features = app.extensions["myapp.features"]
    for feature in features:
        feature.api.documentation(lambda name=feature.name: swagger_ui_page(name))
    app.extensions["myapp.openapi"] = Documents(features, app.config)
    rate_limits.exempt(docs.name)
    rate_limits.exempt(swagger_ui_assets.name)
    app.register_blueprint(docs)
    app.register_blueprint(swagger_ui_assets)
