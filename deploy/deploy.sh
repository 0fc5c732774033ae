#!/usr/bin/env bash
# Ship this working tree as a new release to one host or many, losing no request.
#
#   DEPLOY_HOSTS="app1.example.com app2.example.com" DEPLOY_USER=deploy \
#     DEPLOY_PATH=/srv/myapp deploy/deploy.sh
#   DEPLOY_HOSTS=local DEPLOY_PATH=/tmp/myapp ... deploy/deploy.sh   # here, no ssh
#
# Each host serves from one of two uWSGI instances, the slots a and b (systemd's
# myapp@a and myapp@b), behind its own nginx, which proxies to the slot named in
# $DEPLOY_PATH/upstream.conf. A release goes out like this:
#
# 1. every host: rsync to releases/<timestamp> and build its .venv (in parallel)
# 2. once, on the first host, before any switch: flask db upgrade. Migrations
#    must suit the release before too: add a column with a default (or nullable)
#    in one release, use it in the next, drop what is unused a release later.
# 3. host by host, in order (the others keep serving):
#    a. start the idle slot on the new release and health-check it on its own
#       socket ($SOCKET_DIR/<slot>.sock), before it takes any traffic;
#    b. point nginx at it (rewrite upstream.conf, graceful reload): new requests
#       go to the new slot, requests in flight finish on the old one;
#    c. after $DRAIN_SECONDS stop the old slot gracefully (SIGTERM: it finishes
#       what it has), switch `current`, and health-check the host through nginx.
# 4. a failed check stops the roll: every host switched so far goes back to the
#    release it had, by the same steps, so the fleet is left on one release, and
#    the new release is removed; exit 1.
# 5. every host keeps its last $KEEP_RELEASES releases.
set -euo pipefail

