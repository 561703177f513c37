#!/usr/bin/env bash
# Regenerates tests/fixtures/linux.pcap: real frames from the Linux kernel for
# the wire-format golden tests. Two namespaces joined by a veth pair (tx
# checksum offload off, so checksums in the capture are complete), with a
# little loss on one side so the capture holds SACK blocks:
#   ARP request/reply, ICMP echo request/reply, a TCP handshake with MSS,
#   SACK-permitted, timestamps and window scale, 64 KiB each way, half-close,
#   FIN/ACK, and an RST from a closed port.
# With --ipv6, tests/fixtures/linux6.pcap instead, the same over IPv6
# (2001:db8:78::1 and ::2, static, nodad): the link's start (multicast
# listener reports with a hop-by-hop header, duplicate address detection for
# the link-local addresses, router solicitations), Neighbor Solicitation and
# Advertisement, ICMPv6 echo request/reply, a TCP handshake (MSS 1440), 16 KiB
# each way, half-close, FIN/ACK, and an RST from a closed port.
# Needs root, iproute2, ethtool, nftables, tcpdump, python3.
# Usage: sudo scripts/capture-fixture.sh [--ipv6] [out.pcap]
# NS_PREFIX names the namespaces (default slcap; they end in A/B and the PID).
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "capture-fixture: needs root" >&2; exit 1; }
PREFIX=${NS_PREFIX:-slcap}
A=${PREFIX}A$$; B=${PREFIX}B$$
cleanup() { ip netns del "$A" 2>/dev/null || true; ip netns del "$B" 2>/dev/null || true; }
trap cleanup EXIT
if [ "${1:-}" = --ipv6 ]; then
    OUT=${2:-tests/fixtures/linux6.pcap}
    ip netns add "$A"; ip netns add "$B"
    ip -n "$A" link add va type veth peer name vb netns "$B"
    ip netns exec "$A" ethtool -K va tx off gso off tso off >/dev/null
    ip netns exec "$B" ethtool -K vb tx off gso off tso off >/dev/null
    # B's end up first, captured from before A's comes up (and the link with
    # it): the link-local addresses' start-up traffic is in the capture.
    ip -n "$B" link set vb up
    ip netns exec "$B" tcpdump -i vb -U -s 0 -w "$OUT.tmp" 2>/dev/null &
    TD=$!
    sleep 1
    ip -n "$A" addr add 2001:db8:78::1/64 dev va nodad
    ip -n "$B" addr add 2001:db8:78::2/64 dev vb nodad
    ip -n "$A" link set va up
    # Link-local DAD takes about a second; TCP waits for nothing but that.
    sleep 2.5
    ip netns exec "$B" python3 - <<'PY' &
import socket
s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("2001:db8:78::2", 8080)); s.listen(1)
c, _ = s.accept()
while c.recv(65536):
    pass
c.sendall(bytes(i % 251 for i in range(16384))); c.close()
PY
    SRV=$!
    sleep 0.5
    ip netns exec "$A" ping -6 -c 2 -i 0.2 2001:db8:78::2 >/dev/null
    ip netns exec "$A" python3 - <<'PY'
import socket
c = socket.create_connection(("2001:db8:78::2", 8080))
c.sendall(bytes(i % 241 for i in range(16384)))
c.shutdown(socket.SHUT_WR)
n = 0
while True:
    b = c.recv(65536)
    if not b: break
    n += len(b)
c.close()
assert n == 16384, n
try:
    socket.create_connection(("2001:db8:78::2", 9), timeout=2)
except ConnectionRefusedError:
    pass
PY
    wait "$SRV"
    sleep 1
    kill -INT "$TD"; wait "$TD" || true
    for want in 'neighbor solicitation' 'neighbor advertisement' 'echo request' 'echo reply' \
                'Flags \[S\]' 'Flags \[S\.\]' 'Flags \[R'; do
        tcpdump -nr "$OUT.tmp" 2>/dev/null | grep -q "$want" || {
            echo "capture-fixture: no '$want' in the IPv6 capture" >&2; exit 3; }
    done
    mv "$OUT.tmp" "$OUT"
    echo "capture-fixture: wrote $OUT ($(stat -c %s "$OUT") bytes)"
    exit 0
fi
OUT=${1:-tests/fixtures/linux.pcap}
ip netns add "$A"; ip netns add "$B"
ip -n "$A" link add va type veth peer name vb netns "$B"
ip -n "$A" addr add 10.78.0.1/24 dev va; ip -n "$B" addr add 10.78.0.2/24 dev vb
ip -n "$A" link set va up; ip -n "$B" link set vb up
for ns in "$A" "$B"; do
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
done
ip netns exec "$A" ethtool -K va tx off gso off tso off >/dev/null
ip netns exec "$B" ethtool -K vb tx off gso off tso off >/dev/null
# Lose about 4 % of A's full-sized data segments, so B sends SACK blocks.
ip netns exec "$A" nft add table inet loss
ip netns exec "$A" nft add chain inet loss out '{ type filter hook output priority 0; }'
ip netns exec "$A" nft add rule inet loss out ip length '>' 1000 numgen random mod 25 0 drop
ip netns exec "$B" tcpdump -i vb -U -s 0 -w "$OUT.tmp" 2>/dev/null &
TD=$!
sleep 1
ip netns exec "$B" python3 - <<'PY' &
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.78.0.2", 8080)); s.listen(1)
c, _ = s.accept(); n = 0
while True:
    b = c.recv(65536)
    if not b: break
    n += len(b)
c.sendall(bytes(i % 251 for i in range(65536))); c.close()
PY
SRV=$!
sleep 0.5
ip netns exec "$A" ping -c 2 -i 0.2 10.78.0.2 >/dev/null
ip netns exec "$A" python3 - <<'PY'
import socket
c = socket.create_connection(("10.78.0.2", 8080))
c.sendall(bytes(i % 241 for i in range(65536)))
c.shutdown(socket.SHUT_WR)
n = 0
while True:
    b = c.recv(65536)
    if not b: break
    n += len(b)
c.close()
assert n == 65536, n
try:
    socket.create_connection(("10.78.0.2", 9), timeout=2)
except ConnectionRefusedError:
    pass
PY
wait "$SRV"
sleep 1
kill -INT "$TD"; wait "$TD" || true
tcpdump -nr "$OUT.tmp" 2>/dev/null | grep -q 'sack [0-9]' || {
    echo "capture-fixture: no SACK blocks this time (the loss is random): run it again" >&2; exit 3; }
mv "$OUT.tmp" "$OUT"
echo "capture-fixture: wrote $OUT ($(stat -c %s "$OUT") bytes)"
