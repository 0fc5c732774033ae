"""The WSGI entry point for gunicorn and uWSGI: `gunicorn wsgi:app`."""

import sys

from myapp import create_app
from myapp.settings import ConfigError


def says_why() -> bool:
    """A wrong config is said once. gunicorn has said it from its master already
    (gunicorn.conf.py); uWSGI loads the app in each worker (lazy-apps), so its
    first worker says it."""
    try:
        import uwsgi
    except ImportError:
        return True
    return uwsgi.worker_id() == 1


try:
    app = create_app()
except ConfigError as error:
    if says_why():
        print(f"myapp: {error}", file=sys.stderr)
    # The server stops (uWSGI's need-app); the problems above, not a traceback.
    sys.tracebacklimit = 0
    raise RuntimeError("myapp did not start: its configuration is wrong") from None
