#!/usr/bin/env bash
# Measure tablekeeper and its peers side by side, in one sitting, and print Markdown tables.
#
#   hack/bench-all.sh [TARGET...]
#
# Targets: tablekeeper dynalite ddblocal moto (the default), and ddblocal-mem (DynamoDB Local
# -inMemory). Per target: an unmeasured warm-up (the JVM and V8 get much faster in their first
# seconds), the Python client (`tablekeeper bench`: PutItem, GetItem, Query, 50/50 mix), then
# wrk with hack/wrk/*.lua on a freshly prepared table. Peers come from hack/peers.sh and are
# stopped at the end unless they were already running; tablekeeper runs as
# `tablekeeper engine --data <temp dir> --port P --auth none` and is skipped, with the reason,
# while it does not start. Everything goes to 127.0.0.1 only.
#
# Settings (environment): TK_DURATION (10 s per op), TK_WARMUP (5 s per op, unmeasured, before
# measuring a target), TK_CONNECTIONS (16), TK_ITEMS (10000 preloaded), TK_ITEM_BYTES (200),
# TK_WRK_THREADS (nproc), TK_PYTHON (a python that imports tablekeeper; default python3),
# TK_ENGINE (the tablekeeper executable), TK_ENGINE_PORT (18104), TK_RESULTS (results
# directory; default a new temp dir).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DURATION=${TK_DURATION:-10}
WARMUP=${TK_WARMUP:-5}
CONNECTIONS=${TK_CONNECTIONS:-16}
ITEMS=${TK_ITEMS:-10000}
ITEM_BYTES=${TK_ITEM_BYTES:-200}
WRK_THREADS=${TK_WRK_THREADS:-$(nproc)}
PYTHON=${TK_PYTHON:-python3}
ENGINE_PORT=${TK_ENGINE_PORT:-18104}
RESULTS=${TK_RESULTS:-$(mktemp -d /tmp/tk-bench.XXXXXX)}
WRK_OPS=(put get mix query) # query last: a slow server still works off wrk's abandoned queries
PEERS=(dynalite ddblocal moto)
TARGETS=("$@")
[[ ${#TARGETS[@]} -gt 0 ]] || TARGETS=(tablekeeper "${PEERS[@]}")

ENGINE_PID=""
ENGINE_DATA=""
STARTED_PEERS=()

say() { echo "bench-all: $*" >&2; }

cleanup() {
  if [[ -n $ENGINE_PID ]] && kill -0 "$ENGINE_PID" 2>/dev/null; then
    kill -TERM -- "-$ENGINE_PID" 2>/dev/null || kill -TERM "$ENGINE_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$ENGINE_PID" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$ENGINE_PID" 2>/dev/null && kill -KILL -- "-$ENGINE_PID" 2>/dev/null
  fi
  [[ -n $ENGINE_DATA ]] && rm -rf "$ENGINE_DATA"
  [[ ${#STARTED_PEERS[@]} -eq 0 ]] || "$HERE/peers.sh" stop "${STARTED_PEERS[@]}"
}
trap cleanup EXIT

check_tools() {
  command -v wrk >/dev/null || { say "wrk missing: apt-get install -y wrk"; exit 1; }
  "$PYTHON" -c "import tablekeeper.bench" 2>/dev/null || {
    say "$PYTHON cannot import tablekeeper.bench: set TK_PYTHON or pip install -e ."
    exit 1
  }
}

engine_command() {
  if [[ -n ${TK_ENGINE:-} ]]; then echo "$TK_ENGINE"; return; fi
  local beside
  beside=$(dirname "$(command -v "$PYTHON")")/tablekeeper
  if [[ -x $beside ]]; then echo "$beside"; else echo tablekeeper; fi
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Start the engine, or write RESULTS/tablekeeper.skipped with the reason; returns 1 when skipped.
start_engine() {
  local engine log=$RESULTS/tablekeeper.engine.log
  engine=$(engine_command)
  ENGINE_DATA=$(mktemp -d /tmp/tk-engine.XXXXXX)
  port_open "$ENGINE_PORT" && { skip_engine "port $ENGINE_PORT is already taken"; return 1; }
  say "starting $engine engine --data $ENGINE_DATA --port $ENGINE_PORT --auth none"
  setsid "$engine" engine --data "$ENGINE_DATA" --port "$ENGINE_PORT" --auth none \
    >"$log" 2>&1 </dev/null &
  ENGINE_PID=$!
  local deadline=$((SECONDS + 30))
  until port_open "$ENGINE_PORT"; do
    if ! kill -0 "$ENGINE_PID" 2>/dev/null; then
      skip_engine "pending: \`tablekeeper engine\` does not start yet: $(tail -n 1 "$log")"
      return 1
    fi
    if ((SECONDS > deadline)); then
      skip_engine "pending: \`tablekeeper engine\` did not listen on $ENGINE_PORT within 30 s"
      return 1
    fi
    sleep 0.2
  done
  local probe=(--endpoint "http://127.0.0.1:$ENGINE_PORT" --table tkprobe)
  if ! "$PYTHON" "$HERE/wrk/prepare.py" "${probe[@]}" --items 25 2>"$RESULTS/probe.log"; then
    skip_engine "pending: engine not ready: $(tail -n 1 "$RESULTS/probe.log")"
    return 1
  fi
  "$PYTHON" "$HERE/wrk/prepare.py" "${probe[@]}" --delete || true
}

skip_engine() {
  echo "$1" >"$RESULTS/tablekeeper.skipped"
  say "tablekeeper skipped: $1"
}

url_of() {
  case $1 in
    tablekeeper) echo "http://127.0.0.1:$ENGINE_PORT" ;;
    *) "$HERE/peers.sh" url "$1" ;;
  esac
}

warm_up() { # TARGET URL
  ((WARMUP > 0)) || return 0
  local cmd=("$PYTHON" "$HERE/bench.py" --endpoint "$2" --connections "$CONNECTIONS"
    --duration "$WARMUP" --warmup 0 --item-bytes "$ITEM_BYTES" --preload 2000)
  say "$1: warming up, $WARMUP s per op"
  echo "${cmd[*]}  # warm-up, not reported" >>"$RESULTS/commands.txt"
  "${cmd[@]}" >/dev/null 2>&1 || say "$1: warm-up failed (measuring anyway)"
}

run_python_bench() { # TARGET URL
  local cmd=("$PYTHON" "$HERE/bench.py" --endpoint "$2" --connections "$CONNECTIONS"
    --duration "$DURATION" --item-bytes "$ITEM_BYTES" --preload "$ITEMS" --output json)
  say "$1: ${cmd[*]}"
  echo "${cmd[*]}" >>"$RESULTS/commands.txt"
  if ! "${cmd[@]}" >"$RESULTS/$1.bench.json" 2>"$RESULTS/$1.bench.log"; then
    tail -n 1 "$RESULTS/$1.bench.log" >"$RESULTS/$1.bench.failed"
    say "$1: python bench failed: $(cat "$RESULTS/$1.bench.failed")"
    rm -f "$RESULTS/$1.bench.json"
  fi
}

run_wrk() { # TARGET URL
  local target=$1 url=$2 table=tkwrk-$1
  echo "$PYTHON $HERE/wrk/prepare.py --endpoint $url --items $ITEMS --table $table" \
    >>"$RESULTS/commands.txt"
  if ! "$PYTHON" "$HERE/wrk/prepare.py" --endpoint "$url" --items "$ITEMS" --table "$table" \
    --item-bytes "$ITEM_BYTES" 2>"$RESULTS/$target.wrk.failed"; then
    say "$target: wrk preparation failed: $(tail -n 1 "$RESULTS/$target.wrk.failed")"
    return
  fi
  rm -f "$RESULTS/$target.wrk.failed"
  for op in "${WRK_OPS[@]}"; do
    local cmd=(wrk "-t$WRK_THREADS" "-c$CONNECTIONS" "-d${DURATION}s" --timeout 30s --latency
      -s "$HERE/wrk/$op.lua" "$url" -- "$table" "$ITEMS" "$ITEM_BYTES")
    say "$target: ${cmd[*]}"
    echo "${cmd[*]}" >>"$RESULTS/commands.txt"
    "${cmd[@]}" >"$RESULTS/$target.wrk.$op.txt" 2>&1 || say "$target: wrk $op failed"
    grep -v '^TKWRK ' "$RESULTS/$target.wrk.$op.txt" | tail -n 1 >&2
    sleep 2 # let the server work off requests wrk abandoned at its deadline
  done
  "$PYTHON" "$HERE/wrk/prepare.py" --endpoint "$url" --table "$table" --delete ||
    say "$target: could not delete $table"
}

start_peer() { # NAME -> 1 when it could not start
  if "$HERE/peers.sh" status "$1" | grep -q running; then return 0; fi
  "$HERE/peers.sh" start "$1" || return 1
  STARTED_PEERS+=("$1")
}

main() {
  check_tools
  local started load_before
  started=$(date -u +%Y-%m-%dT%H:%MZ)
  load_before=$(cut -d' ' -f1-3 /proc/loadavg)
  mkdir -p "$RESULTS"
  : >"$RESULTS/commands.txt"
  say "results in $RESULTS"
  for target in "${TARGETS[@]}"; do
    if [[ $target == tablekeeper ]]; then
      start_engine || continue
    elif ! start_peer "$target"; then
      echo "could not start $target" >"$RESULTS/$target.skipped"
      continue
    fi
    local url
    url=$(url_of "$target")
    warm_up "$target" "$url"
    run_python_bench "$target" "$url"
    run_wrk "$target" "$url"
  done
  {
    echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
    echo "Date: $started to $(date -u +%H:%MZ); $DURATION s per op after a $WARMUP s/op warm-up," \
      "$CONNECTIONS connections, $ITEM_BYTES-byte items, $ITEMS preloaded"
    echo "Load average (1/5/15 min): $load_before before, $(cut -d' ' -f1-3 /proc/loadavg) after" \
      "(anything else running on the machine competes with client and server)"
    echo
    "$PYTHON" "$HERE/wrk/report.py" "$RESULTS" "${TARGETS[@]}"
  } | tee "$RESULTS/report.md"
}

main
