# syntax=docker/dockerfile:1
# For those who deploy with containers: `docker compose up` (see docker-compose.yml).
# Not built on the project's own machines (they have no Docker engine); the VPS
# path is deploy/. The base image is pinned to an exact release.

FROM python:3.11.14-slim-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
COPY requirements.txt /tmp/requirements.txt
RUN python -m venv /venv \
    && /venv/bin/pip install --no-cache-dir --disable-pip-version-check \
       -r /tmp/requirements.txt

FROM python:3.11.14-slim-bookworm
RUN adduser --system --group --home /app myapp
COPY --from=build /venv /venv
WORKDIR /app
COPY --chown=root:root . /app
ENV PATH=/venv/bin:$PATH \
    MYAPP_ENV=production \
    PYTHONDONTWRITEBYTECODE=1 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/metrics
USER myapp
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
# Migrate, then serve the app over HTTP for the nginx container.
CMD ["sh", "-c", "mkdir -p \"$PROMETHEUS_MULTIPROC_DIR\" && flask --app myapp db upgrade && exec uwsgi --ini myapp.ini --http-socket 0.0.0.0:8000"]
