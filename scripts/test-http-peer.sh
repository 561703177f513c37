#!/usr/bin/env bash
# HTTP over TCP between sluice and the Linux kernel, both directions, on a veth
# pair (sluice on net_af_packet, the kernel in a network namespace).
#
#   scripts/test-http-peer.sh server [sluice-binary]   # curl (kernel) -> sluice server
#   scripts/test-http-peer.sh server2 [sluice-binary]  # the same, two shards on two
#                                                      # af_packet queue pairs
#   scripts/test-http-peer.sh client [sluice-binary]   # sluice client -> nginx (kernel)
#   scripts/test-http-peer.sh client2 [sluice-binary]  # the same from two client shards
#   scripts/test-http-peer.sh requests [sluice-binary] # sluice client -> nginx: headers, method
#                                                      # and body as given (nginx's access log),
#                                                      # URLs in turn, chunked (gzip) and 404
#                                                      # responses counted by status class, HEAD,
#                                                      # nginx closing every 2nd request
#   scripts/test-http-peer.sh wrk [sluice-binary]      # wrk, 10 s, 50 connections, keep-alive
#                                                      # and Connection: close -> sluice server
#   scripts/test-http-peer.sh ab [sluice-binary]       # ab -n 10000 -c 50 -> sluice server
#   scripts/test-http-peer.sh kclient [sluice-binary]  # sluice client --kernel (namespace) ->
#                                                      # sluice server (DPDK)
#   scripts/test-http-peer.sh kserver [sluice-binary]  # sluice client (DPDK) -> sluice server
#                                                      # --kernel (namespace)
#   scripts/test-http-peer.sh echo [sluice-binary]     # 10 MB through the echo server from a
#                                                      # Python client, byte-exact; and with the
#                                                      # client half-closing first
#   scripts/test-http-peer.sh split [sluice-binary]    # two sluice clients, --split 1/2 and 2/2,
#                                                      # each on its own veth bridged to nginx:
#                                                      # disjoint sources, merged totals = the sum
#
# Over IPv6 (the namespace's address a /64 without DAD; sluice's server at
# fd78::2, the kernel at fd78::1):
#   scripts/test-http-peer.sh server6 [sluice-binary]  # ping -6 answered and `ip -6 neigh`
#                                                      # showing sluice's MAC; then `server`,
#                                                      # `wrk` and `ab` over IPv6; sluice's
#                                                      # SYN-ACKs say MSS 1440
#   scripts/test-http-peer.sh client6 [sluice-binary]  # `client` against nginx on [::]:80
#   scripts/test-http-peer.sh echo6 [sluice-binary]    # `echo` over IPv6
#
# Every run is captured on the kernel's side and checked with tshark (no
# malformed packets, bad checksums or TCP expert warnings/errors).
# Needs root (namespaces, raw sockets), tcpdump and tshark, curl for `server`,
# nginx for `client`, wrk, ab (apache2-utils), python3.
# Creates and removes its own namespace (SLUICE_NS_PREFIX=xyz in the
# environment: its name and its links' start with xyz); traffic stays inside
# it. Exit 0 =
# pass, 77 = cannot run here (says why), 75 = the run could not be judged (its
# capture lost packets on a busy machine: run it again), anything else = fail.
set -euo pipefail

MODE=${1:?usage: $0 server|client|... [sluice-binary] (see the comment at the top)}
NAME=$MODE # as given: the PASS line names it
SLUICE=${2:-target/release/sluice}
[ "$(id -u)" = 0 ] || { echo "test-http-peer: needs root" >&2; exit 77; }
command -v ip >/dev/null || { echo "test-http-peer: needs ip (iproute2)" >&2; exit 77; }
[ -x "$SLUICE" ] || { echo "test-http-peer: no binary at $SLUICE (cargo build --release)" >&2; exit 2; }

TAG="sh$$"
KERNEL_IP=10.78.0.1
SLUICE_IP=10.78.0.2
# A source address of sluice's client: src_ip N.
src_ip() { echo "10.78.0.$1"; }
case "$MODE" in
server6 | client6 | echo6)
    MODE=${MODE%6}
    KERNEL_IP=fd78::1
    SLUICE_IP=fd78::2
    src_ip() { echo "fd78::$1"; }
    ;;
esac
# As a URL's host (IPv6 in brackets).
url_host() { case "$1" in *:*) echo "[$1]" ;; *) echo "$1" ;; esac; }
KERNEL_HOST=$(url_host "$KERNEL_IP")
SLUICE_HOST=$(url_host "$SLUICE_IP")
# shellcheck source=scripts/lib/netns.sh
. "$(dirname "$0")/lib/netns.sh"
netns_up
netns_veth
VDEV="net_af_packet0,iface=$HOST_IF"

