#!/usr/bin/env bash
# Start/stop a throwaway PostgreSQL server on loopback for the trace-store tests.
#   bash scripts/postgres.sh start   -> installs Debian's postgresql if needed, prints the URL
#   bash scripts/postgres.sh stop
set -euo pipefail
DIR=${COWEST_PG_DIR:-/tmp/cowest-pg}
PORT=${COWEST_PG_PORT:-54329}
log() { echo "$@" >&2; }

pgbin() {
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$bin" ] && echo "$bin"
}

case "${1:-}" in
  start)
    if ! pgbin >/dev/null; then
      log "installing Debian's postgresql package..."
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq >&2 && apt-get install -y -qq postgresql >&2 || { log "cannot install postgresql"; exit 1; }
    fi
    BIN=$(pgbin)
    RUN_AS=()
    if [ "$(id -u)" = 0 ]; then RUN_AS=(runuser -u postgres --); fi
    if [ -f "$DIR/data/postmaster.pid" ]; then "${RUN_AS[@]}" "$BIN/pg_ctl" -D "$DIR/data" -m immediate stop >&2 || true; fi
    rm -rf "$DIR" && mkdir -p "$DIR"
    [ "$(id -u)" = 0 ] && chown postgres "$DIR"
    "${RUN_AS[@]}" "$BIN/initdb" -D "$DIR/data" -U cowest --auth=trust >/dev/null
    "${RUN_AS[@]}" "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/log" -w \
      -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR -c fsync=off -c max_connections=200" start >&2
    "${RUN_AS[@]}" "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U cowest cowest_test >&2
    echo "postgresql://cowest@127.0.0.1:$PORT/cowest_test"
    ;;
  stop)
    BIN=$(pgbin) || exit 0
    RUN_AS=()
    if [ "$(id -u)" = 0 ]; then RUN_AS=(runuser -u postgres --); fi
    [ -f "$DIR/data/postmaster.pid" ] && "${RUN_AS[@]}" "$BIN/pg_ctl" -D "$DIR/data" -m fast stop >&2
    rm -rf "$DIR"
    ;;
  *) log "usage: $0 start|stop"; exit 2 ;;
esac
