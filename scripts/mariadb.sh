#!/usr/bin/env bash
# A dedicated MariaDB with the binlog settings the capture tests need (row events with full
# metadata, CRC32, no compression; see shared/binlog-capture.md), on 127.0.0.1:3307.
#
#   scripts/mariadb.sh [start]   start it (installs MariaDB and initialises the datadir if needed)
#   scripts/mariadb.sh stop      stop it (by its pid file) and wait until it has exited
#   scripts/mariadb.sh url       print the URL the tests connect to (root, empty password)
#
# Why a second instance: the machine's own MariaDB on :3306 runs with log_bin OFF and is not ours
# to reconfigure or restart, so this one runs beside it with its own datadir, socket and pid file,
# and with --no-defaults so that none of /etc/mysql (port 3306, the system socket) applies.
# Idempotent: a running instance with the right settings is left alone; after `stop` the same
# datadir is reused; a deleted datadir is initialised again.
#
# Environment: LPM_TEST_MYSQL_PORT (3307), LPM_TEST_MYSQL_DIR (/tmp/lpm-test-mariadb: the datadir,
# which also holds mariadbd.sock, mariadbd.pid, mariadbd.log and mariadb-install-db's log).
set -euo pipefail

# A non-root PATH often lacks the sbin dirs that hold mariadbd and start-stop-daemon.
PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

port=${LPM_TEST_MYSQL_PORT:-3307}
dir=${LPM_TEST_MYSQL_DIR:-/tmp/lpm-test-mariadb}
sock="$dir/mariadbd.sock"
pidfile="$dir/mariadbd.pid"
log="$dir/mariadbd.log"
start_timeout=30 # seconds; a cold start with a 128M buffer pool takes 1-3 s even on busy cores

# The binlog settings the capture needs, and the values `start` insists on when the port is already
# taken. binlog_row_metadata=FULL gives column names and the PK in every TABLE_MAP; mysql_common
# cannot read compressed events, so log_bin_compress stays OFF.
server_flags=(
  --log-bin=mysql-bin --server-id=1 --binlog-format=ROW --binlog-row-image=FULL
  --binlog-row-metadata=FULL --binlog-checksum=CRC32 --log-bin-compress=OFF --gtid-strict-mode=1
  --skip-name-resolve --innodb-buffer-pool-size=128M --innodb-flush-log-at-trx-commit=1
  --sync-binlog=0 --max-connections=200 --character-set-server=utf8mb4
  --collation-server=utf8mb4_unicode_ci
)
required=(
  "log_bin=1" "binlog_format=ROW" "binlog_row_metadata=FULL" "binlog_row_image=FULL"
  "binlog_checksum=CRC32" "log_bin_compress=0"
)