CORES=0
if [ "$MODE" = server2 ]; then
    # Two queue pairs: the kernel fans flows out over both sockets by its own
    # hash, so about half the frames reach the wrong shard and are steered.
    VDEV="$VDEV,qpairs=2"
    CORES=0,1
    MODE=server
    TWO=1
elif [ "$MODE" = client2 ]; then
    VDEV="$VDEV,qpairs=2"
    CORES=0,1
    MODE=client
    TWO=1
fi

# nginx in the namespace: one worker, its files under $WORK, and $1 inside
# its http block. Returns once it listens (it binds before it daemonises).
start_nginx() {
    mkdir -p "$WORK/logs"
    cat > "$WORK/nginx.conf" <<EOF
worker_processes 1;
daemon on;
pid $WORK/nginx.pid;
error_log $WORK/logs/error.log crit;
events { worker_connections 4096; }
http {
    client_body_temp_path $WORK; proxy_temp_path $WORK; fastcgi_temp_path $WORK;
    uwsgi_temp_path $WORK; scgi_temp_path $WORK;
    $1
}
EOF
    ip netns exec "$NS" nginx -c "$WORK/nginx.conf" -p "$WORK"
    sleep 0.3
}

need() {
    command -v "$1" >/dev/null || { echo "test-http-peer: needs $1${2:+ ($2)}" >&2; exit 77; }
}
need tcpdump
need tshark

# sluice server on the veth: HTTP on 80 (1234-byte body), echo on 7.
start_server() {
    "$SLUICE" server --vdev "$VDEV" --ip "$SLUICE_IP" --listen 80:http --listen 7:echo \
        --cores "$CORES" --body 1234 --duration 120 --json "$WORK/server.json" --quiet \
        "$@" >"$WORK/out" 2>"$WORK/log" &
    PID=$!
    wait_ready
}

# Stops the server; checks that no connection ended other than by FIN, except
# at most $1 reset by the peer.
stop_server() {
    kill -TERM "$PID"
    wait "$PID" || fail "sluice server exited with an error"
    PID=""
    [ -z "${CAP_DEFERRED:-}" ] || capture_verdict "$CAP_DEFERRED"
    python3 - "$WORK/server.json" "${1:-0}" <<'PY' || fail "server counters"
import json, sys
r = json.load(open(sys.argv[1]))
resets_ok = int(sys.argv[2])
bad = {k: v for k, v in r["closes"].items()
       if k != "normal" and v and not (k == "reset_by_peer" and v <= resets_ok)}
assert not bad, f"connections ended other than by FIN: {bad}"
print(f'server: accepted {r["accepted"]}, responses {r["responses"]}, retransmits {r["retransmits"]}, '
      f'rst in/out {r["rsts_in"]}/{r["rsts_out"]}, closes {r["closes"]}')
PY
}

# A load run's JSON: 0 errors, every request answered.
check_client_json() {
    python3 - "$WORK/client.json" "$1" <<'PY' || fail "client result ($1)"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["errors_total"] == 0, r["errors"]
assert r["responses"] > 100 and r["responses"] == r["requests"], r
print(f'{r["tool"]} {sys.argv[2]}: {r["responses"]} responses, {r["cps"]:.0f} conn/s, {r["rps"]:.0f} req/s, '
      f'request p50 {r["latency_us"]["request"]["p50"]} us, errors 0')
PY
}

# Frames the link itself lost: the veth's tx drops (sluice's side, a full
# peer backlog), the peer's rx drops, and the kernel's per-CPU backlog drops.
link_drops() {
    local tx rx backlog
    tx=$(cat "/sys/class/net/$HOST_IF/statistics/tx_dropped")
    rx=$(ip netns exec "$NS" cat "/sys/class/net/$PEER_IF/statistics/rx_dropped")
    backlog=$(python3 -c 'print(sum(int(l.split()[1], 16) for l in open("/proc/net/softnet_stat")))')
    echo "$tx/$rx/$backlog"
}

