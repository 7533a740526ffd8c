#!/usr/bin/env bash
# Runs one txc-bench scenario end to end on this machine, with everything it needs started in a
# fresh temporary directory and stopped again however the run ends:
#
#   scripts/bench.sh 2pc-db   [--seconds N] [--concurrency N] [other txc-bench 2pc-db options]
#   scripts/bench.sh 2pc-http [--seconds N] [--concurrency N] [other txc-bench 2pc-http options]
#   scripts/bench.sh saga-http [--seconds N] [--concurrency N] [other txc-bench saga-http options]
#   scripts/bench.sh tcc-http [--seconds N] [--concurrency N] [other txc-bench tcc-http options]
#   scripts/bench.sh barrier  [--seconds N] [--concurrency N] [other txc-bench barrier options]
#   scripts/bench.sh log      [--seconds N] [other txc-bench log options]
#
#   2pc-db    throwaway PostgreSQL 15 and MariaDB 10.11 (scripts/dbs.sh), then txcoord on a free
#             port with its log in the temporary directory and the two databases as resources
#             `pg` and `my`; then txc-bench 2pc-db against all three
#   2pc-http, saga-http, tcc-http
#             txcoord (participants.allow http://127.0.0.1:*), then txc-bench with that scenario (its
#             participants are served inside txc-bench)
#   barrier   the same throwaway PostgreSQL and MariaDB (no txcoord), then txc-bench barrier
#             against both
#   log       txc-bench log, its files in the temporary directory (no servers)
#
# Environment: TXC_BUILD_DIR  the build to run (default: build/, which is first brought up to
#                             date with scripts/setup.sh and scripts/build.sh)
#              TXC_BENCH_KEEP=1  keep the temporary directory (txcoord.log, the databases)
# Exit code: txc-bench's (0 when it ran and its checks passed), 1 when the set-up failed, 2 for
# a usage error, 130/143 when interrupted.
set -euo pipefail

readonly PROG="bench.sh"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT
readonly NODE_ID="txcoord-bench"  # not the baseline's xid node (bench-client)
readonly START_TIMEOUT_S=60
readonly STOP_TIMEOUT_S=20

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}
usage() {
  sed -n '2,27s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
  exit "${1:-0}"
}

(($# >= 1)) || usage 2 >&2
readonly SCENARIO="$1"
shift
case "$SCENARIO" in
  2pc-db | 2pc-http | saga-http | tcc-http | barrier | log) ;;
  -h | --help) usage 0 ;;
  *)
    log "unknown scenario '$SCENARIO'"
    usage 2 >&2
    ;;
esac
for arg in "$@"; do
  case "$arg" in
    -h | --help)
      log "the options after the scenario go to txc-bench:"
      build_dir="${TXC_BUILD_DIR:-$ROOT/build}"
      [[ -x "$build_dir/tools/txc-bench/txc-bench" ]] || usage 0
      exec "$build_dir/tools/txc-bench/txc-bench" "$SCENARIO" --help
      ;;
    --url | --pg | --mysql | --dir)
      log "error: $arg is set by this script; run build/tools/txc-bench/txc-bench directly to" \
        "choose it"
      exit 2
      ;;
  esac
done

# --- the binaries ---------------------------------------------------------------------------------

if [[ -z "${TXC_BUILD_DIR:-}" ]]; then
  "$ROOT/scripts/setup.sh"
  "$ROOT/scripts/build.sh" release txcoord txc-bench
  BUILD_DIR="$ROOT/build"
else
  BUILD_DIR="$(realpath -- "$TXC_BUILD_DIR")"
fi
readonly BUILD_DIR
readonly TXCOORD="$BUILD_DIR/coordinator/txcoord"
readonly BENCH="$BUILD_DIR/tools/txc-bench/txc-bench"
[[ -x "$BENCH" ]] || die "$BENCH not found: build it (ninja -C $BUILD_DIR txc-bench)"
if [[ "$SCENARIO" != log && "$SCENARIO" != barrier ]]; then
  [[ -x "$TXCOORD" ]] || die "$TXCOORD not found: build it (ninja -C $BUILD_DIR txcoord)"
  command -v curl >/dev/null || die "curl not found: run scripts/setup.sh"
fi

# --- clean-up, however the run ends -------------------------------------------------------------

RUN_DIR=""
DB_DIR=""
TXCOORD_URL=""
PG_DSN=""
MYSQL_DSN=""
TXCOORD_PID=""
BENCH_PID=""

# stop_pid PID NAME: SIGTERM, then SIGKILL after STOP_TIMEOUT_S.
# shellcheck disable=SC2317  # invoked by the trap
stop_pid() {
  local pid="$1" name="$2" deadline=$((SECONDS + STOP_TIMEOUT_S))
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      log "$name (pid $pid) did not stop within ${STOP_TIMEOUT_S}s: killing it"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.1
  done
  wait "$pid" 2>/dev/null || true
}

# shellcheck disable=SC2317  # invoked by the trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n "$BENCH_PID" ]]; then
    log "stopping txc-bench"
    stop_pid "$BENCH_PID" txc-bench
  fi
  if [[ -n "$TXCOORD_PID" ]]; then
    stop_pid "$TXCOORD_PID" txcoord
  fi
  if [[ -n "$DB_DIR" ]]; then
    "$ROOT/scripts/dbs.sh" stop "$DB_DIR" 2>/dev/null ||
      log "warning: could not stop the database servers in $DB_DIR"
  fi
  if [[ -n "$RUN_DIR" ]]; then
    if [[ "${TXC_BENCH_KEEP:-0}" == 1 ]]; then
      log "kept $RUN_DIR"
    else
      rm -rf -- "$RUN_DIR"
    fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# /tmp, mode 755: the database server users must traverse it (scripts/dbs.sh); short enough for
