# Shared by the kernel-peer tests (sourced, not run): a network namespace for
# the Linux kernel's side, a veth pair into it, clean-up on exit, and waiting
# for sluice's ready line. Set TAG, KERNEL_IP and SLUICE_IP first (both IPv4,
# or both IPv6: the namespace's address is then a /64 without duplicate
# address detection, and the captures are checked over IPv6).
# SLUICE_NS_PREFIX (optional, up to 4 characters) goes in front of TAG, so
# that runs side by side can tell their namespaces and links apart.
# NAME (optional): the mode as the messages name it (default MODE).
# Defines: NS HOST_IF PEER_IF WORK PID IP_LAYER, fail, netns_up, netns_veth,
# wait_ready, capture_start, capture_check.

TAG="${SLUICE_NS_PREFIX:-}$TAG"
# Link names end in at most 3 more characters and have at most 15.
[ "${#TAG}" -le 12 ] || { echo "netns.sh: TAG $TAG is longer than 12 characters" >&2; exit 2; }
NS="${TAG}ns"
HOST_IF="${TAG}h"     # sluice's side
PEER_IF="${TAG}p"     # the kernel's side, in the namespace
WORK=$(mktemp -d)
PID=""
# tshark's name for the IP layer of the addresses' family.
case "$KERNEL_IP" in
*:*) IP_LAYER=ipv6 ;;
*) IP_LAYER=ip ;;
esac