# The MSS option of every SYN sluice sent in the capture (SYN and SYN-ACK;
# whatever does not come from the kernel comes from sluice, server or client):
# the MTU (1500) less the IP and TCP headers, 1460 over IPv4 and 1440 over
# IPv6 (RFC 9293 3.7.1, RFC 8200 5).
check_syn_mss() {
    local want=1460 got
    [ "$IP_LAYER" = ipv6 ] && want=1440
    got=$(tshark -r "$CAP_FILE" -Y "tcp.flags.syn == 1 && $IP_LAYER.src != $KERNEL_IP" \
        -T fields -e tcp.options.mss_val 2>/dev/null | sort | uniq -c | sed 's/^ *//')
    [ -n "$got" ] || fail "no SYN from sluice in $(basename "$CAP_FILE")"
    [ "$(echo "$got" | wc -l)" = 1 ] && [ "${got#* }" = "$want" ] ||
        fail "sluice's SYNs in $(basename "$CAP_FILE") carry MSS (count value): $got; want $want"
    echo "sluice's SYNs: MSS $want (${got% *} of them)"
}

# ping -6 of sluice's address from the namespace: 5 replies; then the
# kernel's neighbour entry for it holds the MAC of sluice's ready line
# (learned by Neighbor Discovery, RFC 4861 7.2).
ping6_and_neighbour() {
    local mac neigh received
    need ping
    start_server
    mac=$(sed -n 's/.* mac=\([0-9a-f:]*\) .*/\1/p' "$WORK/log" | head -1)
    [ -n "$mac" ] || fail "no MAC in sluice's ready line"
    ip netns exec "$NS" ping -6 -c 5 -i 0.2 -W 2 "$SLUICE_IP" >"$WORK/ping" 2>&1 ||
        { cat "$WORK/ping" >&2; fail "ping -6 did not get 5 replies"; }
    received=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' "$WORK/ping")
    [ "$received" = 5 ] || { cat "$WORK/ping" >&2; fail "ping -6 received $received of 5"; }
    neigh=$(ip -n "$NS" -6 neigh show "$SLUICE_IP" dev "$PEER_IF")
    echo "$neigh" | grep -qi "lladdr $mac" ||
        fail "the kernel's IPv6 neighbour table has '$neigh', expected lladdr $mac"
    stop_server
    echo "test-http-peer($LABEL): PASS (ping -6: 5/5 replies from $SLUICE_IP; ip -6 neigh: $neigh)"
}

