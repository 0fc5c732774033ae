#!/usr/bin/env bash
# Ship this working tree as a new release, switch to it, and roll back if it fails.
#
#   DEPLOY_HOST=app.example.com DEPLOY_USER=deploy DEPLOY_PATH=/srv/myapp deploy/deploy.sh
#   DEPLOY_HOST=local DEPLOY_PATH=/tmp/myapp ... deploy/deploy.sh   # this machine, no ssh
#
# 1. rsync to $DEPLOY_PATH/releases/<timestamp>
# 2. build the release's .venv from requirements.txt
# 3. flask db upgrade (with the settings in $ENV_FILE on the target)
# 4. switch the `current` symlink atomically (rename over it)
# 5. restart the service ($RESTART_COMMAND) and smoke-test $SMOKE_URL (/readiness)
# 6. if that fails: switch back to the previous release and restart it; exit 1
# 7. keep the last $KEEP_RELEASES releases
#
# Migrations run before the switch, so they must suit the release before too
# (add columns first, drop them a release later).
set -euo pipefail

: "${DEPLOY_PATH:?set DEPLOY_PATH, the directory holding releases/ and current}"
DEPLOY_HOST=${DEPLOY_HOST:-local}
DEPLOY_USER=${DEPLOY_USER:-}
ENV_FILE=${ENV_FILE:-/etc/myapp/env}
PYTHON=${PYTHON:-python3.11}
RESTART_COMMAND=${RESTART_COMMAND:-sudo systemctl restart myapp}
SMOKE_URL=${SMOKE_URL:-http://127.0.0.1/readiness}
SMOKE_SECONDS=${SMOKE_SECONDS:-30}
KEEP_RELEASES=${KEEP_RELEASES:-5}
SSH_OPTIONS=${SSH_OPTIONS:-}

source_dir=$(cd "$(dirname "$0")/.." && pwd)
release=$(date -u +%Y%m%dT%H%M%S%N)
release_dir="$DEPLOY_PATH/releases/$release"

log() { printf '[deploy %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# Run a shell command on the target: here, or over ssh.
on_target() {
  if [[ $DEPLOY_HOST == local ]]; then
    bash -c "$1"
  else
    # shellcheck disable=SC2086
    ssh $SSH_OPTIONS "${DEPLOY_USER:+$DEPLOY_USER@}$DEPLOY_HOST" "bash -c $(printf %q "$1")"
  fi
}

copy_release() {
  local destination="$release_dir/"
  local rsh=()
  if [[ $DEPLOY_HOST != local ]]; then
    destination="${DEPLOY_USER:+$DEPLOY_USER@}$DEPLOY_HOST:$destination"
    rsh=(-e "ssh $SSH_OPTIONS")
  fi
  rsync -a --delete "${rsh[@]}" --exclude-from="$source_dir/deploy/rsync-exclude" \
    "$source_dir/" "$destination"
}

switch_to() {  # $1: a release name; rename a fresh link over `current`
  on_target "ln -sfn 'releases/$1' '$DEPLOY_PATH/current.next' && mv -T '$DEPLOY_PATH/current.next' '$DEPLOY_PATH/current'"
}

smoke_test() {
  on_target "for _ in \$(seq $SMOKE_SECONDS); do curl -fsS -o /dev/null '$SMOKE_URL' && exit 0; sleep 1; done; exit 1"
}

log "release $release -> ${DEPLOY_HOST}:$DEPLOY_PATH"
on_target "mkdir -p '$DEPLOY_PATH/releases'"
previous=$(on_target "readlink '$DEPLOY_PATH/current' 2>/dev/null | sed 's|^releases/||' || true")

log "copying"
copy_release

log "building the virtualenv"
on_target "cd '$release_dir' && $PYTHON -m venv .venv && .venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt"

log "migrating the database"
on_target "cd '$release_dir' && set -a && . '$ENV_FILE' && set +a && .venv/bin/flask --app myapp db upgrade"

log "switching current to $release"
switch_to "$release"
on_target "$RESTART_COMMAND" || true

if smoke_test; then
  log "$SMOKE_URL answers: release $release is live"
else
  log "$SMOKE_URL does not answer"
  if [[ -n $previous ]]; then
    log "rolling back to $previous"
    switch_to "$previous"
    on_target "$RESTART_COMMAND" || true
    smoke_test && log "rolled back: $previous is live" || log "the previous release does not answer either"
    on_target "rm -rf '$release_dir'"
  fi
  exit 1
fi

log "keeping the last $KEEP_RELEASES releases"
on_target "cd '$DEPLOY_PATH/releases' && ls -1 | sort | head -n -$KEEP_RELEASES | xargs -r rm -rf"
