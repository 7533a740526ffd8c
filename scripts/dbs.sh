#!/usr/bin/env bash
# Throwaway PostgreSQL 15 and MariaDB 10.11 servers for the integration, e2e and chaos tests.
#
#   scripts/dbs.sh start DIR             start both servers in DIR (initialising them the first
#                                        time), wait until they answer, write DIR/env
#   scripts/dbs.sh stop DIR              stop both (fast shutdown, then SIGKILL), wait for exit
#   scripts/dbs.sh env DIR               print DIR/env as `export` lines (for eval)
#   scripts/dbs.sh status DIR            say which server is running
#   scripts/dbs.sh start-pg|stop-pg|restart-pg DIR [--kill]
#   scripts/dbs.sh start-mysql|stop-mysql|restart-mysql DIR [--kill]
#                                        one server only; --kill stops it with SIGKILL (a crash)
#                                        instead of a clean shutdown. Ports stay the same, so the
#                                        DSNs in DIR/env stay valid.
#
# Both servers listen on 127.0.0.1 only, on free ports picked at the first start. As root they
# run as the `postgres` and `mysql` users (both refuse to run as root); otherwise as the caller.
# Layout: DIR/env, DIR/pg/{data,log,port,.s.PGSQL.*}, DIR/mysql/{data,err.log,port,sock,...}.
set -euo pipefail

readonly PROG="dbs.sh"
readonly PG_BIN=/usr/lib/postgresql/15/bin
readonly MARIADBD=/usr/sbin/mariadbd
readonly TEST_DB=txc_test
readonly TEST_USER=txc
readonly TEST_PASSWORD=txc_test_pw
readonly START_TIMEOUT_S="${TXC_DBS_START_TIMEOUT_S:-60}"
readonly STOP_TIMEOUT_S="${TXC_DBS_STOP_TIMEOUT_S:-30}"
readonly PORT_ATTEMPTS=5
SCRIPT_PATH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
readonly SCRIPT_PATH

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

usage() {
  sed -n '2,17s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
  exit 2
}

# --- users and processes ---------------------------------------------------------------------

if ((EUID == 0)); then
  PG_OS_USER=postgres
  MYSQL_OS_USER=mysql
else
  PG_OS_USER="$(id -un)"
  MYSQL_OS_USER="$PG_OS_USER"
fi
readonly PG_OS_USER MYSQL_OS_USER

# as_prefix USER: sets AS_PREFIX to the command prefix that runs a command as USER: empty for a
# non-root caller; as root, setpriv + env (every step execs, so `(exec "${AS_PREFIX[@]}" cmd) &`
# leaves $! equal to cmd's PID).
as_prefix() {
  local user="$1"
  AS_PREFIX=()
  if ((EUID == 0)); then
    AS_PREFIX=(setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups
      env HOME="$DIR" USER="$user" LOGNAME="$user")
  fi
}

# as_user USER CMD...: runs CMD as USER from DIR, so that tools that look at their working
# directory never see one they cannot read (e.g. the repo under /root).
as_user() {
  local user="$1"
  shift
  as_prefix "$user"
  (cd "$DIR" && exec "${AS_PREFIX[@]}" "$@")
}