mode_server() {
    need curl
    capture_start curl
    # sluice's own capture of its first shard (--pcap), read back below;
    # its counters over Prometheus (--metrics) and each second as JSON (--stats).
    MPORT=$((20000 + $$ % 20000))
    start_server --pcap "$WORK/sluice.pcap" --pcap-count 150 \
        --metrics "127.0.0.1:$MPORT" --stats "$WORK/stats.jsonl"
    # curl -g: the brackets of an IPv6 literal are not a glob.
    ok=0
    for i in $(seq 1 20); do
        code=$(ip netns exec "$NS" curl -g -s -o "$WORK/body" -w '%{http_code}' --max-time 5 "http://$SLUICE_HOST/" || true)
        size=$(stat -c %s "$WORK/body" 2>/dev/null || echo 0)
        [ "$code" = 200 ] && [ "$size" = 1234 ] && ok=$((ok + 1))
    done
    [ "$ok" = 20 ] || fail "$ok of 20 curl requests got 200 with a 1234-byte body"
    # Keep-alive: several requests on one connection.
    n=$(ip netns exec "$NS" curl -g -s --max-time 5 -o /dev/null -w '%{num_connects}\n' \
        "http://$SLUICE_HOST/" "http://$SLUICE_HOST/" "http://$SLUICE_HOST/" | awk '{s += $1} END {print s}')
    [ "$n" = 1 ] || fail "three keep-alive requests took $n connections"
    # The shards publish each second: the scrape sees all 23 responses soon.
    for _ in $(seq 1 30); do
        curl -s --max-time 2 "http://127.0.0.1:$MPORT/metrics" >"$WORK/metrics" || true
        grep -q '^sluice_responses_total 23$' "$WORK/metrics" && break
        sleep 0.2
    done
    # Each shard has its own two listeners (HTTP and echo).
    LISTENERS=$((2 + 2 * ${TWO:-0}))
    python3 - "$WORK/metrics" "$LISTENERS" <<'PY' || fail "--metrics scrape"
import re, sys
text = open(sys.argv[1]).read()
types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
values = {m[0]: float(m[1]) for m in re.findall(r"^(\S+) (\S+)$", text, re.M)}
for name, kind in [("sluice_responses_total", "counter"), ("sluice_accepted_total", "counter"),
                   ("sluice_tcp_retransmits_total", "counter"), ("sluice_drops_total", "counter"),
                   ("sluice_connections", "gauge"), ("sluice_latency_seconds", "histogram")]:
    assert types.get(name) == kind, (name, types.get(name))
assert values["sluice_responses_total"] >= 23, values["sluice_responses_total"]
assert values["sluice_accepted_total"] >= 21, values["sluice_accepted_total"]
assert values['sluice_connections{state="LISTEN"}'] == int(sys.argv[2]), text
print(f"--metrics: {len(types)} metric families, responses {values['sluice_responses_total']:.0f}, "
      f"accepted {values['sluice_accepted_total']:.0f}")
PY
    capture_check
    check_syn_mss
    kill -TERM "$PID"
    wait "$PID" || fail "sluice server exited with an error"
    PID=""
    [ -z "${CAP_DEFERRED:-}" ] || capture_verdict "$CAP_DEFERRED"
    python3 - "$WORK/server.json" "${TWO:-0}" <<'PY' || fail "server counters"
import json, sys
r = json.load(open(sys.argv[1]))
if sys.argv[2] == "1":
    assert r["shards"] == 2, r
    assert r["steered"] > 0, r
assert r["accepted"] == 21, r
assert r["responses"] == 23, r
bad = {k: v for k, v in r["closes"].items() if k != "normal" and v}
assert not bad, bad
print(f'server: {r["shards"]} shard(s), accepted {r["accepted"]}, responses {r["responses"]}, '
      f'steered {r["steered"]} frames, closes {r["closes"]}')
PY
    frames=$(tshark -r "$WORK/sluice.pcap" -T fields -e frame.number 2>/dev/null | wc -l)
    malformed=$(tshark -r "$WORK/sluice.pcap" -Y "_ws.malformed || _ws.expert.severity >= 8388608" \
        -o tcp.check_checksum:TRUE -T fields -e frame.number 2>/dev/null | wc -l)
    # One shard sees every frame (all 150 are written); of two, the first
    # sees its share.
    if [ -z "${TWO:-}" ]; then
        [ "$frames" = 150 ] || fail "sluice --pcap: tshark read $frames frames, expected --pcap-count 150"
    else
        [ "$frames" -gt 20 ] && [ "$frames" -le 150 ] || fail "sluice --pcap: $frames frames from shard 0"
    fi
    [ "$malformed" = 0 ] || fail "sluice --pcap: $malformed malformed frames or bad checksums"
    echo "sluice --pcap: $frames frames, tshark reads them, none malformed"
    python3 - "$WORK/stats.jsonl" "$LISTENERS" <<'PY' || fail "--stats stream"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert len(lines) >= 2, lines
for k in ("unix_s", "elapsed_s", "cps", "rps", "active", "states", "retransmits", "rsts_in",
          "rsts_out", "drops", "rx_pps", "rx_gbps", "tx_pps", "tx_gbps", "nic"):
    assert k in lines[-1], (k, lines[-1])
assert all(a["elapsed_s"] < b["elapsed_s"] for a, b in zip(lines, lines[1:]))
assert lines[-1]["states"]["LISTEN"] == int(sys.argv[2]), lines[-1]
print(f"--stats: {len(lines)} lines, one a second")
PY
    echo "test-http-peer($LABEL): PASS (20 curl requests + 3 keep-alive, all 200, $CORES)"
}

