#!/usr/bin/env bash
# The topology of deploy/compose.yaml as processes on this machine, for trying a cluster where
# no container runtime runs: N `giftwave serve` nodes on 127.0.0.1 behind HAProxy (Debian's
# package; scripts/services.sh installs it), against the local PostgreSQL and Redis.
#
#   scripts/cluster.sh up N     migrate, start N nodes and HAProxy, wait until they answer
#   scripts/cluster.sh down     stop what `up` started (HAProxy first, then the nodes drain)
#
# Settings (environment):
#   CLUSTER_DIR          state: pid files, logs, HAProxy's config (default: .cluster/)
#   CLUSTER_PORT         HAProxy's port (default 8080)
#   CLUSTER_NODE_PORTS   the nodes' ports, space-separated (default 8001, 8002, …)
#   CLUSTER_GIFTWAVE     the giftwave executable (default: .venv/bin/giftwave)
#   GIFTWAVE_*           passed to every node; GIFTWAVE_DATABASE_URL defaults to a database of
#                        its own (giftwave_cluster, created when missing), GIFTWAVE_BROKER_URL to
#                        Redis database 1 on 127.0.0.1. Redis channels are shared by all its
#                        databases: one cluster per Redis server.
# docs/operations.md ("Deploy") says more.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${CLUSTER_DIR:-$ROOT/.cluster}
PORT=${CLUSTER_PORT:-8080}
GIFTWAVE=${CLUSTER_GIFTWAVE:-$ROOT/.venv/bin/giftwave}
HAPROXY_CFG=$ROOT/deploy/haproxy/haproxy.cfg
START_TRIES=150      # x 0.2 s: how long a node or HAProxy gets to answer
STOP_TRIES=150       # x 0.2 s after SIGTERM (a node drains: GIFTWAVE_DRAIN_TIMEOUT_S), then KILL
DEFAULT_DB=giftwave_cluster
# HAProxy needs two descriptors a connection: the deploy's 20000 exceeds a shell's usual limit.
FDS=$(ulimit -n)
if [[ "$FDS" =~ ^[0-9]+$ ]] && [ "$FDS" -lt 40200 ]; then MAXCONN=$((FDS / 2 - 100)); else MAXCONN=20000; fi

say() { echo "cluster: $*" >&2; }

# A pid file's process, if it is still the one we started (a pid can be reused).
live_pid() {  # live_pid FILE
    local pid
    [ -f "$1" ] || return 1
    pid=$(cat "$1")
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    grep -qaE 'giftwave|haproxy' "/proc/$pid/cmdline" 2>/dev/null || return 1
    echo "$pid"
}

answers() {  # answers URL: 200 within 2 s
    curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null
}

wait_for() {  # wait_for NAME URL LOG PIDFILE
    local _
    for _ in $(seq 1 "$START_TRIES"); do
        if answers "$2"; then return 0; fi
        if ! live_pid "$4" >/dev/null; then break; fi
        sleep 0.2
    done
    say "$1 did not answer $2; the end of $3:"
    tail -n 40 "$3" >&2 || true
    return 1
}

start() {  # start NAME LOG COMMAND...: in a session of its own, pid in DIR/NAME.pid
    local name=$1 log=$2
    shift 2
    setsid "$@" >"$log" 2>&1 </dev/null &
    echo $! >"$DIR/$name.pid"
}

stop_all() {
    local file pid pids=() _
    # HAProxy first: no new request reaches a node that is about to drain.
    for file in "$DIR/haproxy.pid" "$DIR"/node*.pid; do
        if pid=$(live_pid "$file"); then
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
        fi
    done
    for _ in $(seq 1 "$STOP_TRIES"); do
        local alive=()
        for pid in "${pids[@]}"; do
            if kill -0 "$pid" 2>/dev/null; then alive+=("$pid"); fi
        done
        pids=("${alive[@]}")
        [ "${#pids[@]}" = 0 ] && break
        sleep 0.2
    done
    for pid in "${pids[@]}"; do
        say "pid $pid did not stop after SIGTERM; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -f "$DIR/haproxy.pid" "$DIR"/node*.pid
}

