# Shared by the kernel-peer tests (sourced, not run): a network namespace for
# the Linux kernel's side, a veth pair into it, clean-up on exit, and waiting
# for sluice's ready line. Set TAG, KERNEL_IP and SLUICE_IP first.
# Defines: NS HOST_IF PEER_IF WORK PID, fail, netns_up, netns_veth, wait_ready.

NS="${TAG}ns"
HOST_IF="${TAG}h"     # sluice's side
PEER_IF="${TAG}p"     # the kernel's side, in the namespace
WORK=$(mktemp -d)
PID=""

netns_cleanup() {
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
        kill -TERM "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
    fi
    [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
    ip link del "$HOST_IF" 2>/dev/null || true
    rm -rf "$WORK"
}
trap netns_cleanup EXIT

fail() {
    echo "$(basename "$0")($MODE): FAIL: $*" >&2
    echo "--- sluice log:" >&2
    cat "$WORK/log" >&2 || true
    exit 1
}

# The namespace, with its loopback up.
netns_up() {
    ip netns add "$NS"
    ip -n "$NS" link set lo up
}

# A veth pair: HOST_IF for sluice (no kernel address, no IPv6 chatter),
# PEER_IF in the namespace with KERNEL_IP/24. Full checksums from the kernel:
# af_packet would otherwise see partial ones.
netns_veth() {
    ip link add "$HOST_IF" type veth peer name "$PEER_IF"
    ip link set "$PEER_IF" netns "$NS"
    sysctl -qw "net.ipv6.conf.$HOST_IF.disable_ipv6=1" || true
    ip link set "$HOST_IF" up
    ip -n "$NS" addr add "$KERNEL_IP/24" dev "$PEER_IF"
    ip -n "$NS" link set "$PEER_IF" up
    ip netns exec "$NS" ethtool -K "$PEER_IF" tx off >/dev/null
    ethtool -K "$HOST_IF" tx off >/dev/null 2>&1 || true
}

# Waits (10 s at most) for "ready on" in $WORK/log from sluice (pid $PID).
wait_ready() {
    for _ in $(seq 1 200); do
        grep -q "ready on" "$WORK/log" 2>/dev/null && return 0
        kill -0 "$PID" 2>/dev/null || fail "sluice exited before it was ready"
        sleep 0.05
    done
    fail "sluice not ready after 10 s"
}