mode_client() {
    command -v nginx >/dev/null || { echo "test-http-peer: needs nginx (nginx-light)" >&2; exit 77; }
    # Over IPv6 on [::]:80, the wildcard (IPv6 only: nginx sets IPV6_V6ONLY).
    local listen="$KERNEL_IP:80"
    [ "$IP_LAYER" = ipv6 ] && listen="[::]:80"
    start_nginx "access_log off;
    server { listen $listen; location / { return 200 \"hello from the kernel\"; } }"
    CAP_COUNT=50000 capture_start client
    # Each run from its own source address: the kernel holds the 4-tuples of
    # the last run in TIME_WAIT for 60 s (reusing them works — our RST answer
    # frees them — but costs a 1 s SYN retransmission each).
    src=2
    for args in "-c 16" "-c 16 --keep-alive"; do
        src=$((src + 1))
        # shellcheck disable=SC2086
        "$SLUICE" client --vdev "$VDEV" --ip "$(src_ip "$src")" "http://$KERNEL_HOST/" --cores "$CORES" \
            -d 3 --warmup 0.5 $args --quiet --json "$WORK/client.json" >"$WORK/out" 2>"$WORK/log" \
            || fail "sluice client ($args) reported errors: $(cat "$WORK/out")"
        python3 - "$WORK/client.json" "$args" "${TWO:-0}" <<'PY' || fail "client result ($args)"
import json, sys
r = json.load(open(sys.argv[1]))
if sys.argv[3] == "1":
    assert r["client_cores"] == [0, 1], r["client_cores"]
assert r["errors_total"] == 0, r["errors"]
assert r["responses"] > 100 and r["responses"] == r["requests"], r
print(f'client {sys.argv[2]}: {r["responses"]} responses, {r["cps"]:.0f} conn/s, {r["rps"]:.0f} req/s, '
      f'request p50 {r["latency_us"]["request"]["p50"]} us, errors 0')
PY
    done
    capture_check
    check_syn_mss
    echo "test-http-peer($LABEL): PASS (short and keep-alive connections to nginx, 0 errors, cores $CORES)"
}

mode_wrk() {
    need wrk
    start_server
    for hdr in "Connection: keep-alive" "Connection: close"; do
        CAP_COUNT=60000 capture_start "wrk-${hdr#Connection: }"
        ip netns exec "$NS" wrk -t1 -c50 -d10s --timeout 5s -H "$hdr" "http://$SLUICE_HOST/" \
            >"$WORK/wrk.out" 2>&1 || fail "wrk ($hdr) failed: $(cat "$WORK/wrk.out")"
        cat "$WORK/wrk.out"
        grep -q "Socket errors" "$WORK/wrk.out" && fail "wrk ($hdr): socket errors"
        grep -q "Non-2xx" "$WORK/wrk.out" && fail "wrk ($hdr): non-2xx responses"
        n=$(awk '/requests in/ {print $1}' "$WORK/wrk.out")
        [ "${n:-0}" -gt 1000 ] || fail "wrk ($hdr): only ${n:-0} requests"
        echo "wrk ($hdr): $n requests, 0 socket errors, 0 non-2xx"
        capture_check
    done
    # wrk ends a run by closing its sockets, a response often still in
    # flight: Linux answers that with RST (at most one per connection per run).
    stop_server 100
    echo "test-http-peer($LABEL): PASS (keep-alive and Connection: close, 50 connections, 10 s each)"
}

mode_ab() {
    need ab apache2-utils
    CAP_COUNT=100000 capture_start ab
    start_server
    ip netns exec "$NS" ab -q -n 10000 -c 50 -s 10 "http://$SLUICE_HOST/" >"$WORK/ab.out" 2>&1 \
        || fail "ab failed: $(cat "$WORK/ab.out")"
    grep -E "Complete requests|Failed requests|Non-2xx|Requests per second" "$WORK/ab.out"
    grep -qE "^Complete requests: +10000$" "$WORK/ab.out" || fail "ab: not 10000 complete"
    grep -qE "^Failed requests: +0$" "$WORK/ab.out" || fail "ab: failed requests"
    grep -q "Non-2xx" "$WORK/ab.out" && fail "ab: non-2xx responses"
    capture_check
    stop_server
    echo "test-http-peer($LABEL): PASS (10000 requests, -c 50, 0 failed, 0 non-2xx)"
}

mode_echo() {
    CAP_COUNT=200000 capture_start echo
    link_drops_before=$(link_drops)
    start_server
    ip netns exec "$NS" python3 - "$SLUICE_IP" <<'PY' || fail "echo transfer"
import random, socket, sys, threading
host = sys.argv[1]
N = 10 * 1024 * 1024
data = random.Random(7).randbytes(N)

def transfer(half_close_first):
    s = socket.create_connection((host, 7), timeout=20)
    def writer():
        s.sendall(data)
        if half_close_first:
            s.shutdown(socket.SHUT_WR)  # FIN while most of the echo is still owed
    w = threading.Thread(target=writer)
    w.start()
    got = bytearray()
    while True:
        b = s.recv(1 << 16)
        if not b:
            break  # the server's FIN
        got += b
        if not half_close_first and len(got) == N:
            w.join()
            s.shutdown(socket.SHUT_WR)
    w.join()
    s.close()
    assert len(got) == N, f"got {len(got)} of {N} bytes back"
    assert got == data, "echoed bytes differ"
    return "half-close first" if half_close_first else "full duplex"

for hc in (False, True):
    print(f"echo: 10 MB back byte-exact ({transfer(hc)})")
PY
    echo "link drops (veth tx, peer rx, backlog): before $link_drops_before, after $(link_drops)"
    # The server's counters first: its retransmits explain a failed capture.
    stop_server
    capture_check
    echo "test-http-peer($LABEL): PASS (10 MB byte-exact, and with the client half-closing first)"
}

case "$MODE" in
server)
    if [ "$IP_LAYER" = ipv6 ]; then
        # server6: each part with its own server run and captures.
        LABEL="$NAME ping" ping6_and_neighbour
        LABEL="$NAME curl" mode_server
        LABEL="$NAME wrk" mode_wrk
        LABEL="$NAME ab" mode_ab
        echo "test-http-peer($NAME): PASS (over IPv6: ping -6 and neighbour, curl, wrk, ab)"
    else
        LABEL=$NAME mode_server
    fi
    ;;
client) LABEL=$NAME mode_client ;;
wrk) LABEL=$NAME mode_wrk ;;
ab) LABEL=$NAME mode_ab ;;
echo) LABEL=$NAME mode_echo ;;
requests)
    # Requests as written and responses as nginx frames them. nginx gzips
    # text (so its responses are chunked), logs what each request carried,
    # and closes a connection every 2nd request (Connection: close).
    command -v nginx >/dev/null || { echo "test-http-peer: needs nginx (nginx-light)" >&2; exit 77; }
    start_nginx "log_format probe '\$request_method \$uri \$status \$request_length \"\$http_x_sluice_test\" \$content_length';
    access_log $WORK/logs/access.log probe;
    gzip on; gzip_min_length 0; gzip_types text/plain;
    keepalive_requests 2;
    default_type text/plain;
    server {
        listen $KERNEL_IP:80;
        location = /gz { return 200 \"hello from the kernel, gzipped and chunked\\n\"; }
        location = /put { return 200 \"put\\n\"; }
        location / { return 404; }
    }"
    CAP_COUNT=50000 capture_start requests
    # 1. Two paths in turn (one missing), gzip asked for, a custom header;
    #    keep-alive (nginx closes every 2nd). Not --quiet: the progress goes
    #    to a file, one plain line a second. Exit 1: the 404s are not clean.
    rc=0
    "$SLUICE" client --vdev "$VDEV" --ip 10.78.0.3 "http://$KERNEL_IP/gz" /missing \
        -H 'Accept-Encoding: gzip' -H 'X-Sluice-Test: turn' --keep-alive -c 8 -d 3 --warmup 0.5 \
        --json "$WORK/client.json" >"$WORK/out" 2>"$WORK/log" || rc=$?
    [ "$rc" = 1 ] || fail "sluice client with 404s exited $rc, not 1: $(cat "$WORK/out")"
    python3 - "$WORK/client.json" "$WORK/log" <<'PY' || fail "client result (in turn)"
import json, sys
r = json.load(open(sys.argv[1]))
s, e = r["status"], r["errors"]
assert sorted(s) == ["2xx", "3xx", "4xx", "5xx", "other"], s
assert s["2xx"] > 50 and s["4xx"] > 50, s
# Taken in turn over 8 connections: as many of each, give or take the last ones.
assert abs(s["2xx"] - s["4xx"]) <= 8, s
assert s["3xx"] == s["5xx"] == s["other"] == 0, s
assert r["responses"] == sum(s.values()) and r["responses"] == r["requests"], r
assert e["non_2xx"] == s["4xx"], e
assert {k: v for k, v in e.items() if v and k != "non_2xx"} == {}, e
assert r["response_body_bytes"] > 0 and r["body_bytes"] is None, r
log = open(sys.argv[2]).read()
lines = [l for l in log.splitlines() if l.startswith("[")]
assert len(lines) >= 2, f"progress lines in a file: {log!r}"
assert "\x1b" not in log and "\r" not in log, f"control codes in {log!r}"
print(f'client in turn: {r["responses"]} responses, status {s}, {r["response_body_bytes"]} body bytes, '
      f'{len(lines)} progress lines, plain')
PY
    # 2. A method, a body and a header as given.
    "$SLUICE" client --vdev "$VDEV" --ip 10.78.0.4 "http://$KERNEL_IP/put" --method PUT \
        --body 'twelve bytes' -H 'X-Sluice-Test: put' -c 4 -d 2 --warmup 0.5 --quiet \
        --json "$WORK/client.json" >"$WORK/out" 2>"$WORK/log" \
        || fail "sluice client --method PUT reported errors: $(cat "$WORK/out")"
    check_client_json "PUT with a body"
    # 3. HEAD: nginx's head says what a GET would get; no body comes.
    "$SLUICE" client --vdev "$VDEV" --ip 10.78.0.5 "http://$KERNEL_IP/gz" --method HEAD \
        -H 'X-Sluice-Test: head' -c 4 -d 2 --warmup 0.5 --quiet \
        --json "$WORK/client.json" >"$WORK/out" 2>"$WORK/log" \
        || fail "sluice client --method HEAD reported errors: $(cat "$WORK/out")"
    check_client_json "HEAD"
    python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); assert r["response_body_bytes"] == 0, r' \
        "$WORK/client.json" || fail "HEAD responses had body bytes"
    capture_check
    # What nginx saw: each request's method, header and body as given.
    python3 - "$WORK/logs/access.log" <<'PY' || fail "nginx's access log"
import collections, sys
seen = collections.Counter()
for line in open(sys.argv[1]):
    method, uri, status, length, header, body = line.split()
    seen[(method, uri, status, header, body)] += 1
    if method == "PUT":
        assert body == "12" and int(length) > 12, line
want = {("GET", "/gz", "200", '"turn"', "-"), ("GET", "/missing", "404", '"turn"', "-"),
        ("PUT", "/put", "200", '"put"', "12"), ("HEAD", "/gz", "200", '"head"', "-")}
assert set(seen) == want, dict(seen)
print("nginx access log: " + ", ".join(f"{m} {u} {st} x-sluice-test={h} body={b}: {n}"
                                      for (m, u, st, h, b), n in sorted(seen.items())))
PY
    chunked=$(tshark -r "$CAP_FILE" -Y 'http.transfer_encoding == "chunked"' -T fields -e frame.number 2>/dev/null | wc -l)
    [ "$chunked" -gt 50 ] || fail "only $chunked chunked responses in the capture (gzip off?)"
    closes=$(tshark -r "$CAP_FILE" -Y 'http.connection == "close"' -T fields -e frame.number 2>/dev/null | wc -l)
    [ "$closes" -gt 10 ] || fail "only $closes Connection: close responses in the capture"
    echo "capture: $chunked chunked responses, $closes with Connection: close"
    echo "test-http-peer(requests): PASS (headers, method, body, URLs in turn; chunked, 404, HEAD, Connection: close counted)"
    ;;
kclient)
    # Kernel mode as the client: the same generator over Linux sockets.
    CAP_COUNT=60000 capture_start kclient
    start_server
    for args in "-c 16" "-c 16 --keep-alive"; do
        # shellcheck disable=SC2086
        ip netns exec "$NS" "$SLUICE" client --kernel "http://$SLUICE_IP/" -d 3 --warmup 0.5 $args \
            --quiet --json "$WORK/client.json" >"$WORK/kout" 2>&1 \
            || fail "sluice client --kernel ($args) reported errors: $(cat "$WORK/kout")"
        check_client_json "$args"
    done
    capture_check
    stop_server
    echo "test-http-peer(kclient): PASS (sluice client --kernel -> sluice server, short and keep-alive, 0 errors)"
    ;;
