#!/usr/bin/env bash
# A stand-in private network for trying `hearth network create` (README, docs/networks.md):
#
#   scripts/lab-network.sh up     network namespace `lab`, bridge `br0` in it (UP), and a host
#                                 address 10.77.0.10/24 on the bridge (a service there listens with
#                                 `ip netns exec lab ...`)
#   scripts/lab-network.sh down   deletes the namespace, and with it the bridge and the address
#
# Everything lives inside the namespace it creates: nothing is added to the host's own network.
# `up` refuses a namespace that already exists (it never adopts one it did not make); `down` of a
# namespace that does not exist is not an error. Root only. Names and address can be changed with
# LAB_NETNS, LAB_BRIDGE and LAB_HOST (CIDR).
set -euo pipefail

NS="${LAB_NETNS:-lab}"
BR="${LAB_BRIDGE:-br0}"
HOST="${LAB_HOST:-10.77.0.10/24}"

usage() {
  echo "usage: $0 up|down   (env: LAB_NETNS=$NS LAB_BRIDGE=$BR LAB_HOST=$HOST)" >&2
  exit 2
}

exists() {
  [ -e "/run/netns/$NS" ]
}

[ $# -eq 1 ] || usage
if [ "$(id -u)" -ne 0 ]; then
  echo "$0: must run as root (it creates a network namespace)" >&2
  exit 1
fi

case "$1" in
  up)
    if exists; then
      echo "$0: network namespace $NS already exists; remove it first ($0 down)" >&2
      exit 1
    fi
    ip netns add "$NS"
    # Anything failing below takes the half-made namespace away again.
    trap 'ip netns del "$NS" 2>/dev/null || true' ERR
    ip -n "$NS" link set lo up
    ip -n "$NS" link add "$BR" type bridge
    ip -n "$NS" addr add "$HOST" dev "$BR"
    ip -n "$NS" link set "$BR" up
    trap - ERR
    echo "lab network up: namespace $NS, bridge $BR, host ${HOST%/*}"
    echo "  hearth network create vpc1 --bridge $BR --netns $NS --address 10.77.0.2/24 --route 10.77.0.0/24 --allow ${HOST%/*}/32:5432"
    ;;
  down)
    if exists; then
      ip netns del "$NS"
      echo "lab network down: namespace $NS removed"
    else
      echo "lab network: namespace $NS does not exist"
    fi
    ;;
  *)
    usage
    ;;
esac
