# The two commands a new machine needs: `make run` and `make test`.
# Only Python 3.11 is required; everything else installs into .venv.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test deploy-test fleet-test bench bench-profile bench-keyset soak audit lint format migrate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Stamps: reinstall only when a requirements file changes.
$(VENV)/.runtime: requirements.txt requirements-run.txt | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-run.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-run.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(VENV)/.runtime $@

$(VENV)/.clients: requirements.txt requirements-run.txt requirements-dev.txt \
		requirements-clients.txt | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-clients.txt
	touch $(VENV)/.runtime $(VENV)/.dev $@

# The Node tools of package.json (Redocly's linter for `make test`) where npm is
# installed; without it, the tests that need them skip and say so, and a fresh
# machine still needs nothing but Python.
NODE_TOOLS := $(if $(shell command -v npm),node_modules/.installed)

## run: serve on http://127.0.0.1:5000 (SQLite + embedded Redis under instance/)
run: $(VENV)/.runtime
	$(BIN)/python devserver.py

## test: black, flake8, then pytest on PostgreSQL and SQLite with a real Redis, a
## worker per core (each with its own throwaway servers)
test: $(VENV)/.dev $(NODE_TOOLS)
	$(BIN)/black --check .
	$(BIN)/flake8
	$(BIN)/pytest -n auto --dist loadfile

## deploy-test: deploy/deploy.sh for real (local target, uWSGI behind nginx), the
## Swagger UIs in Chromium, newman and the generated clients against a live server;
## needs Debian's nginx, rsync, curl, docker-compose, chromium (see .ci/run)
deploy-test: $(VENV)/.clients node_modules/.installed
	$(BIN)/pytest deploy --ignore=deploy/test_fleet.py

## fleet-test: three app hosts behind a balancer, PgBouncer and Redis Sentinel, as
## network namespaces of this machine; rolling and failed deploys over ssh and
## faults under load (deploy/test_fleet.py). Needs root and Debian's packages
## (see .ci/run).
fleet-test: $(VENV)/.dev
	$(BIN)/pytest -p no:cacheprovider deploy/test_fleet.py

## bench: myapp against its baselines at 1k/100k/1M books (about 10 min); writes
## bench/RESULTS.md and bench/charts/. Needs Debian's wrk and postgresql.
bench: $(VENV)/.bench
	@command -v wrk >/dev/null && ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 \
		|| apt-get install -y -q wrk postgresql
	$(BIN)/python -m bench.run

## bench-profile: where one request's CPU goes, per component, in µs, in-process,
## for myapp and its peers (about 2 min); writes bench/COMPONENTS.md
bench-profile: $(VENV)/.bench
	@ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || apt-get install -y -q postgresql
	$(BIN)/python -m bench.components 2>/dev/null

## bench-keyset: a deep catalog page by number and by cursor at 1M books (about
## 2 min); writes bench/KEYSET.md
bench-keyset: $(VENV)/.bench
	@ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || apt-get install -y -q postgresql
	$(BIN)/python -m bench.keyset

## soak: myapp under uWSGI with a steady mixed load for 10 minutes; writes
## bench/SOAK.md (answers, worker memory, Redis memory per 1,000 requests)
soak: $(VENV)/.bench
	@ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || apt-get install -y -q postgresql
	$(BIN)/python -m bench.soak

$(VENV)/.bench: requirements.txt requirements-run.txt requirements-dev.txt \
		requirements-bench.txt | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-bench.txt
	touch $(VENV)/.runtime $(VENV)/.dev $@

node_modules/.installed: package.json package-lock.json
	npm ci --silent --no-audit --no-fund
	touch $@

## audit: every pinned Python requirement (production, tooling, clients, bench)
## against the known vulnerabilities of PyPI's and OSV's advisories; fails on any
## not accepted in audit-allowlist.txt. Needs the internet (GitHub Actions runs it).
audit: $(VENV)/.audit
	$(BIN)/pip-audit --strict --progress-spinner off \
		$(addprefix -r ,$(wildcard requirements*.txt)) \
		$(addprefix --ignore-vuln ,$(shell sed -n 's/^\([^# ][^ ]*\).*/\1/p' audit-allowlist.txt))

$(VENV)/.audit: requirements-audit.txt | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-audit.txt
	touch $@

lint: $(VENV)/.dev
	$(BIN)/black --check .
	$(BIN)/flake8

format: $(VENV)/.dev
	$(BIN)/black .

## migrate: apply migrations to the configured database (DATABASE_URL)
migrate: $(VENV)/.runtime
	$(BIN)/flask --app myapp db upgrade

clean:
	rm -rf $(VENV) node_modules .pytest_cache .hypothesis
