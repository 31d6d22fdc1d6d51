#!/usr/bin/env bash
# A 3-node NATS JetStream cluster on loopback, for development, demos and tests of many Hearth hosts.
#   scripts/cluster.sh up DIR     start it (config, stores and logs under DIR); prints the --nats value
#   scripts/cluster.sh down DIR   stop it (the nodes this script started, by their pid files)
# Ports: clients 4222-4224, routes 6222-6224 (override the bases with CLIENT_PORT and ROUTE_PORT).
set -euo pipefail

usage() { echo "usage: $0 up|down DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1
dir=$2
client=${CLIENT_PORT:-4222}
route=${ROUTE_PORT:-6222}
bin=$(command -v nats-server || true)

case "$cmd" in
up)
  [ -n "$bin" ] || { echo "nats-server is not installed (apt-get install nats-server)" >&2; exit 1; }
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  urls=()
  for i in 1 2 3; do
    if [ -f "$dir/n$i.pid" ] && kill -0 "$(cat "$dir/n$i.pid")" 2>/dev/null; then
      echo "node n$i is already running (pid $(cat "$dir/n$i.pid"))" >&2; exit 1
    fi
    routes=()
    for j in 1 2 3; do [ "$j" = "$i" ] || routes+=("nats-route://127.0.0.1:$((route + j - 1))"); done
    mkdir -p "$dir/n$i"
    cat >"$dir/n$i.conf" <<CONF
server_name: n$i
listen: 127.0.0.1:$((client + i - 1))
jetstream { store_dir: "$dir/n$i" }
cluster { name: hearth-dev, listen: 127.0.0.1:$((route + i - 1)), routes: [$(IFS=,; echo "${routes[*]}")] }
CONF
    "$bin" -c "$dir/n$i.conf" -l "$dir/n$i.log" -P "$dir/n$i.pid" &
    urls+=("nats://127.0.0.1:$((client + i - 1))")
  done
  # Wait until every node accepts clients.
  for i in 1 2 3; do
    for _ in $(seq 1 100); do
      (exec 3<>"/dev/tcp/127.0.0.1/$((client + i - 1))") 2>/dev/null && break
      sleep 0.1
    done
  done
  echo "cluster up in $dir; join with: hearth daemon --nats $(IFS=,; echo "${urls[*]}") --host-id ID"
  ;;
down)
  for i in 1 2 3; do
    pidfile="$dir/n$i.pid"
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$pidfile"
  done
  echo "cluster in $dir stopped (stores kept; remove $dir to forget them)"
  ;;
*) usage ;;
esac
