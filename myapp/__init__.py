"""myapp: a production-grade REST API on Flask and Flask-RESTX."""

import os

import click
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from myapp import cli, docs, ops, rate_limits, sqlite, stalls
from myapp.api import DatabaseIdConverter
from myapp.db import cache, cors, redis_store, sql
from myapp.transactions import end_session
from myapp.errors import register_error_handlers
from myapp.headers import REQUEST_HEADERS, RESPONSE_HEADERS
from myapp.schema import read_json_body
from myapp.settings import ConfigError, bare_app, load_config
from myapp.books import blueprint as books_blueprint
from myapp.sites import blueprint as sites_blueprint
from myapp.users import blueprint as users_blueprint

# A browser client may read every response header the OpenAPI documents describe,
# and send every request header they describe.
EXPOSED_HEADERS = list(RESPONSE_HEADERS)
ALLOWED_HEADERS = ["Authorization", "Content-Type", *REQUEST_HEADERS]


def create_app(config_name: str | None = None, test_config: dict | None = None):
    """Build the app: config, extensions, blueprints, error handlers, request hooks."""
    app = bare_app()
    try:
        load_config(app, config_name, test_config)
    except ConfigError as error:
        if click.get_current_context(silent=True) is None:
            raise
        raise click.ClickException(command_line_advice(error)) from None
    if app.config["TRUSTED_PROXIES"]:
        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    app.url_map.converters["int"] = DatabaseIdConverter

    sql.init_app(app)
    app.teardown_appcontext(end_session)
    with app.app_context():
        sqlite.init_engine(sql.engine)
        stalls.init_app(app, list(sql.engines.values()))
    if click.get_current_context(silent=True):
        init_migrations(app)  # the `flask db` commands
    redis_store.init_app(app)  # before the rate limits and the cache, which use it
    init_cors(app)
    # Every routed request spends its identity's budget first, whatever its body;
    # then the body is read, once, before an operation's own limits use it.
    rate_limits.init_app(app)
    app.before_request(read_json_body)
    cache.init_app(app)

    ops.init_app(app)
    app.register_blueprint(users_blueprint)
    app.register_blueprint(books_blueprint)
    app.register_blueprint(sites_blueprint)
    docs.init_app(app)
    register_error_handlers(app)
    cli.init_app(app)
    return app


def init_cors(app: Flask) -> None:
    cors.init_app(
        app,
        origins=app.config["CORS_ORIGINS"],
        supports_credentials=False,
        always_send=False,
        expose_headers=EXPOSED_HEADERS,
        allow_headers=ALLOWED_HEADERS,
        max_age=600,
    )


def command_line_advice(error: ConfigError) -> str:
    """What the `flask` command says, in place of a traceback, when the config is
    wrong: without MYAPP_ENV it is the production config, which a checkout never
    has, so it says that in one line."""
    if "MYAPP_ENV" not in os.environ:
        return (
            "MYAPP_ENV is not set, so this is the production config, which is "
            "incomplete here; in a checkout: MYAPP_ENV=development flask --app myapp "
            "... (beside `make run`, it uses the same database and Redis)"
        )
    return str(error)


def init_migrations(app: Flask) -> None:
    """Set up Flask-Migrate, for `flask_migrate.upgrade()` and the `flask db`
    commands. It brings Alembic, 12 MiB in every worker (bench/ANALYSIS.md), and a
    server never migrates: create_app calls this only under the `flask` command (it
    makes the app inside its click context); code that migrates from Python
    (devserver.py, the tests) calls it itself."""
    from flask_migrate import Migrate

    Migrate(app, sql, directory=migrations_directory())


def migrations_directory() -> str:
    return os.path.join(os.path.dirname(os.path.dirname(__file__)), "migrations")
