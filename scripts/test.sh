#!/usr/bin/env bash
# The one command that sets up, builds and runs every test:
#
#   scripts/test.sh [--quick] [--tsan] [--keep-dbs] [-L LABEL]...
#
#   1. scripts/setup.sh                 install what is missing
#   2. scripts/build.sh release         build/ (everything)
#   3. scripts/build.sh asan            build-asan/ (unit tests, ASan + UBSan)
#   4. scripts/dbs.sh start             throwaway PostgreSQL and MariaDB in a fresh /tmp dir,
#                                       stopped again however this script ends
#   5. ctest in build/                  labels unit, integration, e2e, chaos (and any test with
#                                       none of these labels)
#   6. ctest -L unit in build-asan/     any sanitizer report fails the run
#
#   --quick      skip the sanitizer build and run
#   --tsan       also build build-tsan/ and run the unit tests under ThreadSanitizer
#   --keep-dbs   keep the database directory (its path is printed) instead of removing it
#   -L LABEL     run only this label (repeatable); the sanitizer run only comes with `unit`
#
# Prints one summary line per phase and exits non-zero if any phase failed.
set -euo pipefail

readonly PROG="test.sh"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT
readonly DEFAULT_LABELS=(unit integration e2e chaos)
JOBS="${TXC_JOBS:-$(nproc)}"
readonly JOBS

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() {
  log "error: $*"
  exit 2
}
usage() {
  sed -n '2,22s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
  exit "${1:-0}"
}

quick=0
tsan=0
keep_dbs=0
labels=()
while (($# > 0)); do
  case "$1" in
    --quick) quick=1 ;;
    --tsan) tsan=1 ;;
    --keep-dbs) keep_dbs=1 ;;
    -L)
      (($# >= 2)) || die "-L needs a label"
      labels+=("$2")
      shift
      ;;
    -L*) labels+=("${1#-L}") ;;
    -h | --help) usage 0 ;;
    *)
      log "unknown argument '$1'"
      usage 2 >&2
      ;;
  esac
  shift
done
explicit_labels=$((${#labels[@]} > 0))
((explicit_labels)) || labels=("${DEFAULT_LABELS[@]}")

wants_label() {
  local label
  for label in "${labels[@]}"; do [[ "$label" == "$1" ]] && return 0; done
  return 1
}

# --- phases and their summary -------------------------------------------------------------------

phase_names=()
phase_results=()
phase_details=()
failed=0
tests_passed=0
tests_failed=0

# record NAME PASS|FAIL|SKIP DETAIL
record() {
  phase_names+=("$1")
  phase_results+=("$2")
  phase_details+=("$3")
  [[ "$2" != FAIL ]] || failed=1
  log "$2 $1${3:+: $3}"
}

print_summary() {
  local i
  echo
  echo "$PROG: ---- summary ----"
  for i in "${!phase_names[@]}"; do
    printf '%s: %-4s  %-26s %s\n' "$PROG" "${phase_results[$i]}" "${phase_names[$i]}" \
      "${phase_details[$i]}"
  done
  # The closing line, in the plain form CI reads: every test of every ctest phase.
  printf 'tests: %d passed, %d failed\n' "$tests_passed" "$tests_failed"
}

# run_step NAME CMD...: runs CMD as a phase; false when it failed.
run_step() {
  local name="$1" started_at=$SECONDS rc=0
  shift
  log "---- $name ----"
  "$@" || rc=$?
  if ((rc == 0)); then
    record "$name" PASS "$((SECONDS - started_at))s"
  else
    record "$name" FAIL "exit $rc after $((SECONDS - started_at))s"
  fi
  return "$rc"
}

# run_ctest NAME BUILD_DIR LABEL JOBS [VAR=VALUE...]: one ctest phase for LABEL (an exact
# label; `--unlabelled` for the tests with none of the default labels).
run_ctest() {
  local name="$1" build_dir="$2" label="$3" jobs="$4" started_at=$SECONDS rc=0
  shift 4
  local selection=(-L "^${label}\$")
  if [[ "$label" == --unlabelled ]]; then
    local known
    known="$(
      IFS='|'
      echo "${DEFAULT_LABELS[*]}"
    )"
    selection=(-LE "^(${known})\$")
  fi
  local output="$RUN_DIR/ctest-${name//[^A-Za-z0-9]/_}.log"
  log "---- $name ----"
  # ctest runs in a session of its own, in the background, so that a signal to this script is
  # handled at once (a foreground child would make bash wait) and the trap can stop ctest and
  # every test it started. tail shows its output as it comes.
  : >"$output"
  setsid env "$@" ctest --test-dir "$build_dir" --output-on-failure -j "$jobs" \
    "${selection[@]}" </dev/null >"$output" 2>&1 &
  CTEST_PID=$!
  tail -n +1 -s 0.2 -f --pid="$CTEST_PID" "$output" &
  local tail_pid=$!
  wait "$CTEST_PID" || rc=$?
  CTEST_PID=""
  wait "$tail_pid" || true
  local elapsed="$((SECONDS - started_at))s"
  # "100% tests passed, 0 tests failed out of 12"
  local summary total failed_count
  summary="$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$output" |
    tail -n 1 || true)"
  if [[ -n "$summary" ]]; then
    total="$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$summary")"
    failed_count="$(sed -E 's/.*passed, ([0-9]+) tests? failed.*/\1/' <<<"$summary")"
    tests_passed=$((tests_passed + total - failed_count))
    tests_failed=$((tests_failed + failed_count))
    local detail="$((total - failed_count)) passed, $failed_count failed, $elapsed"
    if ((rc == 0 && failed_count == 0)); then
      record "$name" PASS "$detail"
    else
      record "$name" FAIL "$detail (ctest exit $rc)"
    fi
  elif ((rc == 0)) && grep -q 'No tests were found' "$output"; then
    record "$name" SKIP "no tests with this label"
  else
    record "$name" FAIL "ctest exit $rc, no summary line (see above)"
  fi
}

