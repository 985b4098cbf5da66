#!/usr/bin/env bash
# The DynamoDB-compatible servers tablekeeper is measured against, on loopback.
#
#   hack/peers.sh [start] [moto|dynalite|ddblocal ...]   install if needed, then start
#   hack/peers.sh stop    [moto|dynalite|ddblocal ...]   stop what this script started
#                                                        (no name: the default three)
#   hack/peers.sh status  [...]                          one line per peer
#   hack/peers.sh url NAME                               http://127.0.0.1:PORT
#
# Every step is idempotent: a running peer is left alone, an installed one is
# not installed again. Everything lives under $TK_PEERS_DIR (default
# /tmp/tk-peers), never in the repository:
#   moto      PyPI moto[server] in its own venv; in memory only
#   dynalite  npm dynalite, LevelDB on disk (--path); writes are not fsynced
#   ddblocal  DynamoDB Local, the jar inside npm amplify-dynamodb-simulator,
#             SQLite on disk (-dbPath), telemetry off (-disableTelemetry)
#   ddblocal-mem  the same with -inMemory (not started unless named)
# A start wipes the peer's data directory, so each run begins empty
# (TK_PEERS_KEEP_DATA=1 keeps it). Ports: TK_MOTO_PORT (18101),
# TK_DYNALITE_PORT (18102), TK_DDBLOCAL_PORT (18103), TK_DDBLOCAL_MEM_PORT (18105).
set -euo pipefail

PEERS_DIR=${TK_PEERS_DIR:-/tmp/tk-peers}
RUN_DIR=$PEERS_DIR/run
DATA_DIR=$PEERS_DIR/data
DYNALITE_VERSION=${TK_DYNALITE_VERSION:-4.0.0}
SIMULATOR_VERSION=${TK_SIMULATOR_VERSION:-2.9.30}
MOTO_SPEC=${TK_MOTO_SPEC:-moto[server]}
DEFAULT_PEERS=(moto dynalite ddblocal)
ALL_PEERS=("${DEFAULT_PEERS[@]}" ddblocal-mem)

declare -A PORT=(
  [moto]=${TK_MOTO_PORT:-18101}
  [dynalite]=${TK_DYNALITE_PORT:-18102}
  [ddblocal]=${TK_DDBLOCAL_PORT:-18103}
  [ddblocal-mem]=${TK_DDBLOCAL_MEM_PORT:-18105}
)

log() { echo "peers: $*" >&2; }
die() { log "error: $*"; exit 1; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pid_of() { cat "$RUN_DIR/$1.pid" 2>/dev/null || true; }

running() {
  local pid
  pid=$(pid_of "$1")
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null
}

wait_port() { # NAME PORT SECONDS
  local name=$1 port=$2 deadline=$((SECONDS + $3))
  while ! port_open "$port"; do
    if ! running "$name"; then
      tail -n 20 "$RUN_DIR/$name.log" >&2 || true
      die "$name exited before listening on $port (log: $RUN_DIR/$name.log)"
    fi
    ((SECONDS < deadline)) || die "$name not listening on $port after $3 s"
    sleep 0.2
  done
}

# ---------------------------------------------------------------- installs

install_moto() {
  [[ -x $PEERS_DIR/venv/bin/moto_server ]] && return
  log "installing $MOTO_SPEC into $PEERS_DIR/venv"
  mkdir -p "$RUN_DIR"
  python3 -m venv "$PEERS_DIR/venv"
  "$PEERS_DIR/venv/bin/pip" install "$MOTO_SPEC" >"$RUN_DIR/install-moto.log" 2>&1 ||
    { tail -n 20 "$RUN_DIR/install-moto.log" >&2; die "pip install $MOTO_SPEC failed"; }
}

install_npm() {
  [[ -f $PEERS_DIR/node_modules/dynalite/cli.js && -f $(ddblocal_jar) ]] && return
  command -v npm >/dev/null || die "npm is not installed (apt-get install -y nodejs npm)"
  log "installing dynalite@$DYNALITE_VERSION amplify-dynamodb-simulator@$SIMULATOR_VERSION"
  [[ -f $PEERS_DIR/package.json ]] || echo '{"name":"tk-peers","private":true}' >"$PEERS_DIR/package.json"
  mkdir -p "$RUN_DIR"
  npm install --prefix "$PEERS_DIR" --no-audit --no-fund \
    "dynalite@$DYNALITE_VERSION" "amplify-dynamodb-simulator@$SIMULATOR_VERSION" \
    >"$RUN_DIR/install-npm.log" 2>&1 ||
    { tail -n 20 "$RUN_DIR/install-npm.log" >&2; die "npm install failed"; }
}

ddblocal_jar() { echo "$PEERS_DIR/node_modules/amplify-dynamodb-simulator/emulator/DynamoDBLocal.jar"; }

# ---------------------------------------------------------------- commands per peer

command_line() { # NAME PORT DATA -> the argv, one per line
  local name=$1 port=$2 data=$3
  case $name in
    moto) printf '%s\n' "$PEERS_DIR/venv/bin/moto_server" -H 127.0.0.1 -p "$port" ;;
    dynalite)
      printf '%s\n' node "$PEERS_DIR/node_modules/dynalite/cli.js" \
        --host 127.0.0.1 --port "$port" --path "$data" ;;
    ddblocal | ddblocal-mem)
      local jar storage=(-dbPath "$data")
      jar=$(ddblocal_jar)
      [[ $name == ddblocal-mem ]] && storage=(-inMemory)
      # DynamoDB Local has no bind-address option: it listens on every interface.
      printf '%s\n' java "-Djava.library.path=$(dirname "$jar")/DynamoDBLocal_lib" \
        -jar "$jar" -port "$port" "${storage[@]}" -sharedDb -disableTelemetry ;;
    *) die "unknown peer $name (choose from ${ALL_PEERS[*]})" ;;
  esac
}