kserver)
    # Kernel mode as the server, in the namespace; sluice's DPDK client loads it.
    ip netns exec "$NS" "$SLUICE" server --kernel --ip "$KERNEL_IP" --listen 80:http --body 1234 \
        --duration 60 --json "$WORK/kserver.json" --quiet >"$WORK/out" 2>"$WORK/log" &
    PID=$!
    wait_ready
    CAP_COUNT=60000 capture_start kserver
    src=2
    for args in "-c 16" "-c 16 --keep-alive"; do
        src=$((src + 1))
        # shellcheck disable=SC2086
        "$SLUICE" client --vdev "$VDEV" --ip "10.78.0.$src" "http://$KERNEL_IP/" -d 3 --warmup 0.5 \
            $args --quiet --json "$WORK/client.json" >"$WORK/cout" 2>"$WORK/clog" \
            || fail "sluice client ($args) reported errors: $(cat "$WORK/cout" "$WORK/clog")"
        check_client_json "$args"
    done
    capture_check
    kill -TERM "$PID"
    wait "$PID" || fail "sluice server --kernel exited with an error"
    PID=""
    python3 - "$WORK/kserver.json" <<'PY' || fail "kernel server counters"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["accepted"] > 100 and r["responses"] > r["accepted"], r
bad = {k: v for k, v in r["closes"].items() if k != "normal" and v}
assert not bad, bad
print(f'server --kernel: accepted {r["accepted"]}, responses {r["responses"]}, closes normal {r["closes"]["normal"]}')
PY
    echo "test-http-peer(kserver): PASS (sluice client -> sluice server --kernel, short and keep-alive, 0 errors)"
    ;;
