"""Loading and checking config: class, instance/config.py, env, then test_config.

Config is read only here, when the app is made, never at import time.
"""

import json
import os
from datetime import timedelta
from ipaddress import ip_network
from typing import Any
from urllib.parse import urlsplit

import click
from flask import Flask
from flask.sessions import SessionInterface
from limits import parse_many

from default_config import CONFIGS, DevelopmentConfig
from myapp import embedded_redis, redis_url

# Environment variables whose names differ from the config key they set.
ENV_ALIASES = {"DATABASE_URL": "SQLALCHEMY_DATABASE_URI"}
SECRET_KEYS = ("SECRET_KEY", "JWT_SECRET_KEY")
MIN_SECRET_LENGTH = 32
LOCAL_REDIS = "redis://127.0.0.1:6379/0"
SQL_SCHEMES = {"postgresql", "postgresql+psycopg", "postgres", "sqlite"}
RATE_LIMIT_KEYS = ("RATELIMIT_LOGIN", "RATELIMIT_REGISTER", "RATELIMIT_DEFAULT")
POSITIVE_NUMBERS = (
    "MAX_CONTENT_LENGTH",
    "JWT_ACCESS_TOKEN_EXPIRES",
    "JWT_REFRESH_TOKEN_EXPIRES",
    "REDIS_SOCKET_TIMEOUT",
    "DATABASE_CONNECT_TIMEOUT",
    "DATABASE_STATEMENT_TIMEOUT_MS",
    "DATABASE_LOCK_TIMEOUT_MS",
    "ARGON2_TIME_COST",
    "ARGON2_MEMORY_COST",
    "ARGON2_PARALLELISM",
    "CACHE_DEFAULT_TIMEOUT",
    "LOAN_DAYS",
    "MAX_OPEN_LOANS",
    "IDEMPOTENCY_TTL",
    "IDEMPOTENCY_WAIT",
    "WEB_THREADS",
)

# What an environment variable must be, by the type of its key's default.
KINDS = {
    bool: "true or false",
    int: "a whole number",
    float: "a number",
    list: "a list, comma-separated or JSON",
    tuple: "a list, comma-separated or JSON",
    dict: "a JSON object",
}


class ConfigError(RuntimeError):
    """The service cannot start with this configuration; the message says why."""


def load_config(app: Flask, config_name: str | None, test_config: dict | None):
    name = config_name or os.environ.get("MYAPP_ENV", "production")
    if name not in CONFIGS:
        raise ConfigError(f"MYAPP_ENV must be one of {sorted(CONFIGS)}, not {name!r}")
    app.config.from_object(CONFIGS[name])
    app.config["MYAPP_ENV"] = name
    app.config.from_pyfile("config.py", silent=True)
    overrides, problems = overrides_from_env(app.config, os.environ)
    app.config.update(overrides)
    app.config.update(test_config or {})
    apply_defaults(app)
    problems += find_problems(app.config)
    if problems:
        raise ConfigError("Invalid configuration:\n  " + "\n  ".join(problems))
    derive_extension_settings(app.config)


class NoCookieSession(SessionInterface):
    """The API keeps no state in cookies: a client's only state is its token. With
    a SECRET_KEY set, Flask's own cookie session would build a signing serializer
    on every request (about 50 µs of CPU) for a session nothing reads; this one
    opens none (Flask's null session: writing to it is an error)."""

    def open_session(self, app, request):
        return None

    def save_session(self, app, session, response):
        """Never called: Flask saves no null session."""


def bare_app() -> Flask:
    """The Flask object create_app() configures: its instance folder is
    MYAPP_INSTANCE_PATH, else instance/ in the checkout."""
    app = Flask(
        "myapp",
        instance_relative_config=True,
        instance_path=os.environ.get("MYAPP_INSTANCE_PATH") or None,
        static_folder=None,
    )
    app.session_interface = NoCookieSession()
    return app


def check_config() -> None:
    """The config create_app() would load, checked without making the app (for a
    server's master process): raises ConfigError."""
    load_config(bare_app(), None, None)


def overrides_from_env(config: dict, environ: dict) -> tuple[dict, list[str]]:
    """Env vars named like a config key, coerced to the type of that key's default;
    and one problem for each that cannot be."""
    overrides, problems = {}, []
    for var, raw in environ.items():
        key = ENV_ALIASES.get(var, var)
        if key in config and key.isupper():
            try:
                overrides[key] = coerce(var, raw, config[key])
            except ConfigError as error:
                problems.append(str(error))
    return overrides, problems