# unix socket paths.
RUN_DIR="$(mktemp -d /tmp/txc-bench.XXXXXX)"
chmod 755 "$RUN_DIR"
log "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)" \
  "(whatever else runs here shares them)"

# --- servers ------------------------------------------------------------------------------------

# start_txcoord: writes the configuration, starts txcoord on a free port and waits until it is
# ready; sets TXCOORD_URL.
start_txcoord() {
  local config="$RUN_DIR/txcoord.yaml" port=""
  {
    printf 'node_id: %s\n' "$NODE_ID"
    printf 'listen: 127.0.0.1:0\n'
    printf 'log: {kind: file, dir: "%s"}\n' "$RUN_DIR/txc-log"
    printf 'participants: {allow: ["http://127.0.0.1:*"]}\n'
    if [[ "$SCENARIO" == 2pc-db ]]; then
      printf 'resources:\n'
      printf '  - {name: pg, kind: postgres, dsn: "%s"}\n' "$PG_DSN"
      printf '  - {name: my, kind: mysql, dsn: "%s"}\n' "$MYSQL_DSN"
    fi
  } >"$config"
  # The configuration file alone decides: no TXC_* variable of the caller's (TXC_LISTEN, ...)
  # overrides it. Its own session: a Ctrl-C in the terminal reaches this script, whose trap
  # stops txcoord.
  local unset_env=() name
  for name in $(compgen -e); do
    if [[ "$name" == TXC_* ]]; then unset_env+=(-u "$name"); fi
  done
  env "${unset_env[@]}" setsid "$TXCOORD" --config "$config" </dev/null \
    >"$RUN_DIR/txcoord.log" 2>&1 &
  TXCOORD_PID=$!
  local deadline=$((SECONDS + START_TIMEOUT_S))
  while [[ -z "$port" ]]; do
    port="$(sed -n 's/.* event=listening .*port=\([0-9]*\).*/\1/p' "$RUN_DIR/txcoord.log")"
    [[ -n "$port" ]] && break
    if ! kill -0 "$TXCOORD_PID" 2>/dev/null || ((SECONDS >= deadline)); then
      tail -n 20 "$RUN_DIR/txcoord.log" | sed 's/^/    /' >&2
      die "txcoord did not start listening (its log above)"
    fi
    sleep 0.1
  done
  TXCOORD_URL="http://127.0.0.1:$port"
  until curl -fsS -o /dev/null --max-time 2 "$TXCOORD_URL/readyz" 2>/dev/null; do
    if ! kill -0 "$TXCOORD_PID" 2>/dev/null || ((SECONDS >= deadline)); then
      tail -n 20 "$RUN_DIR/txcoord.log" | sed 's/^/    /' >&2
      die "txcoord did not become ready at $TXCOORD_URL (its log above)"
    fi
    sleep 0.1
  done
  log "txcoord $($TXCOORD --version | cut -d' ' -f2) ready at $TXCOORD_URL (pid $TXCOORD_PID," \
    "log in $RUN_DIR/txc-log)"
}

# start_dbs: starts the throwaway PostgreSQL and MariaDB servers; sets PG_DSN and MYSQL_DSN.
start_dbs() {
  DB_DIR="$RUN_DIR/dbs"
  "$ROOT/scripts/dbs.sh" start "$DB_DIR"
  PG_DSN="$(sed -n 's/^TXC_TEST_PG_DSN=//p' "$DB_DIR/env")"
  MYSQL_DSN="$(sed -n 's/^TXC_TEST_MYSQL_DSN=//p' "$DB_DIR/env")"
  [[ -n "$PG_DSN" && -n "$MYSQL_DSN" ]] || die "$DB_DIR/env lacks the DSNs"
}

bench_args=()
case "$SCENARIO" in
  2pc-db)
    start_dbs
    start_txcoord
    bench_args=(--url "$TXCOORD_URL" --pg "$PG_DSN" --mysql "$MYSQL_DSN")
    ;;
  2pc-http | saga-http | tcc-http)
    start_txcoord
    bench_args=(--url "$TXCOORD_URL")
    ;;
  barrier)
    start_dbs
    bench_args=(--pg "$PG_DSN" --mysql "$MYSQL_DSN")
    ;;
  log)
    bench_args=(--dir "$RUN_DIR/log")
    ;;
esac

# --- the run ------------------------------------------------------------------------------------

log "running txc-bench $SCENARIO $*${TXCOORD_URL:+ against $TXCOORD_URL}"
# In the background so that a signal to this script is handled at once (bash waits for a
# foreground child before running a trap); the trap stops it.
"$BENCH" "$SCENARIO" "${bench_args[@]}" "$@" </dev/null &
BENCH_PID=$!
rc=0
wait "$BENCH_PID" || rc=$?
BENCH_PID=""
if [[ -n "$TXCOORD_PID" ]] && ! kill -0 "$TXCOORD_PID" 2>/dev/null; then
  log "warning: txcoord exited during the run; the end of its log:"
  tail -n 20 "$RUN_DIR/txcoord.log" | sed 's/^/    /' >&2
fi
exit "$rc"