split)
    # Two machines in one: a second veth into the namespace, both bridged
    # with the kernel's address, each carrying one sluice client.
    command -v nginx >/dev/null || { echo "test-http-peer: needs nginx (nginx-light)" >&2; exit 77; }
    HOST_IF2="${TAG}h2"
    PEER_IF2="${TAG}p2"
    BR="${TAG}br"
    trap 'ip link del "$HOST_IF2" 2>/dev/null || true; netns_cleanup' EXIT
    ip link add "$HOST_IF2" type veth peer name "$PEER_IF2"
    ip link set "$PEER_IF2" netns "$NS"
    sysctl -qw "net.ipv6.conf.$HOST_IF2.disable_ipv6=1" || true
    ip link set "$HOST_IF2" up
    ethtool -K "$HOST_IF2" tx off >/dev/null 2>&1 || true
    ip -n "$NS" link add "$BR" type bridge
    ip -n "$NS" addr flush dev "$PEER_IF"
    ip -n "$NS" link set "$PEER_IF" master "$BR"
    ip -n "$NS" link set "$PEER_IF2" master "$BR"
    ip -n "$NS" link set "$PEER_IF2" up
    ip -n "$NS" addr add "$KERNEL_IP/24" dev "$BR"
    ip -n "$NS" link set "$BR" up
    ip netns exec "$NS" ethtool -K "$BR" tx off >/dev/null 2>&1 || true
    ip netns exec "$NS" ethtool -K "$PEER_IF2" tx off >/dev/null
    start_nginx "log_format src '\$remote_addr \$remote_port';
    access_log $WORK/access.log src;
    server { listen $KERNEL_IP:80; location / { return 200 \"hello from the kernel\"; } }"
    # The same command on both "machines" but for --split K/N (and the port).
    "$SLUICE" client --vdev "net_af_packet0,iface=$HOST_IF" --ip 10.78.0.64/29 --split 1/2 \
        "http://$KERNEL_IP/" -c 16 -d 3 --warmup 0.5 --cores 0 --quiet \
        --hlog "$WORK/1.hlog" --json "$WORK/1.json" >"$WORK/out1" 2>"$WORK/log1" &
    CPID1=$!
    "$SLUICE" client --vdev "net_af_packet0,iface=$HOST_IF2" --ip 10.78.0.64/29 --split 2/2 \
        "http://$KERNEL_IP/" -c 16 -d 3 --warmup 0.5 --cores 1 --quiet \
        --hlog "$WORK/2.hlog" --json "$WORK/2.json" >"$WORK/out2" 2>"$WORK/log2" &
    CPID2=$!
    wait "$CPID1" || fail "client --split 1/2 failed: $(cat "$WORK/out1" "$WORK/log1")"
    wait "$CPID2" || fail "client --split 2/2 failed: $(cat "$WORK/out2" "$WORK/log2")"
    kill "$(cat "$WORK/nginx.pid")" && sleep 0.3
    "$SLUICE" merge "$WORK/1.hlog" "$WORK/2.hlog" --json "$WORK/merged.json" >/dev/null \
        || fail "sluice merge"
    python3 - "$WORK" <<'PY' || fail "split totals"
import ipaddress, json, sys
w = sys.argv[1]
a, b = (json.load(open(f"{w}/{k}.json")) for k in (1, 2))
m = json.load(open(f"{w}/merged.json"))
for r, k in ((a, "1/2"), (b, "2/2")):
    assert r["split"] == k and r["connections"] == 8, (k, r["split"], r["connections"])
    assert r["errors_total"] == 0 and r["responses"] > 50, r
for h in ("connect", "first_byte", "request"):
    want = a["latency_us"][h]["count"] + b["latency_us"][h]["count"]
    assert m["latency_us"][h]["count"] == want, (h, m["latency_us"][h]["count"], want)
# nginx saw every request of both, from the two disjoint halves of 10.78.0.64/29.
seen = [l.split() for l in open(f"{w}/access.log")]
assert len(seen) == a["responses"] + b["responses"], (len(seen), a["responses"], b["responses"])
base = int(ipaddress.ip_address("10.78.0.64"))
addrs = {int(ipaddress.ip_address(s[0])) - base for s in seen}
assert addrs <= set(range(8)), addrs
assert addrs & set(range(4)) and addrs & set(range(4, 8)), addrs
print(f"split: {a['responses']} + {b['responses']} responses; merged request count "
      f"{m['latency_us']['request']['count']} = {a['latency_us']['request']['count']} + "
      f"{b['latency_us']['request']['count']}; nginx logged {len(seen)} from sources .64+{sorted(addrs)}")
PY
    echo "test-http-peer(split): PASS (two clients, --split 1/2 and 2/2, disjoint sources, merged totals = the sum)"
    ;;
*) echo "usage: $0 server|server2|client|client2|requests|wrk|ab|kclient|kserver|echo|split|server6|client6|echo6" >&2; exit 2 ;;
esac