: "${DEPLOY_PATH:?set DEPLOY_PATH, the directory holding releases/ and current}"
DEPLOY_HOSTS=${DEPLOY_HOSTS:-${DEPLOY_HOST:-local}}
DEPLOY_USER=${DEPLOY_USER:-}
ENV_FILE=${ENV_FILE:-/etc/myapp/env}
PYTHON=${PYTHON:-python3.11}
SOCKET_DIR=${SOCKET_DIR:-/run/myapp}
# Run on a host with $slot set; single quotes: expanded there, not here.
SLOT_START=${SLOT_START:-'sudo systemctl start "myapp@$slot"'}
SLOT_STOP=${SLOT_STOP:-'sudo systemctl stop "myapp@$slot"'}
NGINX_RELOAD=${NGINX_RELOAD:-sudo systemctl reload nginx}
SMOKE_URL=${SMOKE_URL:-http://127.0.0.1/readiness}
SMOKE_SECONDS=${SMOKE_SECONDS:-30}
DRAIN_SECONDS=${DRAIN_SECONDS:-2}
KEEP_RELEASES=${KEEP_RELEASES:-5}
SSH_OPTIONS=${SSH_OPTIONS:-}

source_dir=$(cd "$(dirname "$0")/.." && pwd)
release=$(date -u +%Y%m%dT%H%M%S%N)
read -r -a hosts <<<"$DEPLOY_HOSTS"

log() { printf '[deploy %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# Run a shell script on a host: here, or over ssh.
on_host() {  # $1: host, $2: script
  if [[ $1 == local ]]; then
    bash -c "$2"
  else
    # shellcheck disable=SC2086
    ssh $SSH_OPTIONS "${DEPLOY_USER:+$DEPLOY_USER@}$1" "bash -c $(printf %q "$2")"
  fi
}

copy_release() {  # $1: host
  local destination="$DEPLOY_PATH/releases/$release/"
  local rsh=()
  if [[ $1 != local ]]; then
    destination="${DEPLOY_USER:+$DEPLOY_USER@}$1:$destination"
    rsh=(-e "ssh $SSH_OPTIONS")
  fi
  on_host "$1" "mkdir -p '$DEPLOY_PATH/releases' '$DEPLOY_PATH/slots'"
  rsync -a --delete "${rsh[@]}" --exclude-from="$source_dir/deploy/rsync-exclude" \
    "$source_dir/" "$destination"
  # At the lowest CPU priority: the build shares the host with the live slot,
  # whose requests must not wait for it (a 2-core host's deploy starved them).
  on_host "$1" "cd '$DEPLOY_PATH/releases/$release' && nice -n 19 $PYTHON -m venv .venv \
    && nice -n 19 .venv/bin/pip install --quiet --disable-pip-version-check \
    -r requirements.txt"
}

# What runs on a host to move it to a release (shipped there with `declare -f`).
# Its settings come in as arguments, so nothing depends on the host's own shell.
switch_host() {  # release path socket_dir smoke_url smoke_seconds drain env_file
  local release=$1 path=$2 sockets=$3 smoke=$4 seconds=$5 drain=$6 env=$7
  local live idle slot host
  live=$(sed -n 's|.*/\([ab]\)\.sock;.*|\1|p' "$path/upstream.conf" 2>/dev/null || true)
  idle=a
  [[ $live == a ]] && idle=b
  # The Host nginx and the app serve: the public one, from the app's settings.
  host=$(set -a && . "$env" && h=${PUBLIC_BASE_URL#*://} && h=${h%%/*} &&
    echo "${h:-${TRUSTED_HOSTS%%,*}}")
  answers() {  # $@: curl's address options; the app's /readiness says 200
    local _
    for _ in $(seq "$seconds"); do
      curl -fsS -o /dev/null -m 5 -H "Host: $host" "$@" && return 0
      sleep 1
    done
    return 1
  }
  slot=$idle
  eval "$SLOT_STOP" >/dev/null 2>&1 || true  # a slot left over by a failed run
  ln -sfn "../releases/$release" "$path/slots/$idle.next"
  mv -T "$path/slots/$idle.next" "$path/slots/$idle"
  eval "$SLOT_START"
  if ! answers --unix-socket "$sockets/$idle.sock" http://localhost/readiness; then
    echo "slot $idle on $release does not answer" >&2
    eval "$SLOT_STOP" || true
    return 1
  fi
  echo "server unix:$sockets/$idle.sock;" >"$path/upstream.conf.next"
  mv -T "$path/upstream.conf.next" "$path/upstream.conf"
  eval "$NGINX_RELOAD"
  if [[ -n $live ]]; then
    sleep "$drain"  # nginx's old workers stop taking requests for the old slot
    slot=$live
    eval "$SLOT_STOP"
  fi
  ln -sfn "releases/$release" "$path/current.next"
  mv -T "$path/current.next" "$path/current"
  answers "$smoke" || { echo "$smoke does not answer through nginx" >&2 && return 1; }
}

move_host() {  # $1: host, $2: release
  on_host "$1" "SLOT_START=$(printf %q "$SLOT_START") SLOT_STOP=$(printf %q "$SLOT_STOP") \
    NGINX_RELOAD=$(printf %q "$NGINX_RELOAD"); $(declare -f switch_host); \
    switch_host '$2' '$DEPLOY_PATH' '$SOCKET_DIR' '$SMOKE_URL' '$SMOKE_SECONDS' \
    '$DRAIN_SECONDS' '$ENV_FILE'"
}

current_release() {  # $1: host
  on_host "$1" "readlink '$DEPLOY_PATH/current' 2>/dev/null | sed 's|^releases/||' || true"
}

roll_back() {  # $@: hosts to put back on the release each had
  local host
  for host in "$@"; do
    if [[ -n ${previous[$host]} && $(current_release "$host") != "${previous[$host]}" ]]; then
      log "$host: back to ${previous[$host]}"
      move_host "$host" "${previous[$host]}" || log "$host: the previous release does not answer either"
    fi
  done
  for host in "${hosts[@]}"; do
    on_host "$host" "rm -rf '$DEPLOY_PATH/releases/$release'"
  done
}

log "release $release -> ${hosts[*]}:$DEPLOY_PATH"
declare -A previous
for host in "${hosts[@]}"; do
  previous[$host]=$(current_release "$host")
done

log "copying and building on every host"
pids=()
for host in "${hosts[@]}"; do
  copy_release "$host" &
  pids+=($!)
done
for pid in "${pids[@]}"; do
  wait "$pid" || { log "copying or building failed"; roll_back; exit 1; }
done

log "migrating the database (once, from ${hosts[0]})"
on_host "${hosts[0]}" "cd '$DEPLOY_PATH/releases/$release' && set -a && . '$ENV_FILE' \
  && set +a && .venv/bin/flask --app myapp db upgrade"

switched=()
for host in "${hosts[@]}"; do
  log "$host: switching to $release"
  switched+=("$host")
  if ! move_host "$host" "$release"; then
    log "$host: release $release failed its health check; rolling back"
    roll_back "${switched[@]}"
    log "rolled back: the fleet is on its previous release"
    exit 1
  fi
  log "$host: release $release is live"
done

log "keeping the last $KEEP_RELEASES releases"
for host in "${hosts[@]}"; do
  on_host "$host" "cd '$DEPLOY_PATH/releases' && ls -1 | sort | head -n -$KEEP_RELEASES | xargs -r rm -rf"
done