netns_cleanup() {
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
        kill -TERM "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
    fi
    [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
    if [ -n "${CAP_PID:-}" ]; then kill "$CAP_PID" 2>/dev/null || true; fi
    ip netns del "$NS" 2>/dev/null || true
    ip link del "$HOST_IF" 2>/dev/null || true
    rm -rf "$WORK"
}
trap netns_cleanup EXIT

fail() {
    echo "$(basename "$0")(${NAME:-$MODE}): FAIL: $*" >&2
    echo "--- sluice log:" >&2
    cat "$WORK/log" >&2 || true
    if [ -n "${CAP_FILE:-}" ] && [ -f "$CAP_FILE" ]; then
        [ -n "${CAP_PID:-}" ] && kill -INT "$CAP_PID" 2>/dev/null && sleep 0.3
        cp "$CAP_FILE" "/tmp/sluice-failed-$(basename "$CAP_FILE")" 2>/dev/null &&
            echo "capture kept: /tmp/sluice-failed-$(basename "$CAP_FILE")" >&2
    fi
    exit 1
}

# The run could not be judged (not a failure of sluice, nor a pass): exit 75
# (EX_TEMPFAIL), which the test harness retries a bounded number of times;
# every check still applies to the run that is judged.
incomplete() {
    echo "$(basename "$0")(${NAME:-$MODE}): INCOMPLETE: $*" >&2
    exit 75
}

# The namespace, with its loopback up.
netns_up() {
    ip netns add "$NS"
    ip -n "$NS" link set lo up
}

# A veth pair: HOST_IF for sluice (no kernel address, no IPv6 chatter),
# PEER_IF in the namespace with KERNEL_IP/24, or for IPv6 KERNEL_IP/64
# `nodad` (static, usable at once; RFC 4862 5.4 makes DAD optional for
# configured addresses). Full checksums from the kernel: af_packet would
# otherwise see partial ones.
netns_veth() {
    ip link add "$HOST_IF" type veth peer name "$PEER_IF"
    ip link set "$PEER_IF" netns "$NS"
    sysctl -qw "net.ipv6.conf.$HOST_IF.disable_ipv6=1" || true
    ip link set "$HOST_IF" up
    if [ "$IP_LAYER" = ipv6 ]; then
        ip -n "$NS" addr add "$KERNEL_IP/64" dev "$PEER_IF" nodad
    else
        ip -n "$NS" addr add "$KERNEL_IP/24" dev "$PEER_IF"
    fi
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

# Captures on the kernel's side of the veth (what the kernel sends and
# receives), at most CAP_COUNT packets (default 100000), into $WORK/NAME.pcap.
capture_start() {
    CAP_FILE="$WORK/$1.pcap"
    ip netns exec "$NS" tcpdump -i "$PEER_IF" -nn -s 0 -B 262144 -c "${CAP_COUNT:-100000}" \
        -w "$CAP_FILE" tcp 2>"$WORK/tcpdump.log" &
    CAP_PID=$!
    for _ in $(seq 1 100); do
        grep -q "listening on" "$WORK/tcpdump.log" 2>/dev/null && return 0
        sleep 0.05
    done
    fail "tcpdump did not start: $(cat "$WORK/tcpdump.log")"
}

# Stops the capture and checks it with tshark: no malformed packets, no bad
# IP or TCP checksums, no expert-info item of warning or error severity
# (TCP protocol errors: lost or unseen segments, out-of-order, zero window,
# resets, bad options). Prints what it counted.
capture_check() {
    sleep 0.5
    kill -INT "$CAP_PID" 2>/dev/null || true
    wait "$CAP_PID" 2>/dev/null || true
    CAP_PID=""
    local total bad dropped
    dropped=$(awk '/dropped by kernel/ {print $1}' "$WORK/tcpdump.log")
    [ "${dropped:-0}" = 0 ] ||
        incomplete "tcpdump dropped $dropped packets (the machine was busy): the capture cannot be checked"
    total=$(tshark -r "$CAP_FILE" -T fields -e frame.number 2>/dev/null | wc -l)
    [ "$total" -gt 0 ] || fail "capture $CAP_FILE is empty"
    # Tolerated: flow control (a full window, zero-window segments and
    # probes: the echo test fills buffers on purpose), and from the kernel
    # only, a TCP checksum of 0xffff where 0x0000 is the canonical form (the
    # same value in ones' complement; receivers accept both, RFC 1624
    # section 3). Ours must not send that. And a reset from sluice that
    # answers a segment arriving after both FINs of its connection were
    # exchanged (no connection is left to take it, RFC 9293 3.10.7.1): with
    # two shards on a device without RSS, a retransmitted FIN can reach its
    # owner through software steering after the connection closed.
    tshark -r "$CAP_FILE" -Y "tcp.flags.fin == 1" -T fields -e frame.number -e tcp.stream \
        -e "$IP_LAYER.src" >"$WORK/fins" 2>/dev/null
    bad=$(tshark -r "$CAP_FILE" -o ip.check_checksum:TRUE -o tcp.check_checksum:TRUE \
        -Y "_ws.malformed || ip.checksum.status == 0 || tcp.checksum.status == 0
            || _ws.expert.severity >= 6291456" \
        -T fields -E aggregator='|' -e frame.number -e "$IP_LAYER.src" -e tcp.stream -e _ws.expert.severity \
        -e _ws.expert.message 2>/dev/null | python3 -c '
import sys
kernel, bad = sys.argv[1], []
fins = {}  # stream -> {source: first FIN frame}
for line in open(sys.argv[2]):
    n, stream, src = line.split()
    fins.setdefault(stream, {}).setdefault(src, int(n))
def after_close(num, stream):
    f = fins.get(stream, {})
    return len(f) == 2 and max(f.values()) < int(num)
# Flow control at work, not errors: a receiver whose buffer is full.
FLOW_CONTROL = ("TCP window specified by the receiver is now completely full",
                "TCP Zero Window segment", "TCP Zero Window", "TCP ZeroWindowProbe")
for line in sys.stdin:
    num, src, stream, sev, msg = (line.rstrip("\n").split("\t") + [""] * 5)[:5]
    items = [(int(s or 0), m) for s, m in zip(sev.split("|"), msg.split("|"))]
    left = [m for s, m in items if s >= 6291456
            and not (src == kernel and m.startswith("TCP Checksum 0xffff instead of 0x0000"))
            and not m.startswith(FLOW_CONTROL)
            and not (src != kernel and m == "Connection reset (RST)" and after_close(num, stream))]
    if left or not items:
        bad.append(f"{num} {src} " + ("; ".join(left) or "malformed or bad checksum"))
print("\n".join(bad[:20] + ([f"... {len(bad)} frames in all"] if len(bad) > 20 else [])))
' "$KERNEL_IP" "$WORK/fins")
    if [ -n "$bad" ]; then
        echo "capture $CAP_FILE: problems (frame, expert info):" >&2
        echo "$bad" >&2
        # Frames sluice's port dropped before reading them (its receive ring
        # full on a busy machine) are a lossy link: the kernel's retransmits,
        # D-SACKs and resets that follow are TCP doing its job, and the run
        # cannot be judged. Known once sluice has written its report, so with
        # the server still running the verdict waits for stop_server.
        if [ -n "$PID" ]; then
            CAP_DEFERRED="tshark found malformed packets, bad checksums or TCP errors in $(basename "$CAP_FILE")"
            return 0
        fi
        capture_verdict "tshark found malformed packets, bad checksums or TCP errors in $(basename "$CAP_FILE")"
    fi
    echo "capture $(basename "$CAP_FILE"): $total packets, tshark: no malformed, no bad checksum, no TCP expert warning or error (flow control aside)"
}

# The verdict on a capture with problems: incomplete (exit 75, run again) if
# sluice's port dropped frames before reading them, else a failure. Dropped
# frames: the port's own count (`nic_missed`, where the driver reports it),
# or, as af_packet does not, the kernel's TCP frames to sluice in the
# (complete) capture beyond every frame sluice says it received.
capture_verdict() {
    local missed sent
    sent=$(tshark -r "$CAP_FILE" -Y "$IP_LAYER.src == $KERNEL_IP && $IP_LAYER.dst == $SLUICE_IP" \
        -T fields -e frame.number 2>/dev/null | wc -l)
    missed=$(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
print(max(r.get("nic_missed", 0), int(sys.argv[2]) - r.get("rx_packets", 0)))' \
        "$WORK/server.json" "$sent" 2>/dev/null || echo 0)
    if [ "${missed:-0}" -gt 0 ]; then
        incomplete "sluice's port dropped $missed frames before reading them (the machine was busy): $1 follows from that loss and cannot be judged"
    fi
    fail "$1"
}
