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
NS="${TAG}ns"
HOST_IF="${TAG}h"     # sluice's side (af_packet) / the tap device's name (tap)
PEER_IF="${TAG}p"     # the kernel's side in the namespace (af_packet)
KERNEL_IP=10.77.0.1
SLUICE_IP=10.77.0.2
WORK=$(mktemp -d)
PID=""

cleanup() {
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
        kill -TERM "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
    fi
    ip netns del "$NS" 2>/dev/null || true
    ip link del "$HOST_IF" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

fail() { echo "test-kernel-peer($MODE): FAIL: $*" >&2; echo "--- sluice log:" >&2; cat "$WORK/log" >&2 || true; exit 1; }

ip netns add "$NS"
ip -n "$NS" link set lo up

start_sluice() {
    "$SLUICE" respond --vdev "$1" --ip "$SLUICE_IP" --duration 60 --json "$WORK/result.json" \
        --quiet >"$WORK/out" 2>"$WORK/log" &
    PID=$!
    for _ in $(seq 1 200); do
        grep -q "ready on" "$WORK/log" 2>/dev/null && return 0
        kill -0 "$PID" 2>/dev/null || fail "sluice exited before it was ready"
        sleep 0.05
    done
    fail "sluice not ready after 10 s"
}

case "$MODE" in
af_packet)
    ip link add "$HOST_IF" type veth peer name "$PEER_IF"
    ip link set "$PEER_IF" netns "$NS"
    # No kernel address on sluice's side, and no IPv6 chatter from it.
    sysctl -qw "net.ipv6.conf.$HOST_IF.disable_ipv6=1" || true
    ip link set "$HOST_IF" up
    ip -n "$NS" addr add "$KERNEL_IP/24" dev "$PEER_IF"
    ip -n "$NS" link set "$PEER_IF" up
    # Full checksums from the kernel: af_packet would otherwise see partial ones.
    ip netns exec "$NS" ethtool -K "$PEER_IF" tx off >/dev/null
    ethtool -K "$HOST_IF" tx off >/dev/null 2>&1 || true
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