def coerce(var: str, raw: str, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            return parse_bool(raw)
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, (list, tuple)):
            if raw.strip().startswith("["):
                return list(json.loads(raw))
            return [part.strip() for part in raw.split(",") if part.strip()]
        if isinstance(default, dict):
            return dict(json.loads(raw))
    except (ValueError, TypeError):
        kind = KINDS.get(type(default), type(default).__name__)
        raise ConfigError(f"{var} must be {kind}, not {raw!r}") from None
    return raw


def parse_bool(raw: str) -> bool:
    word = raw.strip().lower()
    if word in {"1", "true", "yes", "on"}:
        return True
    if word in {"0", "false", "no", "off"}:
        return False
    raise ValueError(raw)


def apply_defaults(app: Flask) -> None:
    """Development runs with nothing set: a SQLite file in instance/, and the
    checkout's embedded Redis while `make run` runs it, else a local Redis."""
    if app.config["MYAPP_ENV"] != "development":
        return
    os.makedirs(app.instance_path, exist_ok=True)
    if not app.config["SQLALCHEMY_DATABASE_URI"]:
        path = os.path.join(app.instance_path, "myapp.db")
        app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{path}"
    if not app.config["REDIS_URL"]:
        embedded = embedded_redis.running_url(app.instance_path)
        app.config["REDIS_URL"] = embedded or LOCAL_REDIS
        if not embedded and click.get_current_context(silent=True):
            click.echo(
                f"Redis: {LOCAL_REDIS}, as `make run` (whose Redis this command "
                "would use) is not running; set REDIS_URL to use another",
                err=True,
            )


def find_problems(config: dict) -> list[str]:
    """One message per problem, each naming the variable to fix."""
    return [
        *secret_problems(config),
        *_url_problems(
            "DATABASE_URL", config.get("SQLALCHEMY_DATABASE_URI"), SQL_SCHEMES
        ),
        *_url_problems(
            "REDIS_URL", config.get("REDIS_URL"), redis_url.SCHEMES, redis_url.problem
        ),
        *value_problems(config),
        *address_problems(config),
    ]


def secret_problems(config: dict) -> list[str]:
    problems = []
    for key in SECRET_KEYS:
        value = config.get(key) or ""
        if len(value) < MIN_SECRET_LENGTH:
            problems.append(f"{key} must be set to at least {MIN_SECRET_LENGTH} chars")
        elif config["MYAPP_ENV"] == "production" and value in _development_secrets():
            problems.append(f"{key} is the public development value; set a real one")
    secret = config.get("SECRET_KEY")
    if secret and secret == config.get("JWT_SECRET_KEY"):
        problems.append(
            "SECRET_KEY and JWT_SECRET_KEY must differ: one leaked would give both"
        )
    return problems


