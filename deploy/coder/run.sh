#!/usr/bin/env bash
# Installs agentd when it is missing, starts it in the background and waits
# until it answers /healthz (ACTION=start), or stops the copy it started
# (ACTION=stop). Rendered by Terraform's templatefile(): the values below come
# from the module's variables; the shell's own braces are written $${...}, as
# templatefile() wants.
set -euo pipefail

ACTION="${ACTION}"
PORT="${PORT}"
INSTALL_SOURCE="${INSTALL_SOURCE}"
INSTALL_PREFIX="${INSTALL_PREFIX}"
DATA_DIR="${DATA_DIR}"
LOG_PATH="${LOG_PATH}"
AGENT_SOCKET="${AGENT_SOCKET}"
BOUNDARY_SOCKET="${BOUNDARY_SOCKET}"
OFFLINE="${OFFLINE}"

# Seconds to wait for /healthz after starting: a cold start opens SQLite and
# binds three listeners, well under a second; the margin is for busy machines.
HEALTH_TIMEOUT_SECONDS=60
# Seconds a stop waits for a clean exit (agentd's own shutdown deadline is 5 s).
STOP_TIMEOUT_SECONDS=10
# The Node.js agentd needs (package.json "engines").
NODE_MAJOR_MIN=20

if [ -z "$INSTALL_PREFIX" ]; then INSTALL_PREFIX="$HOME/.agentd"; fi
URL="http://127.0.0.1:$PORT"
# The pid file sits beside the agent socket, in agentd's private directory.
RUN_DIR="$(dirname "$AGENT_SOCKET")"
PID_FILE="$RUN_DIR/agentd.pid"

say() { printf 'agentd: %s\n' "$*"; }
fail() {
  printf 'agentd: %s\n' "$*" >&2
  exit 1
}

healthy() {
  if command -v curl > /dev/null 2>&1; then
    curl -fsS -o /dev/null --max-time 2 "$URL/healthz" 2> /dev/null
  else
    node -e 'fetch(process.argv[1], { signal: AbortSignal.timeout(2000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))' "$URL/healthz"
  fi
}

running_pid() {
  local pid
  [ -f "$PID_FILE" ] || return 1
  pid="$(cat "$PID_FILE")"
  [ -n "$pid" ] && kill -0 "$pid" 2> /dev/null || return 1
  # A pid left from before a reboot may belong to another program by now.
  if [ -r "/proc/$pid/cmdline" ] && ! tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q agentd; then return 1; fi
  echo "$pid"
}

find_agentd() {
  if [ -x "$INSTALL_PREFIX/bin/agentd" ]; then
    echo "$INSTALL_PREFIX/bin/agentd"
  elif command -v agentd > /dev/null 2>&1; then
    command -v agentd
  else
    return 1
  fi
}

install_agentd() {
  command -v node > /dev/null 2>&1 || fail "Node.js $NODE_MAJOR_MIN or newer is required and node is not on PATH"
  local major
  major="$(node -p 'process.versions.node.split(".")[0]')"
  [ "$major" -ge "$NODE_MAJOR_MIN" ] || fail "Node.js $NODE_MAJOR_MIN or newer is required; found $(node --version)"
  if [ "$OFFLINE" = "true" ]; then
    fail "agentd is not installed (looked in $INSTALL_PREFIX/bin and PATH) and offline is set"
  fi
  say "installing $INSTALL_SOURCE into $INSTALL_PREFIX (native modules build from source; this takes a minute or two)"
  # npm 11 runs dependencies' install scripts only when allowed by name; older npm ignores the flag.
  npm install -g --prefix "$INSTALL_PREFIX" --no-audit --no-fund --prefer-offline \
    --allow-scripts=better-sqlite3,node-pty "$INSTALL_SOURCE"
}

start() {
  local pid bin args
  if pid="$(running_pid)" && healthy; then
    say "already running (pid $pid) at $URL"
    return 0
  fi
  if healthy; then
    say "something already answers at $URL (agentd under systemd?); not starting another copy"
    return 0
  fi
  bin="$(find_agentd)" || {
    install_agentd
    bin="$(find_agentd)" || fail "npm install finished but agentd is not in $INSTALL_PREFIX/bin"
  }
  mkdir -p -m 700 "$RUN_DIR" "$(dirname "$BOUNDARY_SOCKET")"
  mkdir -p "$(dirname "$LOG_PATH")"
  args=(serve --http-addr "127.0.0.1:$PORT" --agent-socket "$AGENT_SOCKET" --boundary-socket "$BOUNDARY_SOCKET" --log-format json)
  if [ -n "$DATA_DIR" ]; then args+=(--data-dir "$DATA_DIR"); fi
  say "starting $("$bin" --version) at $URL, logging to $LOG_PATH"
  touch "$LOG_PATH" && chmod 600 "$LOG_PATH"
  nohup "$bin" "$${args[@]}" >> "$LOG_PATH" 2>&1 < /dev/null &
  echo $! > "$PID_FILE"
  for _ in $(seq 1 "$((HEALTH_TIMEOUT_SECONDS * 4))"); do
    if healthy; then
      say "ready at $URL"
      return 0
    fi
    if ! kill -0 "$(cat "$PID_FILE")" 2> /dev/null; then
      rm -f "$PID_FILE"
      tail -n 5 "$LOG_PATH" >&2 || true
      fail "agentd exited during start-up; see $LOG_PATH"
    fi
    sleep 0.25
  done
  fail "agentd did not answer $URL/healthz within $HEALTH_TIMEOUT_SECONDS s; see $LOG_PATH"
}

stop() {
  local pid
  pid="$(running_pid)" || {
    say "not running"
    rm -f "$PID_FILE"
    return 0
  }
  kill -TERM "$pid"
  for _ in $(seq 1 "$((STOP_TIMEOUT_SECONDS * 4))"); do
    if ! kill -0 "$pid" 2> /dev/null; then
      rm -f "$PID_FILE"
      say "stopped (pid $pid)"
      return 0
    fi
    sleep 0.25
  done
  kill -KILL "$pid" 2> /dev/null || true
  rm -f "$PID_FILE"
  say "killed (pid $pid) after $STOP_TIMEOUT_SECONDS s"
}

case "$ACTION" in
  start) start ;;
  stop) stop ;;
  *) fail "unknown action '$ACTION' (start or stop)" ;;
esac
