#!/usr/bin/env bash
# Installs and runs the real engines the plugin suites use, on loopback, each in its own temp dir.
#
#   scripts/engines.sh install [etcd|nats|redis|postgres|avahi|protoc|promparse|grpcpy|chromium ...]   apt-get install
#                                             what is missing (by default all but avahi and chromium; chromium, for
#                                             the browser test, only when named: scripts/test.sh names it)
#   scripts/engines.sh start ENGINE [PORT]    start one; prints  ENGINE_ADDRESS=127.0.0.1:PORT  and  ENGINE_DIR=/tmp/...
#   scripts/engines.sh stop DIR               stop the engine started in DIR (from the start output)
#
# Nothing is started by apt; nothing listens on a non-loopback address. A free port is picked when none is
# given. Tests call `start`/`stop` themselves (test/support/engines.ts), so no test assumes a running engine.
set -euo pipefail

die() { echo "engines.sh: $*" >&2; exit 1; }

packages_for() {
  case "$1" in
    etcd) echo "etcd-server etcd-client" ;;
    nats) echo "nats-server" ;;
    redis) echo "redis-server" ;;
    postgres) echo "postgresql" ;;
    avahi) echo "avahi-daemon avahi-utils dbus" ;;
    protoc) echo "protobuf-compiler" ;;
    promparse) echo "python3-prometheus-client" ;;
    chromium) echo "chromium" ;;
    grpcpy) echo "python3-grpcio python3-grpc-tools" ;;
    *) die "unknown engine '$1'" ;;
  esac
}

binary_for() {
  case "$1" in
    etcd) echo etcd ;;
    nats) echo nats-server ;;
    redis) echo redis-server ;;
    postgres) echo /usr/lib/postgresql/15/bin/postgres ;;
    avahi) echo avahi-browse ;;
    protoc) echo protoc ;;
    promparse) echo /usr/lib/python3/dist-packages/prometheus_client/parser.py ;;
    # test/process/dashboard.test.ts drives this path with playwright-core (no browser download).
    chromium) echo /usr/bin/chromium ;;
    grpcpy) echo /usr/lib/python3/dist-packages/grpc/__init__.py ;;
  esac
}

install() {
  local engines=("$@") missing=()
  [ ${#engines[@]} -eq 0 ] && engines=(etcd nats redis postgres promparse protoc grpcpy)
  for e in "${engines[@]}"; do
    local binary; binary=$(binary_for "$e")
    command -v "$binary" >/dev/null 2>&1 || [ -e "$binary" ] || missing+=($(packages_for "$e"))
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  # apt-get update is slow; only when the package lists are missing or a first install attempt fails.
  if ! $sudo apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
    $sudo apt-get update -qq >/dev/null
    $sudo apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

wait_for() { # wait_for SECONDS COMMAND...
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -ge $deadline ] && return 1
    sleep 0.1
  done
}

start() {
  local engine="$1" port="${2:-}"
  install "$engine"
  [ -z "$port" ] && port=$(free_port)
  local dir; dir=$(mktemp -d "/tmp/effect-micro-$engine.XXXXXX")
  echo "$engine" > "$dir/engine"
  case "$engine" in
    etcd)
      local peer; peer=$(free_port)
      etcd --name n1 --data-dir "$dir/data" \
        --listen-client-urls "http://127.0.0.1:$port" --advertise-client-urls "http://127.0.0.1:$port" \
        --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
        --initial-cluster "n1=http://127.0.0.1:$peer" >"$dir/log" 2>&1 &
      echo $! > "$dir/pid"
      wait_for 20 env ETCDCTL_API=3 etcdctl --endpoints="127.0.0.1:$port" endpoint health || { cat "$dir/log" >&2; die "etcd did not start"; }
      ;;
    nats)
      nats-server -a 127.0.0.1 -p "$port" -js -sd "$dir/data" >"$dir/log" 2>&1 &
      echo $! > "$dir/pid"
      wait_for 20 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port && head -c 5 <&3 | grep -q INFO" || { cat "$dir/log" >&2; die "nats did not start"; }
      ;;
    redis)
      redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --save '' --appendonly no \
        --notify-keyspace-events KEA >"$dir/log" 2>&1 &
      echo $! > "$dir/pid"
      wait_for 20 bash -c "redis-cli -p $port ping | grep -q PONG" || { cat "$dir/log" >&2; die "redis did not start"; }
      ;;
    postgres)
      local bin=/usr/lib/postgresql/15/bin
      chown postgres "$dir"
      su postgres -s /bin/sh -c "$bin/initdb -D '$dir/data' -A trust -U postgres" >"$dir/init.log" 2>&1 \
        || { cat "$dir/init.log" >&2; die "initdb failed"; }
      su postgres -s /bin/sh -c "$bin/pg_ctl -D '$dir/data' -l '$dir/log' -o \"-c listen_addresses=127.0.0.1 -p $port -k $dir\" -w start" >/dev/null \
        || { cat "$dir/log" >&2; die "postgres did not start"; }
      head -1 "$dir/data/postmaster.pid" > "$dir/pid"
      wait_for 20 "$bin/pg_isready" -h 127.0.0.1 -p "$port" || die "postgres not ready"
      ;;
    *) die "cannot start '$engine'" ;;
  esac
  local upper; upper=$(echo "$engine" | tr a-z A-Z)
  echo "${upper}_ADDRESS=127.0.0.1:$port"
  echo "${upper}_DIR=$dir"
}

stop() {
  local dir="$1"
  [ -f "$dir/engine" ] || die "$dir is not an engine dir"
  local engine; engine=$(cat "$dir/engine")
  if [ "$engine" = postgres ]; then
    su postgres -s /bin/sh -c "/usr/lib/postgresql/15/bin/pg_ctl -D '$dir/data' -m immediate stop" >/dev/null 2>&1 || true
  elif [ -f "$dir/pid" ]; then
    local pid; pid=$(cat "$dir/pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}

cmd="${1:-}"; shift || true
case "$cmd" in
  install) install "$@" ;;
  start) [ $# -ge 1 ] || die "usage: start ENGINE [PORT]"; start "$@" ;;
  stop) [ $# -eq 1 ] || die "usage: stop DIR"; stop "$1" ;;
  *) sed -n '2,10p' "$0"; exit 2 ;;
esac