def value_problems(config: dict) -> list[str]:
    """Rate limits, numbers and the log level."""
    problems = []
    for key in RATE_LIMIT_KEYS:
        try:
            parse_many(str(config.get(key)))
        except ValueError:
            problems.append(f"{key} is not a rate limit such as '5 per minute'")
    for key in POSITIVE_NUMBERS:
        value = config.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            problems.append(f"{key} must be a positive number, not {value!r}")
    if (
        not isinstance(config.get("TRUSTED_PROXIES"), int)
        or config["TRUSTED_PROXIES"] < 0
    ):
        problems.append("TRUSTED_PROXIES must be a whole number >= 0")
    if config.get("LOG_LEVEL") not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        problems.append("LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return problems


def address_problems(config: dict) -> list[str]:
    """Origins, the public URL and hosts, and the metrics networks."""
    problems = []
    for origin in config.get("CORS_ORIGINS") or []:
        parts = urlsplit(origin)
        if parts.scheme not in {"http", "https"} or not parts.netloc or parts.path:
            problems.append(f"CORS_ORIGINS entry {origin!r} is not an origin")
    base = config.get("PUBLIC_BASE_URL") or ""
    parts = urlsplit(base)
    if base and (
        parts.scheme not in {"http", "https"}
        or not parts.hostname
        or parts.path.strip("/")
        or parts.query
    ):
        problems.append(f"PUBLIC_BASE_URL {base!r} is not a URL such as https://host")
    if (
        config["MYAPP_ENV"] == "production"
        and not base
        and not config.get("TRUSTED_HOSTS")
    ):
        problems.append(
            "PUBLIC_BASE_URL or TRUSTED_HOSTS must be set: the Host header is the "
            "client's to choose, and links would point wherever it says"
        )
    for network in config.get("METRICS_NETWORKS") or []:
        try:
            ip_network(network, strict=False)
        except ValueError:
            problems.append(f"METRICS_NETWORKS entry {network!r} is not a network")
    return problems


def _development_secrets() -> set[str]:
    return {getattr(DevelopmentConfig, key) for key in SECRET_KEYS}


def _url_problems(var: str, url: str | None, schemes: set[str], problem=None) -> list:
    if not url:
        return [f"{var} must be set"]
    if urlsplit(url).scheme not in schemes:
        return [f"{var} must be a URL with scheme {'/'.join(sorted(schemes))}"]
    found = problem(url) if problem else None
    return [f"{var} {found}"] if found else []


# The bind key of PostgreSQL's second engine, for GETs: its own pool, whose
# connections stay in autocommit (db.RequestSession).
READS = "reads"


def derive_extension_settings(config: dict) -> None:
    """Translate our keys into the ones each extension reads."""
    base = config["PUBLIC_BASE_URL"].rstrip("/")
    config["PUBLIC_BASE_URL"] = base
    hosts = config["TRUSTED_HOSTS"] or ([urlsplit(base).hostname] if base else [])
    config["TRUSTED_HOSTS"] = hosts or None  # Flask: None checks nothing
    url = config["SQLALCHEMY_DATABASE_URI"]
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    config["SQLALCHEMY_DATABASE_URI"] = url
    options = engine_options(config, url)
    config["SQLALCHEMY_ENGINE_OPTIONS"] = options
    if url.startswith("postgresql"):
        # Flask-SQLAlchemy gives a bind none of SQLALCHEMY_ENGINE_OPTIONS: the same
        # pool bounds, timeouts and PgBouncer settings are given here.
        # Its connections never hold a transaction, so none is rolled back as one
        # goes back to the pool (SQLAlchemy's choice for autocommit).
        reads = {**options, "url": url, "isolation_level": "AUTOCOMMIT"}
        reads["pool_reset_on_return"] = None
        config["SQLALCHEMY_BINDS"] = {READS: reads}
    for key in ("JWT_ACCESS_TOKEN_EXPIRES", "JWT_REFRESH_TOKEN_EXPIRES"):
        config[key] = timedelta(seconds=config[key])
    # The cache is given the app's one Redis client when create_app binds it
    # (db.AppRedis.init_app).
    config["CACHE_TYPE"] = "RedisCache"


def engine_options(config: dict, url: str) -> dict:
    # No pre-ping: it would cost every request a round trip. A connection found
    # dead fails its request (503, Retry-After) and SQLAlchemy then discards the
    # whole pool; recycling bounds how long an idle connection is trusted.
    options: dict[str, Any] = {"pool_recycle": 1800}
    if url.startswith("postgresql"):
        # A connection for each thread, and two for readiness checks: requests
        # queue for database slots (myapp/stalls.py), not here.
        options.update(pool_size=config["WEB_THREADS"], max_overflow=2, pool_timeout=1)
        options["connect_args"] = postgres_connect_args(config)
    elif url.startswith("sqlite"):
        # Seconds a writer waits for SQLite's lock before failing.
        options["connect_args"] = {"timeout": config["DATABASE_LOCK_TIMEOUT_MS"] / 1000}
    return options


def postgres_connect_args(config: dict) -> dict:
    """libpq's own bounds: on connecting, and on a network that stops carrying
    packets (keepalives on an idle connection, tcp_user_timeout on one waiting
    for an acknowledgement). A server that is reachable but does not answer is
    bounded by the deadlines of myapp/stalls.py."""
    statement_ms = config["DATABASE_STATEMENT_TIMEOUT_MS"]
    args: dict[str, Any] = {
        "connect_timeout": config["DATABASE_CONNECT_TIMEOUT"],
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 2,
        "keepalives_count": 3,
        "tcp_user_timeout": statement_ms + 500,
    }
    if config["DATABASE_TRANSACTION_POOLER"]:
        # Each transaction may run on another server connection: a statement
        # psycopg prepared on one is unknown on the next, and PgBouncer refuses
        # the `options` startup parameter. The role carries the timeouts.
        args["prepare_threshold"] = None
    else:
        args["options"] = (
            f"-c statement_timeout={statement_ms}"
            f" -c lock_timeout={config['DATABASE_LOCK_TIMEOUT_MS']}"
        )
    return args
