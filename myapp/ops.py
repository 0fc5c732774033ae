"""Operations: the index, /healthz, /readiness, and the request id on every response."""

from flask import Blueprint, Flask, current_app, jsonify
from sqlalchemy import text

from myapp.db import limiter, redis_store, sql
from myapp.errors import ApiError
from myapp.tracing import request_id

ops = Blueprint("ops", __name__)
limiter.exempt(ops)


@ops.get("/")
def index():
    """Each feature's name, description, docs URL and spec URL."""
    features = current_app.extensions.get("myapp.features", [])
    return jsonify({"features": features})


@ops.get("/healthz")
def healthz():
    """The process serves; touches nothing else."""
    return jsonify({"status": "ok"})


@ops.get("/readiness")
def readiness():
    """200 when the database and Redis answer, else 503 naming what is down."""
    checks = {"database": database_answers(), "redis": redis_answers()}
    down = [name for name, ok in checks.items() if not ok]
    if down:
        raise ApiError(
            503,
            "service_unavailable",
            f"Not ready: {', '.join(down)} unreachable",
            [{"field": name, "problem": "unreachable"} for name in down],
            headers={"Retry-After": "5"},
        )
    return jsonify({"status": "ok", "checks": {name: "ok" for name in checks}})


def database_answers() -> bool:
    try:
        sql.session.execute(text("SELECT 1"))
        return True
    except Exception:
        current_app.logger.warning("Readiness: database unreachable", exc_info=True)
        sql.session.rollback()
        return False


def redis_answers() -> bool:
    try:
        return bool(redis_store.ping())
    except Exception:
        current_app.logger.warning("Readiness: Redis unreachable", exc_info=True)
        return False


def assign_request_id() -> None:
    request_id()


def add_request_id(response):
    response.headers["X-Request-ID"] = request_id()
    return response


def init_app(app: Flask) -> None:
    app.before_request(assign_request_id)
    app.after_request(add_request_id)
    app.register_blueprint(ops)