start_one() {
  local name=$1 port=${PORT[$1]} data=$DATA_DIR/$1 argv
  if running "$name"; then
    log "$name already running (pid $(pid_of "$name")) on $port"
    return
  fi
  port_open "$port" && die "port $port is taken by a process this script did not start"
  case $name in moto) install_moto ;; *) install_npm ;; esac
  [[ ${TK_PEERS_KEEP_DATA:-0} == 1 ]] || rm -rf "$data"
  mkdir -p "$data" "$RUN_DIR"
  mapfile -t argv < <(command_line "$name" "$port" "$data")
  (cd "$data" && exec nohup "${argv[@]}" >"$RUN_DIR/$name.log" 2>&1 </dev/null) &
  echo $! >"$RUN_DIR/$name.pid"
  echo "${argv[*]}" >"$RUN_DIR/$name.cmd"
  wait_port "$name" "$port" 60
  log "$name started (pid $!) at http://127.0.0.1:$port"
}

stop_one() {
  local name=$1 pid
  pid=$(pid_of "$name")
  if [[ -z $pid ]] || ! kill -0 "$pid" 2>/dev/null; then
    rm -f "$RUN_DIR/$name.pid"
    return
  fi
  kill -TERM "$pid"
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  rm -f "$RUN_DIR/$name.pid"
  log "$name stopped (pid $pid)"
}

status_one() {
  local name=$1
  if running "$name"; then
    echo "$name running pid=$(pid_of "$name") url=http://127.0.0.1:${PORT[$name]}"
  else
    echo "$name stopped"
  fi
}

main() {
  local action=${1:-start}
  [[ $# -gt 0 ]] && shift
  local names=("$@")
  [[ ${#names[@]} -gt 0 ]] || names=("${DEFAULT_PEERS[@]}")
  for name in "${names[@]}"; do
    [[ -n ${PORT[$name]:-} ]] || die "unknown peer $name (choose from ${ALL_PEERS[*]})"
  done
  mkdir -p "$PEERS_DIR"
  case $action in
    start) for name in "${names[@]}"; do start_one "$name"; done ;;
    stop) for name in "${names[@]}"; do stop_one "$name"; done ;;
    status) for name in "${names[@]}"; do status_one "$name"; done ;;
    url) echo "http://127.0.0.1:${PORT[${names[0]}]}" ;;
    *) die "usage: $0 [start|stop|status|url] [${ALL_PEERS[*]}]" ;;
  esac
}

main "$@"
