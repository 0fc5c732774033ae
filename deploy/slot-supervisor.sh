#!/usr/bin/env bash
# Stands in for systemd's myapp@<slot> (deploy/myapp@.service) where there is no
# systemd: the deploy test and the fleet test's hosts. Same command, environment,
# socket and graceful stop as the unit; no restart on a crash.
#
#   slot-supervisor.sh start|stop <slot> <deploy path> <socket dir> <env file>
set -euo pipefail
action=$1 slot=$2 path=$3 sockets=$4 env_file=$5
pidfile="$sockets/$slot.pid"

case $action in
start)
  mkdir -p "$sockets/metrics-$slot"
  rm -rf "${sockets:?}/metrics-$slot/"*
  set -a
  # shellcheck disable=SC1090
  . "$env_file"
  set +a
  export MYAPP_SOCKET="$sockets/$slot.sock" PROMETHEUS_MULTIPROC_DIR="$sockets/metrics-$slot"
  cd "$path/slots/$slot"
  # --daemonize2: detach only once the app has loaded, so a release that cannot
  # start fails this command.
  exec .venv/bin/uwsgi --ini myapp.ini --safe-pidfile "$pidfile" \
    --daemonize2 "$sockets/$slot.log"
  ;;
stop)
  [[ -f $pidfile ]] || exit 0
  pid=$(cat "$pidfile")
  kill -TERM "$pid" 2>/dev/null || true  # graceful: requests in flight finish
  for _ in $(seq 400); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pidfile"
  ;;
*)
  echo "usage: $0 start|stop <slot> <deploy path> <socket dir> <env file>" >&2
  exit 2
  ;;
esac
