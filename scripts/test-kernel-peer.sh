#!/usr/bin/env bash
# The Linux kernel as sluice's first real peer: ping from a network namespace
# to `sluice respond` on a DPDK virtual device, then check the kernel learned
# sluice's MAC through ARP.
#
#   scripts/test-kernel-peer.sh af_packet|tap [path/to/sluice]
#
# af_packet: a veth pair; one end in a namespace with a kernel IPv4 address,
#            sluice on the other end through net_af_packet.
# tap:       sluice creates a tap device with net_tap; it is moved into the
#            namespace and given the kernel's address there.
# Needs root (namespaces, raw sockets). Creates and removes its own namespace;
# traffic stays inside it. Exit 0 = pass.
set -euo pipefail

MODE=${1:?usage: $0 af_packet|tap [sluice-binary]}
SLUICE=${2:-target/release/sluice}
[ "$(id -u)" = 0 ] || { echo "test-kernel-peer: needs root" >&2; exit 77; }
command -v ip >/dev/null || { echo "test-kernel-peer: needs ip (iproute2)" >&2; exit 77; }
[ -x "$SLUICE" ] || { echo "test-kernel-peer: no binary at $SLUICE (cargo build --release)" >&2; exit 2; }

TAG="sl$$"
KERNEL_IP=10.77.0.1
SLUICE_IP=10.77.0.2
# shellcheck source=scripts/lib/netns.sh
. "$(dirname "$0")/lib/netns.sh"
netns_up

start_sluice() {
    "$SLUICE" respond --vdev "$1" --ip "$SLUICE_IP" --duration 60 --json "$WORK/result.json" \
        --quiet >"$WORK/out" 2>"$WORK/log" &
    PID=$!
    wait_ready
}

case "$MODE" in
af_packet)
    netns_veth
    start_sluice "net_af_packet0,iface=$HOST_IF"
    KERNEL_IF=$PEER_IF
    ;;
tap)
    start_sluice "net_tap0,iface=$HOST_IF"
    ip link set "$HOST_IF" netns "$NS"
    ip -n "$NS" addr add "$KERNEL_IP/24" dev "$HOST_IF"
    ip -n "$NS" link set "$HOST_IF" up
    ip netns exec "$NS" ethtool -K "$HOST_IF" tx off >/dev/null 2>&1 || true
    KERNEL_IF=$HOST_IF
    ;;
*) echo "usage: $0 af_packet|tap" >&2; exit 2 ;;
esac

MAC=$(sed -n 's/.* mac=\([0-9a-f:]*\) .*/\1/p' "$WORK/log" | head -1)
[ -n "$MAC" ] || fail "no MAC in sluice's ready line"

if ! ip netns exec "$NS" ping -c 5 -i 0.2 -W 2 "$SLUICE_IP" >"$WORK/ping" 2>&1; then
    cat "$WORK/ping" >&2
    fail "ping did not get 5 replies"
fi
RECEIVED=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' "$WORK/ping")
[ "$RECEIVED" = 5 ] || { cat "$WORK/ping" >&2; fail "ping received $RECEIVED of 5"; }

NEIGH=$(ip -n "$NS" neigh show "$SLUICE_IP" dev "$KERNEL_IF")
echo "$NEIGH" | grep -qi "lladdr $MAC" || fail "kernel neighbour table has '$NEIGH', expected lladdr $MAC"

kill -TERM "$PID"
wait "$PID" || fail "sluice exited with status $? after SIGTERM"
PID=""
grep -q '"icmp_echo_answered": [5-9]' "$WORK/result.json" || fail "result.json: $(cat "$WORK/result.json")"
grep -q '"arp_requests_answered": [1-9]' "$WORK/result.json" || fail "no ARP request answered: $(cat "$WORK/result.json")"

echo "test-kernel-peer($MODE): PASS: 5/5 ping replies from sluice at $SLUICE_IP, kernel neighbour: $NEIGH"