say() { printf 'mariadb.sh: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

is_root() { [ "$(id -u)" -eq 0 ]; }
as_root() { if is_root; then "$@"; else sudo "$@"; fi; }

# Clients always get --no-defaults: /etc/mysql/my.cnf points them at the system socket, and a
# ~/.my.cnf password would break the "root with no password" check.
sql_tcp() { mariadb --no-defaults --protocol=TCP -h127.0.0.1 -P"$port" -uroot --connect-timeout=3 -N -B "$@"; }
sql_sock() { mariadb --no-defaults --protocol=SOCKET --socket="$sock" -uroot --connect-timeout=3 -N -B "$@"; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

# The pid of our mariadbd if it is alive. The comm check guards against a recycled pid.
our_pid() {
  local pid
  [ -r "$pidfile" ] || return 1
  pid=$(cat "$pidfile" 2>/dev/null) || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = mariadbd ] && alive "$pid" || return 1
  echo "$pid"
}

# A zombie (exited, not yet reaped by a container's pid 1) counts as gone.
alive() { [ -d "/proc/$1" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }

check_dir_var() {
  [[ "$dir" = /* ]] || die "LPM_TEST_MYSQL_DIR must be an absolute path (got '$dir')"
  [[ "$port" =~ ^[0-9]+$ ]] || die "LPM_TEST_MYSQL_PORT must be a number (got '$port')"
}

# --- install -----------------------------------------------------------------------------------
ensure_installed() {
  if command -v mariadbd >/dev/null && command -v mariadb-install-db >/dev/null \
    && command -v mariadb >/dev/null && command -v mariadb-admin >/dev/null; then
    return
  fi
  say "installing mariadb-server and mariadb-client (apt-get)"
  # The package also starts the system instance on :3306; that one is left as it is.
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server mariadb-client >&2
  command -v mariadbd >/dev/null || die "mariadbd still not found after installing mariadb-server"
}

# --- datadir -----------------------------------------------------------------------------------
# mariadbd refuses to run as root, so as root it runs as `mysql`, which must own the datadir and
# be able to reach it (a datadir under /root would not work).
prepare_dir() {
  if is_root; then
    install -d -o mysql -g mysql -m 0750 "$dir"
    chown mysql:mysql "$dir"
    runuser -u mysql -- test -w "$dir" \
      || die "user mysql cannot write $dir (a parent directory is closed to it); set LPM_TEST_MYSQL_DIR"
  else
    install -d -m 0750 "$dir"
  fi
}

init_datadir() {
  [ -d "$dir/mysql" ] && return
  say "initialising the datadir $dir"
  local user_flag=()
  is_root && user_flag=(--user=mysql)
  # normal root auth: root@localhost gets an empty password as well as unix_socket, so the setup
  # below also works for a non-root caller over the socket.
  if ! mariadb-install-db --no-defaults "${user_flag[@]}" --datadir="$dir" \
    --auth-root-authentication-method=normal --skip-test-db --skip-name-resolve \
    >"$dir/install-db.log" 2>&1; then
    tail -n 30 "$dir/install-db.log" >&2
    die "mariadb-install-db failed (log: $dir/install-db.log); delete $dir and run again"
  fi
}

# --- run ---------------------------------------------------------------------------------------
launch() {
  say "starting mariadbd on 127.0.0.1:$port (datadir $dir, log $log)"
  local user_flag=()
  is_root && user_flag=(--user=mysql)
  rm -f "$pidfile"
  # --no-defaults must come first. start-stop-daemon detaches it from this shell, so it outlives
  # the script and the CI step. Its pid file is written by start-stop-daemon (as root), so
  # mariadbd (as mysql) gets its own, which it could not overwrite otherwise. --pidfile also keeps
  # start-stop-daemon from mistaking the system mariadbd (same executable) for this one.
  start-stop-daemon --start --background --make-pidfile --pidfile "$pidfile" \
    --exec "$(command -v mariadbd)" -- --no-defaults "${user_flag[@]}" \
    --datadir="$dir" --port="$port" --bind-address=127.0.0.1 --socket="$sock" \
    --pid-file="$dir/mariadbd.server.pid" --log-error="$log" "${server_flags[@]}"
}

# Waits until the server answers on its socket (root over TCP may not work yet on a fresh datadir;
# `ping` succeeds even when access is denied). It listens on TCP by then too.
wait_ready() {
  local i
  for ((i = 0; i < start_timeout * 4; i++)); do
    if mariadb-admin --no-defaults --socket="$sock" -uroot --connect-timeout=1 ping >/dev/null 2>&1; then
      return
    fi
    if [ "$i" -ge 8 ] && ! our_pid >/dev/null; then
      tail -n 30 "$log" >&2 2>/dev/null || true
      die "mariadbd exited during startup (log: $log)"
    fi
    sleep 0.25
  done
  tail -n 30 "$log" >&2 2>/dev/null || true
  die "mariadbd did not answer within ${start_timeout}s (log: $log)"
}

# Root over TCP with no password, and the capture user. Only ever over our own socket (it lives in
# our datadir), so no other server on the port can be changed by mistake. sql_log_bin=0 keeps these
# statements out of the binlog, so a test reading it from the start sees only its own
# transactions. With --skip-name-resolve, TCP from 127.0.0.1 never matches root@localhost, hence
# root@'127.0.0.1'. mariadb-install-db (10.11) creates no anonymous users that could shadow cdc@'%'.
setup_users() {
  if sql_sock -e "SELECT 1 FROM mysql.global_priv WHERE User='cdc' AND Host='%'" 2>/dev/null | grep -q 1 \
    && sql_tcp -e 'SELECT 1' >/dev/null 2>&1; then
    return
  fi
  say "creating root@127.0.0.1 (no password) and cdc@'%' (password cdc)"
  sql_sock <<'SQL' || die "user setup over $sock failed"
SET SESSION sql_log_bin = 0;
ALTER USER root@localhost IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket;
CREATE USER IF NOT EXISTS root@'127.0.0.1';
ALTER USER root@'127.0.0.1' IDENTIFIED VIA mysql_native_password USING PASSWORD('');
GRANT ALL PRIVILEGES ON *.* TO root@'127.0.0.1' WITH GRANT OPTION;
CREATE USER IF NOT EXISTS cdc@'%';
ALTER USER cdc@'%' IDENTIFIED BY 'cdc';
GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT, RELOAD, SHOW DATABASES ON *.* TO cdc@'%';
SQL
  sql_tcp -e 'SELECT 1' >/dev/null || die "root@127.0.0.1:$port with no password still refused"
}

# Our running instance must be the one on $port (LPM_TEST_MYSQL_PORT may have changed since).
check_our_port() {
  local p
  p=$(sql_sock -e 'SELECT @@port') || die "cannot ask the instance in $dir for its port over $sock"
  [ "$p" = "$port" ] \
    || die "the instance in $dir listens on port $p, not $port; run 'stop' with LPM_TEST_MYSQL_PORT=$p first, or use another LPM_TEST_MYSQL_DIR"
}

# Fails naming each binlog setting that differs from what the capture needs.
check_settings() {
  local names=() want=() kv got bad=0 i
  for kv in "${required[@]}"; do names+=("${kv%%=*}"); want+=("${kv#*=}"); done
  local select out
  select=$(printf '@@%s,' "${names[@]}")
  out=$(sql_tcp -e "SELECT ${select%,}") || die "cannot read the binlog settings of 127.0.0.1:$port"
  read -r -a got <<<"$out"
  for i in "${!names[@]}"; do
    if [ "${got[$i]:-}" != "${want[$i]}" ]; then
      say "127.0.0.1:$port has ${names[$i]}=${got[$i]:-?}, the capture tests need ${want[$i]}"
      bad=1
    fi
  done
  [ "$bad" -eq 0 ] || die "the server on 127.0.0.1:$port has the wrong binlog settings; stop it or set LPM_TEST_MYSQL_PORT to a free port"
  say "ready: $(url) (log_bin=${got[0]} binlog_format=${got[1]} binlog_row_metadata=${got[2]})"
}

# Is the server answering on the port one that this script started for $dir? Its own pid file path
# is passed only by `launch`, so the system instance can never match. Needs root over TCP; read-only.
serves_our_dir() {
  local f
  f=$(sql_tcp -e 'SELECT @@pid_file' 2>/dev/null) || return 1
  [ "$f" = "$dir/mariadbd.server.pid" ]
}

# Shuts down, over TCP, our instance whose pid file is gone (deleted with its datadir, say).
shutdown_orphan() {
  say "the instance on :$port was started for $dir but its pid file is gone; shutting it down"
  sql_tcp -e 'SHUTDOWN' || die "SHUTDOWN of the orphaned instance on :$port failed"
  local i
  for ((i = 0; i < 240; i++)); do port_open || return 0; sleep 0.25; done
  die "the orphaned instance on :$port did not stop within 60s"
}

# --- commands ----------------------------------------------------------------------------------
url() { echo "mysql://root@127.0.0.1:$port"; }

cmd_start() {
  check_dir_var
  ensure_installed # the client is needed even to check a server that is already there
  if our_pid >/dev/null; then
    say "mariadbd is already running (pid $(our_pid))"
    wait_ready
    check_our_port
    setup_users
    check_settings
    return
  fi
  if port_open; then
    sql_tcp -e 'SELECT 1' >/dev/null 2>&1 \
      || die "127.0.0.1:$port is taken by something that refuses root with no password over TCP; stop it or set LPM_TEST_MYSQL_PORT"
    if serves_our_dir && [ ! -d "$dir/mysql" ]; then
      shutdown_orphan
    else
      # Someone else's server (or ours with its pid file lost): only check it, change nothing.
      say "127.0.0.1:$port already answers; checking its binlog settings"
      check_settings
      return
    fi
  fi
  prepare_dir
  init_datadir
  launch
  wait_ready
  check_our_port
  setup_users
  check_settings
}

cmd_stop() {
  check_dir_var
  local pid i
  if ! pid=$(our_pid); then
    if port_open && serves_our_dir; then
      shutdown_orphan
      say "stopped"
      return
    fi
    say "not running (no live mariadbd in $pidfile)"
    rm -f "$pidfile"
    return
  fi
  say "stopping mariadbd (pid $pid)"
  kill -TERM "$pid"
  for ((i = 0; i < 240; i++)); do
    alive "$pid" || { say "stopped"; rm -f "$pidfile"; return; }
    sleep 0.25
  done
  die "mariadbd (pid $pid) did not stop within 60s (log: $log)"
}

case "${1:-start}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  url) url ;;
  *) die "usage: $0 [start|stop|url]" ;;
esac