# pid_alive PID: true while PID runs. A zombie counts as dead: on some machines PID 1 reaps
# orphans only every second or two.
pid_alive() {
  local state
  [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null || return 1
  state="$(awk '/^State:/ { print $2; exit }' "/proc/$1/status" 2>/dev/null || true)"
  [[ "$state" != "Z" ]]
}

# wait_gone PID SECONDS [reaped]: true once PID has exited (with `reaped`: and has been reaped,
# i.e. the PID no longer exists at all).
wait_gone() {
  local pid="$1" deadline=$((SECONDS + $2)) reaped="${3:-}"
  while if [[ -n "$reaped" ]]; then kill -0 "$pid" 2>/dev/null; else pid_alive "$pid"; fi; do
    ((SECONDS < deadline)) || return 1
    sleep 0.05
  done
}

show_log() {
  local file="$1"
  if [[ -f "$file" ]]; then
    log "last lines of $file:"
    tail -n 40 "$file" | sed 's/^/    /' >&2
  else
    log "($file does not exist)"
  fi
}

# --- ports -------------------------------------------------------------------------------------

# True when any socket on this machine uses TCP port $1 (listening or connected, IPv4 or IPv6).
port_in_use() {
  local needle
  needle="$(printf ':%04X ' "$1")"
  grep -qF "$needle" /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# A port that nothing uses now, below the kernel's ephemeral range and not $1 (the other server).
pick_port() {
  local avoid="${1:-0}" port i
  for ((i = 0; i < 200; i++)); do
    port=$((20000 + RANDOM % 12000))
    if ((port != avoid)) && ! port_in_use "$port"; then
      echo "$port"
      return 0
    fi
  done
  die "found no free TCP port in 20000-31999"
}

# --- directory ---------------------------------------------------------------------------------

# Makes DIR and every parent traversable for the server users (as root), and DIR/pg, DIR/mysql
# owned by them.
prepare_dir() {
  mkdir -p "$DIR"
  chmod 755 "$DIR"
  if ((EUID == 0)); then
    local parent mode
    parent="$(dirname "$DIR")"
    while [[ "$parent" != "/" ]]; do
      mode="$(stat -c '%a' "$parent")"
      if (((8#$mode & 8#001) == 0)); then
        log "making $parent traversable (o+x) for the server users"
        chmod o+x "$parent"
      fi
      parent="$(dirname "$parent")"
    done
  fi
  mkdir -p "$DIR/pg" "$DIR/mysql"
  chmod 755 "$DIR/pg" "$DIR/mysql"
  if ((EUID == 0)); then
    chown "$PG_OS_USER:" "$DIR/pg"
    chown "$MYSQL_OS_USER:" "$DIR/mysql"
  fi
  # A unix socket path is at most 107 bytes: DIR/pg/.s.PGSQL.NNNNN and DIR/mysql/sock.
  ((${#DIR} <= 80)) || die "DIR is too long for unix socket paths (${#DIR} > 80 bytes): $DIR"
}

# --- PostgreSQL --------------------------------------------------------------------------------

pg_pid() {
  local file="$DIR/pg/data/postmaster.pid"
  if [[ -f "$file" ]]; then head -n 1 "$file"; fi
}

# runs_binary PID NAME: PID is alive and runs a program called NAME (not a recycled PID).
runs_binary() {
  local program=""
  pid_alive "$1" || return 1
  IFS= read -r -d '' program <"/proc/$1/cmdline" 2>/dev/null || true
  [[ "$program" == *"$2" ]]
}

pg_running() { runs_binary "$(pg_pid)" postgres; }

pg_port() { cat "$DIR/pg/port" 2>/dev/null || true; }

pg_init() {
  [[ -f "$DIR/pg/data/PG_VERSION" ]] && return 0
  [[ -x "$PG_BIN/initdb" ]] || die "$PG_BIN/initdb not found: run scripts/setup.sh"
  if ! as_user "$PG_OS_USER" "$PG_BIN/initdb" -D "$DIR/pg/data" -U postgres \
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 --no-sync \
    --no-instructions >"$DIR/pg/initdb.log" 2>&1; then
    show_log "$DIR/pg/initdb.log"
    die "initdb failed"
  fi
  # The port comes from the command line (-p), everything else from here, so a plain
  # `pg_ctl start` after a crash gets the same settings.
  cat >>"$DIR/pg/data/postgresql.conf" <<EOF

# --- txc throwaway test server (scripts/dbs.sh) ---
listen_addresses = '127.0.0.1'
unix_socket_directories = '$DIR/pg'
max_prepared_transactions = 100
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 64MB
EOF
}

# pg_start_once PORT: false (with the log shown) when the server did not come up.
pg_start_once() {
  local port="$1"
  as_user "$PG_OS_USER" "$PG_BIN/pg_ctl" -D "$DIR/pg/data" -l "$DIR/pg/log" -w \
    -t "$START_TIMEOUT_S" -o "-p $port" start >"$DIR/pg/pg_ctl.out" 2>&1
}

pg_psql() {
  as_user "$PG_OS_USER" "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$DIR/pg" -p "$(pg_port)" \
    -U postgres "$@"
}

# Creates the test role and database the first time (idempotent).
pg_provision() {
  pg_psql -d postgres <<EOF >/dev/null
SELECT 'CREATE ROLE $TEST_USER LOGIN' WHERE NOT EXISTS
  (SELECT 1 FROM pg_roles WHERE rolname = '$TEST_USER')\gexec
ALTER ROLE $TEST_USER LOGIN PASSWORD '$TEST_PASSWORD';
SELECT 'CREATE DATABASE $TEST_DB OWNER $TEST_USER' WHERE NOT EXISTS
  (SELECT 1 FROM pg_database WHERE datname = '$TEST_DB')\gexec
EOF
}

# The test user over TCP with its password: what the tests will do.
pg_answers() {
  PGPASSWORD="$TEST_PASSWORD" PGCONNECT_TIMEOUT=5 "$PG_BIN/psql" -X -q -At \
    -h 127.0.0.1 -p "$(pg_port)" -U "$TEST_USER" -d "$TEST_DB" -c 'SELECT 1' >/dev/null 2>&1
}

pg_start() {
  if pg_running; then
    log "PostgreSQL already running (pid $(pg_pid), port $(pg_port))"
    return 0
  fi
  pg_init
  local attempt port fixed=1
  port="$(pg_port)"
  if [[ -z "$port" ]]; then
    fixed=0
    port="$(pick_port "$(mysql_port)")"
  fi
  for ((attempt = 1; ; attempt++)); do
    echo "$port" >"$DIR/pg/port"
    pg_start_once "$port" && break
    if ((fixed == 0 && attempt < PORT_ATTEMPTS)) &&
      grep -q 'Address already in use' "$DIR/pg/log" 2>/dev/null; then
      log "port $port was taken meanwhile, trying another one"
      port="$(pick_port "$(mysql_port)")"
      continue
    fi
    cat "$DIR/pg/pg_ctl.out" >&2 || true
    show_log "$DIR/pg/log"
    die "PostgreSQL did not start on 127.0.0.1:$port (log above; start timeout ${START_TIMEOUT_S}s)"
  done
  pg_provision || {
    show_log "$DIR/pg/log"
    die "could not create the PostgreSQL test role and database"
  }
  pg_answers || {
    show_log "$DIR/pg/log"
    die "PostgreSQL started but $TEST_USER cannot connect to $TEST_DB over 127.0.0.1:$port"
  }
  log "PostgreSQL 15 up on 127.0.0.1:$port (pid $(pg_pid))"
}

# pg_stop [--kill]
pg_stop() {
  local mode="${1:-}" pid
  pid="$(pg_pid)"
  if ! pg_running; then
    log "PostgreSQL not running"
    return 0
  fi
  if [[ "$mode" != "--kill" ]]; then
    if as_user "$PG_OS_USER" "$PG_BIN/pg_ctl" -D "$DIR/pg/data" -m fast -w \
      -t "$STOP_TIMEOUT_S" stop >"$DIR/pg/pg_ctl.out" 2>&1 && wait_gone "$pid" 5; then
      log "PostgreSQL stopped"
      return 0
    fi
    log "PostgreSQL did not stop within ${STOP_TIMEOUT_S}s: killing it"
  fi
  # Like a machine crash: the postmaster and every backend at once (each backend runs in a
  # session of its own, so there is no process group to signal). A new postmaster refuses to
  # start while the PID in postmaster.pid exists (even as a zombie) or an old backend still
  # holds the shared memory, so wait until all of them are reaped.
  local children child
  children="$(ps -o pid= --ppid "$pid" || true)"
  kill -KILL "$pid" 2>/dev/null || true
  for child in $children; do kill -KILL "$child" 2>/dev/null || true; done
  for child in "$pid" $children; do
    wait_gone "$child" "$STOP_TIMEOUT_S" reaped || die "PostgreSQL process $child still exists"
  done
  log "PostgreSQL killed"
}

# --- MariaDB -----------------------------------------------------------------------------------

mysql_pid() {
  local file="$DIR/mysql/mariadbd.pid"
  if [[ -f "$file" ]]; then cat "$file"; fi
}

mysql_running() { runs_binary "$(mysql_pid)" mariadbd; }

mysql_port() { cat "$DIR/mysql/port" 2>/dev/null || true; }

mysql_init() {
  [[ -d "$DIR/mysql/data/mysql" ]] && return 0
  [[ -x "$MARIADBD" ]] || die "$MARIADBD not found: run scripts/setup.sh"
  if ! as_user "$MYSQL_OS_USER" mariadb-install-db --no-defaults --datadir="$DIR/mysql/data" \
    --skip-test-db --skip-name-resolve --auth-root-authentication-method=socket \
    --auth-root-socket-user="$MYSQL_OS_USER" >"$DIR/mysql/install.log" 2>&1; then
    show_log "$DIR/mysql/install.log"
    die "mariadb-install-db failed"
  fi
  # Runs at every start, before the server accepts connections.
  cat >"$DIR/mysql/init.sql" <<EOF
CREATE DATABASE IF NOT EXISTS $TEST_DB;
CREATE USER IF NOT EXISTS '$TEST_USER'@'%' IDENTIFIED BY '$TEST_PASSWORD';
ALTER USER '$TEST_USER'@'%' IDENTIFIED BY '$TEST_PASSWORD';
GRANT ALL PRIVILEGES ON *.* TO '$TEST_USER'@'%';
EOF
  if ((EUID == 0)); then chown "$MYSQL_OS_USER:" "$DIR/mysql/init.sql"; fi
}

mysql_client() {
  mariadb --no-defaults --protocol=tcp -h 127.0.0.1 -P "$(mysql_port)" -u "$TEST_USER" \
    "-p$TEST_PASSWORD" --connect-timeout=2 "$@"
}

mysql_answers() { mysql_client -N -e 'SELECT 1' "$TEST_DB" >/dev/null 2>&1; }

# mysql_start_once PORT: false when the server did not come up.
mysql_start_once() {
  local port="$1" pid deadline
  # A fresh error log per start (earlier ones go to err.old.log): the caller greps it.
  if [[ -f "$DIR/mysql/err.log" ]]; then cat "$DIR/mysql/err.log" >>"$DIR/mysql/err.old.log"; fi
  : >"$DIR/mysql/err.log"
  if ((EUID == 0)); then chown "$MYSQL_OS_USER:" "$DIR/mysql/err.log"; fi
  # setsid: its own session, so a Ctrl-C in the terminal reaches the tests, not the server (the
  # test script stops it). Output to files: the server must not hold the caller's pipes open.
  as_prefix "$MYSQL_OS_USER"
  (cd "$DIR" && exec "${AS_PREFIX[@]}" setsid "$MARIADBD" --no-defaults --datadir="$DIR/mysql/data" \
    --bind-address=127.0.0.1 --port="$port" --socket="$DIR/mysql/sock" \
    --pid-file="$DIR/mysql/mariadbd.pid" --log-error="$DIR/mysql/err.log" \
    --init-file="$DIR/mysql/init.sql" --skip-name-resolve --character-set-server=utf8mb4 \
    --innodb-buffer-pool-size=64M --innodb-flush-log-at-trx-commit=2 --innodb-doublewrite=0 \
    --max-connections=200) </dev/null >>"$DIR/mysql/stdout.log" 2>&1 &
  pid=$!
  deadline=$((SECONDS + START_TIMEOUT_S))
  while ! mysql_answers; do
    if ! pid_alive "$pid"; then
      wait "$pid" 2>/dev/null || true
      return 1
    fi
    if ((SECONDS >= deadline)); then
      kill -KILL "$pid" 2>/dev/null || true
      wait_gone "$pid" 10 || true
      return 1
    fi
    sleep 0.1
  done
  # The pid file is written before networking starts; the server must be the process we forked.
  [[ "$(mysql_pid)" == "$pid" ]] || log "warning: pid file says $(mysql_pid), started $pid"
}

mysql_start() {
  if mysql_running; then
    log "MariaDB already running (pid $(mysql_pid), port $(mysql_port))"
    return 0
  fi
  mysql_init
  local attempt port fixed=1
  port="$(mysql_port)"
  if [[ -z "$port" ]]; then
    fixed=0
    port="$(pick_port "$(pg_port)")"
  fi
  for ((attempt = 1; ; attempt++)); do
    echo "$port" >"$DIR/mysql/port"
    mysql_start_once "$port" && break
    if ((fixed == 0 && attempt < PORT_ATTEMPTS)) &&
      grep -q 'Address already in use' "$DIR/mysql/err.log" 2>/dev/null; then
      log "port $port was taken meanwhile, trying another one"
      port="$(pick_port "$(pg_port)")"
      continue
    fi
    show_log "$DIR/mysql/err.log"
    die "MariaDB did not answer on 127.0.0.1:$port (log above; start timeout ${START_TIMEOUT_S}s)"
  done
  log "MariaDB 10.11 up on 127.0.0.1:$port (pid $(mysql_pid))"
}

# mysql_stop [--kill]
mysql_stop() {
  local mode="${1:-}" pid
  pid="$(mysql_pid)"
  if ! mysql_running; then
    log "MariaDB not running"
    return 0
  fi
  if [[ "$mode" != "--kill" ]]; then
    kill -TERM "$pid" 2>/dev/null || true
    if wait_gone "$pid" "$STOP_TIMEOUT_S"; then
      log "MariaDB stopped"
      return 0
    fi
    log "MariaDB did not stop within ${STOP_TIMEOUT_S}s: killing it"
  fi
  kill -KILL "$pid" 2>/dev/null || true
  wait_gone "$pid" "$STOP_TIMEOUT_S" || die "MariaDB $pid still alive after SIGKILL"
  log "MariaDB killed"
}

# --- env file ----------------------------------------------------------------------------------

write_env() {
  local pg_port mysql_port tmp
  pg_port="$(pg_port)"
  mysql_port="$(mysql_port)"
  tmp="$DIR/env.tmp"
  cat >"$tmp" <<EOF
TXC_TEST_DB_DIR=$DIR
TXC_TEST_DBS_SH=$SCRIPT_PATH
TXC_TEST_PG_DSN=postgresql://$TEST_USER:$TEST_PASSWORD@127.0.0.1:$pg_port/$TEST_DB
TXC_TEST_PG_HOST=127.0.0.1
TXC_TEST_PG_PORT=$pg_port
TXC_TEST_PG_USER=$TEST_USER
TXC_TEST_PG_PASSWORD=$TEST_PASSWORD
TXC_TEST_PG_DB=$TEST_DB
TXC_TEST_PG_ADMIN_DSN=postgresql://postgres@/postgres?host=$DIR/pg&port=$pg_port
TXC_TEST_MYSQL_DSN=mysql://$TEST_USER:$TEST_PASSWORD@127.0.0.1:$mysql_port/$TEST_DB
TXC_TEST_MYSQL_HOST=127.0.0.1
TXC_TEST_MYSQL_PORT=$mysql_port
TXC_TEST_MYSQL_USER=$TEST_USER
TXC_TEST_MYSQL_PASSWORD=$TEST_PASSWORD
TXC_TEST_MYSQL_DB=$TEST_DB
EOF
  chmod 644 "$tmp"
  mv -f "$tmp" "$DIR/env"
}

print_env() {
  [[ -f "$DIR/env" ]] || die "$DIR/env does not exist: run '$PROG start $DIR' first"
  local line
  while IFS= read -r line; do
    [[ -n "$line" ]] && printf "export %s='%s'\n" "${line%%=*}" "${line#*=}"
  done <"$DIR/env"
}

# --- main --------------------------------------------------------------------------------------

(($# >= 2)) || usage
readonly COMMAND="$1"
[[ -n "$2" ]] || usage
DIR="$(realpath -m -- "$2")"
readonly DIR
readonly OPTION="${3:-}"
[[ -z "$OPTION" || "$OPTION" == "--kill" ]] || usage

require_dir() { [[ -d "$DIR" ]] || die "$DIR does not exist"; }

case "$COMMAND" in
  start)
    started_at=$SECONDS
    prepare_dir
    pg_start
    mysql_start
    write_env
    log "ready in $((SECONDS - started_at))s; environment in $DIR/env"
    ;;
  stop)
    if [[ ! -d "$DIR" ]]; then
      log "$DIR does not exist: nothing to stop"
      exit 0
    fi
    # Both, even when the first one fails.
    rc=0
    pg_stop "$OPTION" || rc=1
    mysql_stop "$OPTION" || rc=1
    exit "$rc"
    ;;
  env) print_env ;;
  status)
    require_dir
    if pg_running; then echo "postgres: running pid $(pg_pid) port $(pg_port)"; else
      echo "postgres: stopped"
    fi
    if mysql_running; then echo "mariadb: running pid $(mysql_pid) port $(mysql_port)"; else
      echo "mariadb: stopped"
    fi
    ;;
  start-pg)
    require_dir
    pg_start
    ;;
  stop-pg)
    require_dir
    pg_stop "$OPTION"
    ;;
  restart-pg)
    require_dir
    pg_stop "$OPTION"
    pg_start
    ;;
  start-mysql)
    require_dir
    mysql_start
    ;;
  stop-mysql)
    require_dir
    mysql_stop "$OPTION"
    ;;
  restart-mysql)
    require_dir
    mysql_stop "$OPTION"
    mysql_start
    ;;
  *) usage ;;
esac
