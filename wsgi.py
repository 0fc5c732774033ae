"""The WSGI entry point for gunicorn and uWSGI: `gunicorn wsgi:app`."""

from myapp import create_app

app = create_app()