create_default_database() {
    if ! psql -h 127.0.0.1 -U postgres -d postgres -tAc \
        "select 1 from pg_database where datname = '$DEFAULT_DB'" | grep -q 1; then
        createdb -h 127.0.0.1 -U postgres "$DEFAULT_DB"
    fi
}

haproxy_config() {  # haproxy_config PORT...: deploy's config, bound here, with these nodes
    # The backend is the file's last section (it says so): its server lines are replaced.
    grep -vE '^[[:space:]]*server[[:space:]]' "$HAPROXY_CFG" \
        | sed -E -e "s/^([[:space:]]*)bind[[:space:]]+:8080\$/\1bind 127.0.0.1:$PORT/" \
            -e "s/^([[:space:]]*)maxconn[[:space:]]+[0-9]+\$/\1maxconn $MAXCONN/"
    local i=1 port
    for port in "$@"; do
        echo "    server node$i 127.0.0.1:$port"
        i=$((i + 1))
    done
}

up() {
    local n=$1 i port ports=()
    [[ "$n" =~ ^[1-9][0-9]?$ ]] || { say "N must be 1..99, not '$n'"; exit 2; }
    mkdir -p "$DIR"
    for file in "$DIR/haproxy.pid" "$DIR"/node*.pid; do
        if live_pid "$file" >/dev/null; then say "already up in $DIR; run down first"; exit 1; fi
    done
    if [ -n "${CLUSTER_NODE_PORTS:-}" ]; then
        read -r -a ports <<<"$CLUSTER_NODE_PORTS"
        [ "${#ports[@]}" = "$n" ] || { say "CLUSTER_NODE_PORTS names ${#ports[@]} ports, not $n"; exit 2; }
    else
        for i in $(seq 1 "$n"); do ports+=($((8000 + i))); done
    fi
    if [ -z "${GIFTWAVE_DATABASE_URL:-}" ]; then
        create_default_database
        export GIFTWAVE_DATABASE_URL="postgresql://postgres@127.0.0.1:5432/$DEFAULT_DB"
    fi
    export GIFTWAVE_BROKER_URL=${GIFTWAVE_BROKER_URL:-redis://127.0.0.1:6379/1}
    # One clip store for every node (as compose's shared volume), in the state directory.
    export GIFTWAVE_CLIP_STORE=${GIFTWAVE_CLIP_STORE:-$DIR/clips}

    if ! "$GIFTWAVE" migrate >"$DIR/migrate.log" 2>&1; then
        say "giftwave migrate failed:"
        tail -n 40 "$DIR/migrate.log" >&2
        exit 1
    fi
    trap 'stop_all' ERR  # a node or HAProxy that does not come up: stop the rest
    for i in $(seq 1 "$n"); do
        port=${ports[$((i - 1))]}
        start "node$i" "$DIR/node$i.log" "$GIFTWAVE" serve --host 127.0.0.1 --port "$port"
    done
    for i in $(seq 1 "$n"); do
        port=${ports[$((i - 1))]}
        wait_for "node$i" "http://127.0.0.1:$port/readyz" "$DIR/node$i.log" "$DIR/node$i.pid"
    done
    haproxy_config "${ports[@]}" >"$DIR/haproxy.cfg"
    start haproxy "$DIR/haproxy.log" haproxy -f "$DIR/haproxy.cfg"
    wait_for HAProxy "http://127.0.0.1:$PORT/readyz" "$DIR/haproxy.log" "$DIR/haproxy.pid"
    trap - ERR
    say "up: HAProxy on http://127.0.0.1:$PORT, nodes on ${ports[*]}; logs in $DIR"
}

case "${1:-}" in
    up) up "${2:-2}" ;;
    down) stop_all; say "down" ;;
    *) echo "usage: $0 up N | down" >&2; exit 2 ;;
esac
