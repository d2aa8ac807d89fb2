#!/usr/bin/env bash
# Run the EzSpark services locally, as background processes, against a reachable RabbitMQ:
# the gateway, the evolver and two evaluators.  State, logs and pid files go to .ezspark-up/.
#
#   scripts/stack.sh up       start whatever is not running yet (waits for the gateway)
#   scripts/stack.sh down     SIGTERM everything, SIGKILL what is left after STOP_TIMEOUT s
#   scripts/stack.sh status   what runs, with pids and where
#   scripts/stack.sh byo      whether `up` lets users' own machines join (see byo_settings)
#
# Environment: EZSPARK_BROKER_URL (default amqp://guest:guest@127.0.0.1:5672/%2F),
# GATEWAY_PORT (8000), EZSPARK_DATABASE_URL (SQLite in .ezspark-up/), STOP_TIMEOUT (30),
# EZSPARK_VENV (.venv), EZSPARK_UP_DIR (.ezspark-up), METRICS_BASE (9101: evaluator-1 on
# it, the evolver on +1, evaluator-2 on +2; 0 turns their metrics servers off).  Other EZSPARK_* variables (e.g. EZSPARK_ENV_MODULES) pass through;
# EZSPARK_ENVS (a comma list) limits what the evaluators serve, else they serve every
# environment they can run (one task queue each), and the gateway accepts what they announce.
# Metrics: evolver :9102, evaluators :9101 and :9103, gateway on its own port (/metrics).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DIR="${EZSPARK_UP_DIR:-$ROOT/.ezspark-up}"
VENV="${EZSPARK_VENV:-$ROOT/.venv}"
BIN="$VENV/bin"
BROKER_URL="${EZSPARK_BROKER_URL:-amqp://guest:guest@127.0.0.1:5672/%2F}"
GATEWAY_PORT="${GATEWAY_PORT:-8000}"
STOP_TIMEOUT="${STOP_TIMEOUT:-30}"
METRICS_BASE="${METRICS_BASE:-9101}"
SERVICES=(gateway evolver evaluator-1 evaluator-2)
BYO=""  # the gateway's settings for users' own evaluators (byo_settings), set by up

# pid of a service if it is running (and really is ours), else nothing.
running_pid() {
  local pidfile="$DIR/$1.pid" pid
  [[ -f "$pidfile" ]] || return 0
  pid="$(cat "$pidfile")"
  if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null \
      && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "ezspark-"; then
    echo "$pid"
  fi
}

command_of() {
  case "$1" in
    gateway) echo ezspark-gateway ;;
    evolver) echo ezspark-evolver ;;
    evaluator-*) echo ezspark-evaluator ;;
  esac
}

metrics_port() {
  if ((METRICS_BASE)); then echo $((METRICS_BASE + $1)); else echo 0; fi
}

# Service-specific settings, as NAME=value words for env(1).
settings_of() {
  case "$1" in
    gateway) echo "EZSPARK_PORT=$GATEWAY_PORT EZSPARK_METRICS_PORT=0" \
      "EZSPARK_DATABASE_URL=${EZSPARK_DATABASE_URL:-sqlite:///$DIR/gateway.db}" "$BYO" ;;
    evolver) echo "EZSPARK_METRICS_PORT=$(metrics_port 1) EZSPARK_DATA_DIR=$DIR/evolver" ;;
    evaluator-1) echo "EZSPARK_METRICS_PORT=$(metrics_port 0)" \
      "EZSPARK_EVALUATOR_ID=$(hostname)-evaluator-1" ;;
    evaluator-2) echo "EZSPARK_METRICS_PORT=$(metrics_port 2)" \
      "EZSPARK_EVALUATOR_ID=$(hostname)-evaluator-2" ;;
  esac
}

# Users' own evaluators (`ezspark evaluator --gateway URL`) get their broker user from the
# gateway, which creates it through RabbitMQ's management API.  Unless
# EZSPARK_BROKER_ADMIN_URL is set (it then passes through as is), use the broker URL's own
# user when the management API on port 15672 of the broker's host says it is an
# administrator, as guest is on a local RabbitMQ.  Prints the gateway's settings on stdout
# and one line saying what it chose on stderr; without them /api/evaluators answers 503.
byo_settings() {
  if [[ -n "${EZSPARK_BROKER_ADMIN_URL:-}" ]]; then
    echo "users' own evaluators: on (EZSPARK_BROKER_ADMIN_URL=$EZSPARK_BROKER_ADMIN_URL)" >&2
    return 0
  fi
  "$BIN/python" - "$BROKER_URL" <<'PY' || true  # whatever goes wrong: off, and up goes on
import base64, json, sys, urllib.error, urllib.request
from urllib.parse import unquote, urlsplit

url = urlsplit(sys.argv[1])
admin = f"http://{url.hostname}:15672"
user, password = unquote(url.username or "guest"), unquote(url.password or "guest")
request = urllib.request.Request(f"{admin}/api/whoami")
secret = base64.b64encode(f"{user}:{password}".encode()).decode()
request.add_header("Authorization", f"Basic {secret}")
hint = "set EZSPARK_BROKER_ADMIN_URL, _USER, _PASSWORD"
try:
    with urllib.request.urlopen(request, timeout=3) as reply:
        tags = json.load(reply).get("tags", [])
except urllib.error.HTTPError as exc:  # refused: wrong password, or no management tag
    tags = [f"HTTP {exc.code}"]
except (OSError, ValueError) as exc:
    sys.exit(print(f"users' own evaluators: off (no management API at {admin}: {exc}; {hint})",
                   file=sys.stderr))
tags = tags if isinstance(tags, list) else str(tags).split(",")
if "administrator" not in tags or any(c.isspace() for c in user + password):
    sys.exit(print(f"users' own evaluators: off ({user} is not a RabbitMQ administrator at "
                   f"{admin}: {', '.join(tags) or 'no tags'}; {hint})", file=sys.stderr))
print(f"EZSPARK_BROKER_ADMIN_URL={admin} EZSPARK_BROKER_ADMIN_USER={user} "
      f"EZSPARK_BROKER_ADMIN_PASSWORD={password} "
      f"EZSPARK_EVALUATOR_BROKER_URL=amqp://{url.hostname}:{url.port or 5672}{url.path or '/'}")
print(f"users' own evaluators: on (management API at {admin} as {user})", file=sys.stderr)
PY
}

