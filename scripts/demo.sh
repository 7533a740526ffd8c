#!/usr/bin/env bash
# The shop demo: txcoord runs three sagas and two TCC transactions across the example order,
# payment and inventory services (examples/shop/README.md), each with a database of its own.
#
#   scripts/demo.sh [--build-dir DIR] [--keep]
#
#   1. scripts/setup.sh, then scripts/build.sh release with the four targets it needs
#      (--build-dir DIR: take the binaries already built in DIR; nothing is installed or built)
#   2. throwaway PostgreSQL and MariaDB (scripts/dbs.sh) in a temporary directory, with the
#      databases shop_order and shop_inventory (PostgreSQL) and shop_payment (MariaDB)
#   3. txcoord and the three services on free loopback ports; accounts alice (100) and bob (10),
#      item widget (stock 10)
#   4. the sagas and TCC transactions of examples/shop/sagas submitted with curl (wait: true),
#      each transaction document printed; then the balances, the stock and the orders
#   5. checks of every outcome and final number: exit 1 when one is not as expected
#
# Everything it started is stopped however it ends; --keep keeps the temporary directory (the
# processes' logs) and prints its path.
set -euo pipefail

readonly PROG="demo.sh"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT
readonly SAGAS="$ROOT/examples/shop/sagas"
readonly PG_BIN=/usr/lib/postgresql/15/bin
readonly START_TIMEOUT_S=30
readonly STOP_TIMEOUT_S=10
readonly TARGETS=(txcoord txc-example-order txc-example-payment txc-example-inventory)

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}
usage() {
  sed -n '2,21s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
  exit "${1:-0}"
}

build_dir=""
keep=0
while (($# > 0)); do
  case "$1" in
    --build-dir)
      (($# >= 2)) || die "--build-dir needs a directory"
      build_dir="$(realpath -- "$2")"
      shift
      ;;
    --keep) keep=1 ;;
    -h | --help) usage 0 ;;
    *)
      log "unknown argument '$1'"
      usage 2 >&2
      ;;
  esac
  shift
done

# --- 1. set up and build -----------------------------------------------------------------------

if [[ -z "$build_dir" ]]; then
  "$ROOT/scripts/setup.sh"
  "$ROOT/scripts/build.sh" release "${TARGETS[@]}"
  build_dir="$ROOT/build"
fi
readonly TXCOORD="$build_dir/coordinator/txcoord"
for binary in "$TXCOORD" "$build_dir"/examples/shop/txc-example-{order,payment,inventory}; do
  [[ -x "$binary" ]] || die "$binary was not built"
done
for tool in curl mariadb; do
  command -v "$tool" >/dev/null || die "$tool not found: run scripts/setup.sh"
done

# --- processes and their cleanup ---------------------------------------------------------------

WORK="$(mktemp -d /tmp/txc-demo.XXXXXX)"
readonly WORK
chmod 755 "$WORK"
pids=()
dbs_started=0

