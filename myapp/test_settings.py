"""Config: what production refuses, how the environment overrides it, and the
defaults the README documents."""

import os

import pytest
from flask import Flask

from myapp import create_app
from myapp.settings import ConfigError
from myapp.testing import PRODUCTION_ENV

# --- Config


def test_production_starts_with_strong_secrets_and_urls(environ):
    environ(**PRODUCTION_ENV)
    app = create_app()
    assert app.config["MYAPP_ENV"] == "production"
    assert not app.debug and not app.testing
    assert app.config["PROPAGATE_EXCEPTIONS"] is False
    assert app.config["SQLALCHEMY_DATABASE_URI"] == PRODUCTION_ENV["DATABASE_URL"]


def test_production_needs_to_know_its_host(environ):
    environ(**{**PRODUCTION_ENV, "PUBLIC_BASE_URL": ""})
    with pytest.raises(ConfigError, match="PUBLIC_BASE_URL or TRUSTED_HOSTS"):
        create_app()
    environ(**{**PRODUCTION_ENV, "PUBLIC_BASE_URL": "", "TRUSTED_HOSTS": "a.example"})
    assert create_app().config["TRUSTED_HOSTS"] == ["a.example"]
    environ(**{**PRODUCTION_ENV, "PUBLIC_BASE_URL": "ftp://x/y"})
    with pytest.raises(ConfigError, match="PUBLIC_BASE_URL 'ftp://x/y' is not a URL"):
        create_app()


@pytest.mark.parametrize("variable", ["SECRET_KEY", "JWT_SECRET_KEY"])
@pytest.mark.parametrize("value", [None, "x" * 31])
def test_production_refuses_a_missing_or_weak_secret(environ, variable, value):
    environ(**{**PRODUCTION_ENV, variable: value or ""})
    with pytest.raises(ConfigError, match=variable):
        create_app()


def test_production_refuses_the_development_secrets(environ):
    from default_config import DevelopmentConfig

    environ(**{**PRODUCTION_ENV, "SECRET_KEY": DevelopmentConfig.SECRET_KEY})
    with pytest.raises(ConfigError, match="SECRET_KEY is the public development"):
        create_app("production")


@pytest.mark.parametrize(
    "variable, value",
    [
        ("DATABASE_URL", "mysql://db/x"),
        ("DATABASE_URL", ""),
        ("REDIS_URL", "http://cache"),
        ("REDIS_URL", "unix://"),
        ("REDIS_URL", "redis+sentinel://s1:26379"),  # no service name
        ("REDIS_URL", "redis+sentinel://s1,s2:26379/primary"),  # a port missing
        ("REDIS_URL", "redis+sentinel://s1:26379/primary/zero"),
        ("RATELIMIT_LOGIN", "often"),
        ("MAX_CONTENT_LENGTH", "lots"),
        ("MAX_CONTENT_LENGTH", "0"),
        ("RESTX_MASK_SWAGGER", "maybe"),
        ("CORS_ORIGINS", "not an origin"),
        ("TRUSTED_PROXIES", "-1"),
        ("MYAPP_ENV", "staging"),
    ],
)
def test_bad_settings_are_named(environ, variable, value):
    environ(**{**PRODUCTION_ENV, variable: value})
    with pytest.raises(ConfigError, match=variable):
        create_app()


def test_every_problem_is_reported_at_once(environ):
    environ(DATABASE_URL="mysql://x", REDIS_URL="http://y", WEB_THREADS="four")
    with pytest.raises(ConfigError) as raised:
        create_app("production")
    for problem in (
        "SECRET_KEY must be set",
        "JWT_SECRET_KEY must be set",
        "DATABASE_URL must be a URL",
        "REDIS_URL must be a URL",
        "WEB_THREADS must be a whole number, not 'four'",  # a type, too
    ):
        assert problem in str(raised.value)


def test_production_refuses_one_secret_for_both(environ):
    secret = "s" * 40
    environ(**{**PRODUCTION_ENV, "SECRET_KEY": secret, "JWT_SECRET_KEY": secret})
    with pytest.raises(ConfigError, match="SECRET_KEY and JWT_SECRET_KEY must differ"):
        create_app()


