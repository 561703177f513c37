#!/usr/bin/env bash
# Regenerates tests/fixtures/linux.pcap: real frames from the Linux kernel for
# the wire-format golden tests. Two namespaces joined by a veth pair (tx
# checksum offload off, so checksums in the capture are complete), with a
# little loss on one side so the capture holds SACK blocks:
#   ARP request/reply, ICMP echo request/reply, a TCP handshake with MSS,
#   SACK-permitted, timestamps and window scale, 64 KiB each way, half-close,
#   FIN/ACK, and an RST from a closed port.
# Needs root, iproute2, ethtool, nftables, tcpdump, python3. Usage: sudo scripts/capture-fixture.sh [out.pcap]
set -euo pipefail
OUT=${1:-tests/fixtures/linux.pcap}
[ "$(id -u)" = 0 ] || { echo "capture-fixture: needs root" >&2; exit 1; }
A=slcapA$$; B=slcapB$$
cleanup() { ip netns del "$A" 2>/dev/null || true; ip netns del "$B" 2>/dev/null || true; }
trap cleanup EXIT
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
