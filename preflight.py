"""The config, checked once by the server's master before any worker starts:
uWSGI imports this module (myapp.ini: shared-pyimport), gunicorn calls check()
(gunicorn.conf.py: on_starting). A wrong config is said once, as its lines, and
the server stops; every worker would say it again, and be started again."""

import sys

from myapp.settings import ConfigError, check_config


def check() -> None:
    try:
        check_config()
    except ConfigError as error:
        sys.exit(f"myapp: {error}")


if "uwsgi" in sys.modules:  # imported by uWSGI's master
    check()