check_broker() {
  if ! "$BIN/python" - "$BROKER_URL" <<'PY'
import socket, sys
from urllib.parse import urlsplit
url = urlsplit(sys.argv[1])
try:
    socket.create_connection((url.hostname, url.port or 5672), timeout=3).close()
except OSError as exc:
    sys.exit(f"RabbitMQ is not reachable at {url.hostname}:{url.port or 5672}: {exc}")
PY
  then
    echo "start RabbitMQ first (or set EZSPARK_BROKER_URL)" >&2
    exit 1
  fi
}

wait_gateway() {
  "$BIN/python" - "http://127.0.0.1:$GATEWAY_PORT/healthz" <<'PY'
import sys, time, urllib.request
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    try:
        with urllib.request.urlopen(sys.argv[1], timeout=2) as reply:
            if reply.status == 200:
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.3)
sys.exit("the gateway did not answer within 30 s")
PY
}

# Wait (up to 30 s) until the gateway has heard both evaluators announce what they serve,
# so that a config submitted right after `up` is not refused for want of an evaluator.
# Only the gateway log written since `offset` (bytes) counts: the log is appended to.
wait_evaluators() {
  local offset="$1" deadline=$((SECONDS + 30)) name missing count
  while :; do
    missing=""
    for name in evaluator-1 evaluator-2; do
      # grep -c reads to the end (grep -q could leave the writer a SIGPIPE, and pipefail
      # would then count a match as a miss).
      count="$(tail -c "+$((offset + 1))" "$DIR/gateway.log" 2>/dev/null \
        | grep '"evaluator_live"' | grep -c "\"$(hostname)-$name\"" || true)"
      ((${count:-0} > 0)) || missing+=" $name"
    done
    [[ -z "$missing" ]] && return 0
    if ((SECONDS >= deadline)); then
      echo "not yet announced to the gateway:$missing (a config may be refused for want of" \
        "an evaluator for a few more seconds)" >&2
      return 0
    fi
    sleep 0.3
  done
}

up() {
  [[ -x "$BIN/ezspark-gateway" ]] || { echo "no services in $VENV; run 'make install'" >&2; exit 1; }
  check_broker
  BYO="$(byo_settings)"
  local offset
  offset="$(stat -c %s "$DIR/gateway.log" 2>/dev/null || echo 0)"
  mkdir -p "$DIR/evolver"
  local name pid started=0
  for name in "${SERVICES[@]}"; do
    if pid="$(running_pid "$name")" && [[ -n "$pid" ]]; then
      echo "$name already running (pid $pid)"
      continue
    fi
    # shellcheck disable=SC2046  # settings_of yields separate NAME=value words on purpose
    nohup env EZSPARK_BROKER_URL="$BROKER_URL" $(settings_of "$name") \
      "$BIN/$(command_of "$name")" >>"$DIR/$name.log" 2>&1 </dev/null &
    echo $! >"$DIR/$name.pid"
    echo "started $name (pid $!, log $DIR/$name.log)"
    started=1
  done
  sleep 1
  for name in "${SERVICES[@]}"; do
    if [[ -z "$(running_pid "$name")" ]]; then
      echo "$name exited; last log lines:" >&2
      tail -n 20 "$DIR/$name.log" >&2
      exit 1
    fi
  done
  wait_gateway
  if ((started)); then
    wait_evaluators "$offset"
  fi
  echo "EzSpark is up: http://127.0.0.1:$GATEWAY_PORT"
}

down() {
  local name pid pids=()
  for name in "${SERVICES[@]}"; do
    pid="$(running_pid "$name")"
    if [[ -n "$pid" ]]; then
      kill -TERM "$pid" && pids+=("$pid") && echo "stopping $name (pid $pid)"
    fi
  done
  local waited=0
  while ((${#pids[@]})); do
    local alive=()
    for pid in "${pids[@]}"; do
      kill -0 "$pid" 2>/dev/null && alive+=("$pid")
    done
    pids=("${alive[@]+"${alive[@]}"}")
    ((${#pids[@]})) || break
    if ((waited >= STOP_TIMEOUT * 10)); then
      echo "still running after ${STOP_TIMEOUT}s, killing: ${pids[*]}" >&2
      kill -KILL "${pids[@]}" 2>/dev/null || true
      break
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  for name in "${SERVICES[@]}"; do rm -f "$DIR/$name.pid"; done
  echo "EzSpark is down"
}

status() {
  local name pid code=0
  for name in "${SERVICES[@]}"; do
    pid="$(running_pid "$name")"
    if [[ -n "$pid" ]]; then
      echo "$name: running (pid $pid)"
    else
      echo "$name: stopped"
      code=3
    fi
  done
  echo "gateway: http://127.0.0.1:$GATEWAY_PORT  logs: $DIR/*.log"
  return "$code"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  byo) byo_settings >/dev/null ;;
  *) echo "usage: $0 up|down|status|byo" >&2; exit 2 ;;
esac