def test_environment_overrides_are_typed(environ):
    environ(
        **PRODUCTION_ENV,
        MAX_CONTENT_LENGTH="2048",
        RESTX_MASK_SWAGGER="false",
        CORS_ORIGINS="https://a.example, https://b.example:8443",
        REDIS_SOCKET_TIMEOUT="0.25",
        JWT_ACCESS_TOKEN_EXPIRES="60",
    )
    config = create_app().config
    assert config["MAX_CONTENT_LENGTH"] == 2048
    assert config["RESTX_MASK_SWAGGER"] is False
    assert config["CORS_ORIGINS"] == ["https://a.example", "https://b.example:8443"]
    assert config["REDIS_SOCKET_TIMEOUT"] == 0.25
    assert config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds() == 60


def test_postgres_scheme_is_translated(environ):
    environ(**{**PRODUCTION_ENV, "DATABASE_URL": "postgres://u@h/db"})
    assert create_app().config["SQLALCHEMY_DATABASE_URI"] == "postgresql://u@h/db"


@pytest.mark.parametrize(
    "url, where",
    [
        ("unix:///run/redis.sock?db=2", {"path": "/run/redis.sock", "db": 2}),
        ("rediss://:pw@cache.internal:6380/3", {"host": "cache.internal", "db": 3}),
        (
            "redis+sentinel://:pw@s1:26379,[::1]:26380/primary/4",
            {"service_name": "primary", "db": 4, "password": "pw"},
        ),
    ],
)
def test_one_redis_client_serves_records_limits_and_cache(environ, url, where):
    """Every form of REDIS_URL gives one connection pool, which the rate limits
    and the cache use too: all three follow the same server (and the same
    Sentinel failover). Nothing connects until the first command."""
    environ(**{**PRODUCTION_ENV, "REDIS_URL": url, "REDIS_SOCKET_TIMEOUT": "0.5"})
    app = create_app()
    client = app.extensions["myapp.redis"]
    pool = client.connection_pool
    kwargs = {
        **pool.connection_kwargs,
        "service_name": getattr(pool, "service_name", None),
    }
    assert where.items() <= kwargs.items()
    assert kwargs["socket_timeout"] == 0.5
    with app.app_context():
        assert app.extensions["myapp.rate_limits"].script.registered_client is client
        assert app.config["CACHE_REDIS_HOST"] is client  # given to cachelib
    if "service_name" in where:
        sentinels = pool.sentinel_manager.sentinels
        assert [s.connection_pool.connection_kwargs["host"] for s in sentinels] == [
            "s1",
            "::1",
        ]
        assert sentinels[0].connection_pool.connection_kwargs["socket_timeout"] == 0.5


def test_load_order_class_instance_env_test_config(environ, monkeypatch, tmp_path):
    (tmp_path / "config.py").write_text(
        "RATELIMIT_LOGIN = '7 per minute'\nRATELIMIT_REGISTER = '8 per hour'\n"
        "RATELIMIT_DEFAULT = '9 per hour'\n"
    )
    monkeypatch.setattr(Flask, "auto_find_instance_path", lambda self: str(tmp_path))
    environ(
        **PRODUCTION_ENV, RATELIMIT_REGISTER="80 per hour", RATELIMIT_DEFAULT="90/hour"
    )
    config = create_app(test_config={"RATELIMIT_DEFAULT": "99 per hour"}).config
    assert config["RATELIMIT_LOGIN"] == "7 per minute"  # instance/config.py
    assert config["RATELIMIT_REGISTER"] == "80 per hour"  # env beats instance
    assert config["RATELIMIT_DEFAULT"] == "99 per hour"  # test_config beats env


def test_the_documented_defaults(environ):
    environ(**PRODUCTION_ENV)
    config = create_app().config
    assert config["RATELIMIT_LOGIN"] == "5 per minute"
    assert config["RATELIMIT_REGISTER"] == "10 per hour"
    assert config["RATELIMIT_DEFAULT"] == "1000 per hour"
    assert config["MAX_CONTENT_LENGTH"] == 1024 * 1024
    assert config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds() == 15 * 60
    assert config["CORS_ORIGINS"] == [] and config["TRUSTED_PROXIES"] == 0


def test_development_needs_nothing_set(environ):
    config = create_app("development").config
    assert config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///")
    assert config["SQLALCHEMY_DATABASE_URI"].endswith(
        os.path.join("instance", "myapp.db")
    )