cleanup() {
  local rc=$? pid deadline
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  deadline=$((SECONDS + STOP_TIMEOUT_S))
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      log "process $pid did not stop within ${STOP_TIMEOUT_S}s: killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  if ((dbs_started)); then "$ROOT/scripts/dbs.sh" stop "$WORK/dbs" >/dev/null 2>&1 || true; fi
  if ((keep)); then
    log "kept $WORK (logs: $WORK/*.log)"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start NAME COMMAND...: runs COMMAND in the background with its output in $WORK/NAME.log.
start() {
  local name="$1"
  shift
  "$@" >"$WORK/$name.log" 2>&1 &
  pids+=($!)
  eval "${name}_pid=$!"
}

# listening_port NAME PID: waits for the `event=listening ... port=N` line of NAME's log and
# prints N. Every process here listens on port 0, so the kernel picks a free port and no other
# program can take it between a check and the bind.
listening_port() {
  local name="$1" pid="$2" deadline=$((SECONDS + START_TIMEOUT_S)) port
  while :; do
    port="$(sed -n 's/.*event=listening .*port=\([0-9][0-9]*\).*/\1/p' "$WORK/$name.log" | head -n 1)"
    [[ -n "$port" ]] && break
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 20 "$WORK/$name.log" >&2
      die "$name exited before it listened (log above)"
    fi
    ((SECONDS < deadline)) || die "$name did not listen within ${START_TIMEOUT_S}s ($WORK/$name.log)"
    sleep 0.1
  done
  echo "$port"
}

# --- 2. databases ------------------------------------------------------------------------------

dbs_started=1  # before the start: an interrupted start leaves a server to stop
"$ROOT/scripts/dbs.sh" start "$WORK/dbs"
# DIR/env's settings as shell variables, not exported: txcoord would warn about every TXC_*
# variable that is not one of its keys.
while IFS= read -r line; do
  [[ -n "$line" ]] && printf -v "${line%%=*}" '%s' "${line#*=}"
done <"$WORK/dbs/env"
# The test user may not create databases on PostgreSQL: the superuser does it over the server's
# socket, and hands them to the test user. On MariaDB the test user has every privilege.
for database in shop_order shop_inventory; do
  "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$TXC_TEST_PG_ADMIN_DSN" \
    -c "CREATE DATABASE $database OWNER $TXC_TEST_PG_USER" >/dev/null
done
mariadb --no-defaults --protocol=tcp -h "$TXC_TEST_MYSQL_HOST" -P "$TXC_TEST_MYSQL_PORT" \
  -u "$TXC_TEST_MYSQL_USER" "-p$TXC_TEST_MYSQL_PASSWORD" -e "CREATE DATABASE shop_payment"
readonly PG_BASE="postgresql://$TXC_TEST_PG_USER:$TXC_TEST_PG_PASSWORD@$TXC_TEST_PG_HOST:$TXC_TEST_PG_PORT"
readonly MYSQL_BASE="mysql://$TXC_TEST_MYSQL_USER:$TXC_TEST_MYSQL_PASSWORD@$TXC_TEST_MYSQL_HOST:$TXC_TEST_MYSQL_PORT"

# --- 3. txcoord, the services, the seed data ---------------------------------------------------

start txcoord env TXC_LISTEN=127.0.0.1:0 TXC_LOG_DIR="$WORK/txc" \
  TXC_PARTICIPANTS_ALLOW="http://127.0.0.1:*" "$TXCOORD"
start order "$build_dir/examples/shop/txc-example-order" --listen 127.0.0.1:0 \
  --dsn "$PG_BASE/shop_order"
start payment "$build_dir/examples/shop/txc-example-payment" --listen 127.0.0.1:0 \
  --dsn "$MYSQL_BASE/shop_payment"
start inventory "$build_dir/examples/shop/txc-example-inventory" --listen 127.0.0.1:0 \
  --dsn "$PG_BASE/shop_inventory"
# shellcheck disable=SC2154 # set by start through eval
{
  COORDINATOR="http://127.0.0.1:$(listening_port txcoord "$txcoord_pid")"
  ORDER_URL="http://127.0.0.1:$(listening_port order "$order_pid")"
  PAYMENT_URL="http://127.0.0.1:$(listening_port payment "$payment_pid")"
  INVENTORY_URL="http://127.0.0.1:$(listening_port inventory "$inventory_pid")"
}
readonly COORDINATOR ORDER_URL PAYMENT_URL INVENTORY_URL

deadline=$((SECONDS + START_TIMEOUT_S))
until curl -sf -o /dev/null "$COORDINATOR/readyz"; do
  ((SECONDS < deadline)) || die "txcoord was not ready within ${START_TIMEOUT_S}s"
  sleep 0.1
done
log "txcoord $COORDINATOR, order $ORDER_URL, payment $PAYMENT_URL, inventory $INVENTORY_URL"

# call METHOD URL [BODY]: prints the answer's body; fails unless it is 2xx.
call() {
  local answer status
  answer="$(curl -sS -X "$1" "$2" -H 'Content-Type: application/json' ${3:+--data-binary "$3"} \
    -w '\n%{http_code}')"
  status="${answer##*$'\n'}"
  answer="${answer%$'\n'*}"
  printf '%s\n' "$answer"
  [[ "$status" == 2* ]] || {
    log "$1 $2 answered $status"
    return 1
  }
}

# show JSON: pretty when jq is there.
show() {
  if command -v jq >/dev/null; then jq . <<<"$1"; else printf '%s\n' "$1"; fi
}

# field JSON NAME: the first string or number value of NAME in JSON: the top-level one when the
# object names it before its nested parts (as the transaction document does with "state").
field() {
  { grep -oE "\"$2\":(\"[^\"]*\"|-?[0-9]+)" <<<"$1" || true; } | head -n 1 | cut -d: -f2- | tr -d '"'
}

call PUT "$PAYMENT_URL/accounts/alice" '{"balance": 100}' >/dev/null
call PUT "$PAYMENT_URL/accounts/bob" '{"balance": 10}' >/dev/null
call PUT "$INVENTORY_URL/items/widget" '{"stock": 10}' >/dev/null
echo "Seeded: alice 100, bob 10, widget stock 10."

# --- 4. the sagas and TCC transactions ------------------------------------------------------------

# A suffix that makes this run's gids and order ids new, so that the specs can be resubmitted to
# a coordinator and services that keep their data.
RUN="$(date +%Y%m%d%H%M%S)-$$"
readonly RUN
failures=0
check() {
  local what="$1" got="$2" want="$3"
  if [[ "$got" == "$want" ]]; then
    echo "  ok: $what = $got"
  else
    echo "  NOT OK: $what = ${got:-<none>}, expected $want"
    failures=$((failures + 1))
  fi
}

# submit FILE: the saga with its placeholders filled in; prints the transaction document and sets
# DOCUMENT.
submit() {
  local spec
  spec="$(sed -e "s|{{ORDER_URL}}|$ORDER_URL|g" -e "s|{{PAYMENT_URL}}|$PAYMENT_URL|g" \
    -e "s|{{INVENTORY_URL}}|$INVENTORY_URL|g" -e "s|{{RUN}}|$RUN|g" "$SAGAS/$1")"
  echo
  echo "== $1: POST /v1/transactions"
  DOCUMENT="$(call POST "$COORDINATOR/v1/transactions" "$spec")" || {
    show "$DOCUMENT"
    die "txcoord refused $1"
  }
  show "$DOCUMENT"
}

submit order-ok.json
check "state" "$(field "$DOCUMENT" state)" succeeded
check "outcome" "$(field "$DOCUMENT" outcome)" committed

submit order-insufficient-funds.json
check "state" "$(field "$DOCUMENT" state)" compensated
check "outcome" "$(field "$DOCUMENT" outcome)" aborted

submit order-parallel.json
check "state" "$(field "$DOCUMENT" state)" succeeded
check "outcome" "$(field "$DOCUMENT" outcome)" committed

# TCC: funds frozen and stock reserved by the tries, then confirmed; or, when one try is refused,
# everything released again.
submit tcc-order-ok.json
check "state" "$(field "$DOCUMENT" state)" confirmed
check "outcome" "$(field "$DOCUMENT" outcome)" committed

submit tcc-order-out-of-stock.json
check "state" "$(field "$DOCUMENT" state)" cancelled
check "outcome" "$(field "$DOCUMENT" outcome)" aborted

# --- 5. what the services hold now -------------------------------------------------------------

echo
echo "== balances, stock and orders"
alice="$(call GET "$PAYMENT_URL/accounts/alice")"
bob="$(call GET "$PAYMENT_URL/accounts/bob")"
widget="$(call GET "$INVENTORY_URL/items/widget")"
orders="$(call GET "$ORDER_URL/orders")"
printf '%s\n%s\n%s\n' "$alice" "$bob" "$widget"
show "$orders"
echo
check "alice's balance (100 - 30 - 20 - 15 TCC)" "$(field "$alice" balance)" 35
check "alice's frozen funds (TCC confirmed or cancelled)" "$(field "$alice" frozen)" 0
check "bob's balance (refused, untouched)" "$(field "$bob" balance)" 10
check "widget stock (10 - 2 - 1 - 1 TCC)" "$(field "$widget" stock)" 6
check "widget reserved (TCC confirmed or cancelled)" "$(field "$widget" reserved)" 0
check "order ok-$RUN" "$(field "$(call GET "$ORDER_URL/orders/ok-$RUN")" status)" created
check "order poor-$RUN (compensated)" \
  "$(field "$(call GET "$ORDER_URL/orders/poor-$RUN")" status)" cancelled
check "order par-$RUN" "$(field "$(call GET "$ORDER_URL/orders/par-$RUN")" status)" created

echo
if ((failures > 0)); then
  log "$failures check(s) failed (run with --keep to keep the logs)"
  exit 1
fi
echo "All checks passed."