# Does LeakSanitizer work here? It does not under ptrace or in some sandboxes.
lsan_works() {
  local probe_dir="$RUN_DIR/lsan-probe"
  mkdir -p "$probe_dir"
  printf 'int main() { return 0; }\n' >"$probe_dir/probe.cc"
  g++ -fsanitize=address "$probe_dir/probe.cc" -o "$probe_dir/probe" 2>/dev/null &&
    ASAN_OPTIONS=detect_leaks=1 "$probe_dir/probe" >/dev/null 2>&1
}

# --- clean-up, however the run ends -------------------------------------------------------------

RUN_DIR=""
DB_DIR=""
CTEST_PID=""
# stop_servers: stops the servers if they were started; false if they would not stop.
# shellcheck disable=SC2317  # invoked through run_step and the trap
stop_servers() {
  [[ -n "$DB_DIR" ]] || return 0
  local dir="$DB_DIR"
  DB_DIR=""
  "$ROOT/scripts/dbs.sh" stop "$dir"
}

# shellcheck disable=SC2317  # invoked by the trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n "$CTEST_PID" ]]; then
    log "stopping ctest and its tests"
    kill -TERM -- "-$CTEST_PID" 2>/dev/null || true
    sleep 1
    kill -KILL -- "-$CTEST_PID" 2>/dev/null || true
  fi
  if [[ -n "$DB_DIR" ]]; then
    log "stopping the database servers"
    stop_servers || log "warning: could not stop the servers in $RUN_DIR/dbs"
  fi
  if [[ -n "$RUN_DIR" ]]; then
    if ((keep_dbs)); then
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

# /tmp, mode 755: the server users need to traverse it whoever runs this and wherever the
# repository lives (e.g. under /root).
RUN_DIR="$(mktemp -d /tmp/txc-test.XXXXXX)"
chmod 755 "$RUN_DIR"

# --- 1. set-up and builds -----------------------------------------------------------------------

run_step "setup" "$ROOT/scripts/setup.sh" || {
  print_summary
  exit 1
}

release_built=0
run_step "build release" "$ROOT/scripts/build.sh" release && release_built=1

run_asan=0
if ((quick == 0)) && wants_label unit; then
  run_step "build asan" "$ROOT/scripts/build.sh" asan && run_asan=1
fi
run_tsan=0
if ((tsan)) && wants_label unit; then
  run_step "build tsan" "$ROOT/scripts/build.sh" tsan && run_tsan=1
fi

# --- 2. servers ---------------------------------------------------------------------------------

needs_servers=0
for label in "${labels[@]}"; do [[ "$label" == unit ]] || needs_servers=1; done

servers_up=0
if ((release_built && needs_servers)); then
  DB_DIR="$RUN_DIR/dbs"
  if run_step "databases" "$ROOT/scripts/dbs.sh" start "$DB_DIR"; then
    servers_up=1
    set -a
    # shellcheck source=/dev/null
    source "$DB_DIR/env"
    set +a
  fi
fi

# --- 3. tests -----------------------------------------------------------------------------------

if ((release_built)); then
  for label in "${labels[@]}"; do
    if [[ "$label" != unit ]] && ((servers_up == 0)); then
      # Run them all the same: each test that needs a server fails and says which variable.
      log "the database servers are not up: the $label tests will fail"
    fi
    if [[ "$label" == unit ]]; then
      run_ctest "$label (release)" "$ROOT/build" "$label" "$JOBS"
    else
      # One at a time: they share the servers, and chaos tests restart them.
      run_ctest "$label (release)" "$ROOT/build" "$label" 1
    fi
  done
  if ((explicit_labels == 0)); then
    unlabelled="$(ctest --test-dir "$ROOT/build" -N -LE "^(unit|integration|e2e|chaos)\$" |
      sed -nE 's/^Total Tests: ([0-9]+)$/\1/p')"
    if [[ "${unlabelled:-0}" != 0 ]]; then
      run_ctest "unlabelled (release)" "$ROOT/build" --unlabelled 1
    fi
  fi
else
  record "tests (release)" SKIP "the release build failed"
fi

if ((run_asan)); then
  leaks=1
  if ! lsan_works; then
    leaks=0
    log "LeakSanitizer does not work here: running ASan without leak detection"
  fi
  run_ctest "unit (asan+ubsan)" "$ROOT/build-asan" unit "$JOBS" \
    "ASAN_OPTIONS=halt_on_error=1:detect_leaks=$leaks:print_stacktrace=1:check_initialization_order=1:strict_init_order=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}" \
    "UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
elif ((quick == 0)) && wants_label unit; then
  record "unit (asan+ubsan)" SKIP "the asan build failed"
fi
if ((run_tsan)); then
  run_ctest "unit (tsan)" "$ROOT/build-tsan" unit "$JOBS" \
    "TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
fi

# Stop the servers before the summary, so that it is the last thing printed.
if [[ -n "$DB_DIR" ]]; then
  run_step "stop databases" stop_servers || true
fi

print_summary
exit "$failed"
