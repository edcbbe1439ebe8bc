#!/usr/bin/env bash
# Make sure the backends the tests use are up: PostgreSQL and Redis on 127.0.0.1, Chromium for
# the browser tests, and FFmpeg (ffmpeg and ffprobe) for clips.
# Installs them from Debian's packages when they are missing (needs root), starts them when
# they are down, and fails loudly when neither works: the suite never skips a backend.
set -euo pipefail

need_apt_update=1
apt_install() {
    if [ "$(id -u)" != 0 ]; then
        echo "services: $* missing and not root; install it or run as root" >&2
        return 1
    fi
    if [ "$need_apt_update" = 1 ]; then apt-get update -qq; need_apt_update=0; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

wait_for() {  # wait_for NAME COMMAND...
    local name=$1; shift
    for _ in $(seq 1 50); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.2
    done
    echo "services: $name did not come up" >&2
    return 1
}

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432; }
if ! command -v pg_isready >/dev/null 2>&1; then apt_install postgresql; fi
if ! pg_up; then
    echo "services: starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
    wait_for PostgreSQL pg_up
fi

# Browser tests drive Debian's Chromium through Playwright (never a downloaded browser).
if ! command -v chromium >/dev/null 2>&1; then apt_install chromium; fi

# Clips probe, cut and watermark videos with FFmpeg as a subprocess (docs/clips.md).
if ! command -v ffmpeg >/dev/null 2>&1 || ! command -v ffprobe >/dev/null 2>&1; then
    apt_install ffmpeg
fi

# The metrics tests start Prometheus themselves on a free loopback port, and promtool checks
# deploy/prometheus/alerts.yml; only the binaries are needed (the system service is not started).
if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
    apt_install prometheus
fi

# scripts/cluster.sh (and its test) puts HAProxy in front of the nodes, as deploy/ does.
if ! command -v haproxy >/dev/null 2>&1; then apt_install haproxy; fi

redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping | grep -q PONG; }
if ! command -v redis-server >/dev/null 2>&1; then apt_install redis-server; fi
if ! redis_up; then
    echo "services: starting Redis"
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no
    wait_for Redis redis_up
fi
echo "services: PostgreSQL and Redis are up; Chromium, FFmpeg and HAProxy are installed"
