#!/usr/bin/env bash
# sluice against the Linux kernel, in one run, on the same cores, and
# bench/RESULTS.md written from what was measured (never edit it by hand).
#
#   (a) sluice bench over memif: 1 client core + 1 server core, short HTTP
#       connections (CPS) and keep-alive requests (RPS);
#   (b) the kernel doing the same work: wrk -> nginx over loopback, wrk pinned
#       to the client core and nginx's one worker to the server core,
#       -H "Connection: close" for CPS;
#   (c) sluice's kernel mode: the same sluice applications and accounting
#       over Linux sockets (sluice client --kernel -> sluice server --kernel,
#       loopback, same cores), so the latency histograms compare like for like;
#   (d) (a) again over IPv6 (sluice bench --family 6), beside the IPv4 figures.
#
# Needs root (DPDK, nginx on a port, apt for wrk/nginx-light if missing).
#   bench/vs-kernel.sh                      # 10 s per measurement
#   DURATION=5 CONNS=64 bench/vs-kernel.sh   # concurrency, the same for both
#   CLIENT_CORE=0 SERVER_CORE=1 bench/vs-kernel.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
CONNS=${CONNS:-128}
CLIENT_CORE=${CLIENT_CORE:-0}
SERVER_CORE=${SERVER_CORE:-1}
BODY=${BODY:-100}
PORT=${PORT:-18080}
OUT=${OUT:-bench/RESULTS.md}

if [ "$(id -u)" -ne 0 ]; then
    echo "bench/vs-kernel.sh: run as root (DPDK and nginx need it)" >&2
    exit 2
fi
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || need+=(nginx-light)
command -v python3 >/dev/null || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
if ! pkg-config --exists libdpdk 2>/dev/null; then
    scripts/setup.sh
fi

echo "== building sluice (release)"
cargo build --release --quiet
SLUICE=target/release/sluice
work=$(mktemp -d /tmp/sluice-vs-kernel.XXXXXX)
cleanup() {
    [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# ---- the kernel: nginx (one worker on the server core) and wrk (client core)
body=$(python3 -c "print('x' * $BODY, end='')")
mask=$(python3 -c "print(bin(1 << $SERVER_CORE)[2:])")
mkdir -p "$work/logs"
cat > "$work/nginx.conf" <<EOF
worker_processes 1;
worker_cpu_affinity $mask;
daemon on;
pid $work/nginx.pid;
error_log $work/logs/error.log crit;
events { worker_connections 65536; }
http {
    access_log off;
    keepalive_requests 100000000;
    client_body_temp_path $work; proxy_temp_path $work; fastcgi_temp_path $work;
    uwsgi_temp_path $work; scgi_temp_path $work;
    server {
        listen 127.0.0.1:$PORT backlog=65535;
        location / { return 200 "$body"; }
    }
}
EOF
nginx -c "$work/nginx.conf" -p "$work"
sleep 0.5
got=$(curl -s "http://127.0.0.1:$PORT/" 2>/dev/null | wc -c || true)
if [ "${got:-0}" != "$BODY" ] && command -v curl >/dev/null; then
    echo "nginx did not answer with the $BODY-byte body (got $got bytes)" >&2
    exit 1
fi

wrk_run() { # $1 = label, rest = extra wrk args
    local label=$1; shift
    echo "== kernel $label: wrk -t1 -c$CONNS -d${DURATION}s $* (core $CLIENT_CORE) -> nginx (core $SERVER_CORE)" >&2
    taskset -c "$CLIENT_CORE" wrk -t1 -c"$CONNS" -d"${DURATION}s" "$@" "http://127.0.0.1:$PORT/" > "$work/wrk-$label.txt"
    cat "$work/wrk-$label.txt" >&2
    python3 - "$work/wrk-$label.txt" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
err = 0
m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", t)
if m:
    err += sum(int(x) for x in m.groups())
m = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
if m:
    err += int(m.group(1))
print(f"{rps:.0f} {err}")
PY
}
read -r k_cps k_cps_err < <(wrk_run cps -H "Connection: close")
read -r k_rps k_rps_err < <(wrk_run rps)
kill "$(cat "$work/nginx.pid")"
rm -f "$work/nginx.pid"
sleep 0.5

# ---- sluice: the same work over memif
sluice_run() { # $1 = label, rest = extra sluice args
    local label=$1; shift
    echo "== sluice $label: sluice bench -c $CONNS --duration $DURATION $* (client core $CLIENT_CORE, server core $SERVER_CORE)" >&2
    "$SLUICE" bench --quiet -c "$CONNS" --duration "$DURATION" --body "$BODY" \
        --client-core "$CLIENT_CORE" --server-core "$SERVER_CORE" \
        --json "$work/sluice-$label.json" "$@" >&2 || true
    python3 - "$work/sluice-$label.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
lat = r["latency_us"]
print(f'{r["cps"]:.0f} {r["rps"]:.0f} {r["errors_total"]} {r["retransmits"]} '
      f'{r["connections_completed"]} {r["time_wait"]["entered"]} {r["time_wait"]["held_at_end"]} '
      f'{r["time_wait"]["expired"]} {r["time_wait"]["duration_s"]} '
      f'{lat["connect"]["p50"]} {lat["connect"]["p99"]} {lat["request"]["p50"]} {lat["request"]["p99"]} '
      f'{r["measured_s"]}')
PY
}
read -r s_cps _ s_cps_err s_cps_retx s_done s_tw_in s_tw_held s_tw_exp s_2msl s_c50 s_c99 s_r50 s_r99 s_secs < <(sluice_run cps)
read -r _ s_rps s_rps_err s_rps_retx _ _ _ _ _ _ _ s_kr50 s_kr99 _ < <(sluice_run rps --keep-alive)
# The same two runs over IPv6 (issue 14: the IPv6 figure beside the IPv4 one).
read -r s6_cps _ s6_cps_err s6_cps_retx _ _ _ _ _ s6_c50 s6_c99 s6_r50 s6_r99 _ < <(sluice_run cps6 --family 6)
read -r _ s6_rps s6_rps_err s6_rps_retx _ _ _ _ _ _ _ s6_kr50 s6_kr99 _ < <(sluice_run rps6 --family 6 --keep-alive)

# ---- sluice --kernel: the same applications over Linux sockets, loopback
kernel_run() { # $1 = label, rest = extra client args
    local label=$1; shift
    echo "== sluice --kernel $label: client core $CLIENT_CORE -> server core $SERVER_CORE $*" >&2
    "$SLUICE" server --kernel --ip 127.0.0.1 --listen "$PORT:http" --body "$BODY" \
        --cores "$SERVER_CORE" --quiet --duration $((DURATION + 15)) >/dev/null 2>"$work/kserver.log" &
    local spid=$!
    for _ in $(seq 1 100); do grep -q "ready on" "$work/kserver.log" && break; sleep 0.05; done
    "$SLUICE" client --kernel "http://127.0.0.1:$PORT/" --cores "$CLIENT_CORE" -c "$CONNS" \
        --duration "$DURATION" --quiet --json "$work/kernel-$label.json" "$@" >&2 || true
    kill -TERM "$spid" 2>/dev/null || true
    wait "$spid" 2>/dev/null || true
    python3 - "$work/kernel-$label.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
lat = r["latency_us"]
print(f'{r["cps"]:.0f} {r["rps"]:.0f} {r["errors_total"]} '
      f'{lat["connect"]["p50"]} {lat["connect"]["p99"]} {lat["request"]["p50"]} {lat["request"]["p99"]}')
PY
}
read -r m_cps _ m_cps_err m_c50 m_c99 m_r50 m_r99 < <(kernel_run cps)
read -r _ m_rps m_rps_err _ _ m_kr50 m_kr99 < <(kernel_run rps --keep-alive)

instr="(valgrind not installed)"
stack="(valgrind not installed: no whole-stack count)"
stack6="(valgrind not installed)"
if command -v valgrind >/dev/null; then
    instr=$(scripts/conn-instructions.sh 2>/dev/null | sed -n 's/^instructions per connection: //p')
    echo "== whole-stack instructions (scripts/stack-instructions.sh)"
    if scripts/stack-instructions.sh --markdown "$work/stack.md" >"$work/stack.out" 2>&1; then
        stack=$(cat "$work/stack.md")
    else
        stack="(scripts/stack-instructions.sh failed: see its output)"
        tail -5 "$work/stack.out" >&2
    fi
    stack6="(SLUICE_FAMILY=6 scripts/stack-instructions.sh failed: see its output)"
    if SLUICE_FAMILY=6 scripts/stack-instructions.sh >"$work/stack6.out" 2>&1; then
        stack6=$(sed -n 's/^instructions per \(connection\|keep-alive request\): \(.*\)$/\2/p' "$work/stack6.out" |
            python3 -c "import sys; v = sys.stdin.read().split(); print(f'{int(v[1]):,} instructions per connection, {int(v[0]):,} per keep-alive request' if len(v) == 2 else '(no figures)')")
    else
        tail -5 "$work/stack6.out" >&2
    fi
fi

# Before and after: the previous run's figures, read from the file this
# script wrote then (its commit and totals), beside this run's.
history="(no previous run of this script to compare with)"
if [ -f "$OUT" ] && [ -f "$work/stack.md" ]; then
    history=$(python3 - "$OUT" "$work/stack.md" <<'PY'
import re, sys
old, new = open(sys.argv[1]).read(), open(sys.argv[2]).read()
def totals(t):
    return [int(x.replace(",", "")) for x in re.findall(r"\*\*total\*\* \| \*\*([0-9,]+)\*\*", t)]
commit = re.search(r"commit `([0-9a-f]+)`", old)
o, n = totals(old), totals(new)
if commit and len(o) >= 2 and len(n) >= 2:
    print(f"Previous run of this script (commit `{commit.group(1)}`): {o[0]:,} instructions per "
          f"connection and {o[1]:,} per keep-alive request; this run: {n[0]:,} and {n[1]:,} "
          f"({n[0] / o[0] - 1:+.1%} and {n[1] / o[1] - 1:+.1%}).")
else:
    print("(the previous results file has no instruction totals to compare with)")
PY
)
fi

ratio() { python3 -c "print(f'{$1 / max($2, 1):.1f}')"; }
cps_ratio=$(ratio "$s_cps" "$k_cps")
rps_ratio=$(ratio "$s_rps" "$k_rps")
cps6_ratio=$(python3 -c "print(f'{$s6_cps / max($s_cps, 1):.2f}')")
rps6_ratio=$(python3 -c "print(f'{$s6_rps / max($s_rps, 1):.2f}')")
target=$(python3 -c "print('met' if $s_cps >= 20 * $k_cps and $s_cps_err == 0 else 'NOT met')")

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
# bench/scale.sh's section (between its markers) is kept as it was.
scale_section=""
if [ -f "$OUT" ]; then
    scale_section=$(sed -n '/^<!-- bench\/scale.sh: begin -->$/,/^<!-- bench\/scale.sh: end -->$/p' "$OUT")
fi
cat > "$OUT" <<EOF
# sluice vs the Linux kernel

Generated by \`bench/vs-kernel.sh\` on $(date -u +%Y-%m-%dT%H:%MZ), commit \`$commit\`.
Do not edit: rerun the script.

Machine: $(nproc) cores ($cpu), $(uname -r). Client on core $CLIENT_CORE, server on core $SERVER_CORE,
$CONNS concurrent connections, $BODY-byte HTTP bodies, ${DURATION} s per measurement.

| test | Linux kernel (wrk -> nginx, loopback) | sluice --kernel (loopback) | sluice (memif) | sluice / kernel (wrk -> nginx) |
|---|---:|---:|---:|---:|
| connections/s, one request each (\`Connection: close\`) | $k_cps | $m_cps | $s_cps | **${cps_ratio}x** |
| requests/s, keep-alive | $k_rps | $m_rps | $s_rps | ${rps_ratio}x |
| errors (CPS run / RPS run) | $k_cps_err / $k_rps_err | $m_cps_err / $m_rps_err | $s_cps_err / $s_rps_err | |

The middle column is sluice's own applications and load generator on Linux sockets
(\`--kernel\`): the same request accounting and histograms as the DPDK column, only the
TCP stack differs. Latency (µs), kernel mode: CPS run connect p50 $m_c50, p99 $m_c99;
request p50 $m_r50, p99 $m_r99; keep-alive request p50 $m_kr50, p99 $m_kr99.

sluice CPS run: $s_done connections completed, $s_cps_retx retransmits; TIME_WAIT held for the full
2MSL (${s_2msl} s): $s_tw_in connections entered it, $s_tw_held were still held at exit, $s_tw_exp expired early.
Latency (µs) in the CPS run: connect p50 $s_c50, p99 $s_c99; request p50 $s_r50, p99 $s_r99.
Keep-alive run: request p50 $s_kr50 µs, p99 $s_kr99 µs, $s_rps_retx retransmits.

## IPv6 beside IPv4 (sluice bench, same run, same cores)

| test | sluice over IPv4 | sluice over IPv6 (\`--family 6\`) | IPv6 / IPv4 |
|---|---:|---:|---:|
| connections/s, one request each | $s_cps | $s6_cps | ${cps6_ratio}x |
| requests/s, keep-alive | $s_rps | $s6_rps | ${rps6_ratio}x |
| errors (CPS run / RPS run) | $s_cps_err / $s_rps_err | $s6_cps_err / $s6_rps_err | |
| retransmits (CPS run / RPS run) | $s_cps_retx / $s_rps_retx | $s6_cps_retx / $s6_rps_retx | |

IPv6 latency (µs): CPS run connect p50 $s6_c50, p99 $s6_c99; request p50 $s6_r50, p99 $s6_r99;
keep-alive request p50 $s6_kr50, p99 $s6_kr99. Whole-stack instructions over IPv6
(\`SLUICE_FAMILY=6 scripts/stack-instructions.sh\`): $stack6.

## Instructions per connection (deterministic)

Whole stack, both sides (the server and load-generator shards of \`sluice bench\` over a
real memif pair, one thread, virtual clock; callgrind counts the measured loop and, for short
connections, the timer work each leaves for later: handshake entries, TIME_WAIT expiry), from
\`scripts/stack-instructions.sh\` (issue 11's figure; the same count on every run):

$stack

$history

Engine alone: $instr instructions per connection through two TCP engines (client and server:
handshake, 100-byte request and response, close, TIME_WAIT record), from \`scripts/conn-instructions.sh\`.

Target (issue 4): sluice CPS >= 20x the kernel's, with 0 errors and TIME_WAIT held for 2MSL: **$target**.

Commands:
- kernel: \`taskset -c $CLIENT_CORE wrk -t1 -c$CONNS -d${DURATION}s [-H "Connection: close"] http://127.0.0.1:$PORT/\`
  against nginx with one worker pinned to core $SERVER_CORE returning a fixed $BODY-byte body.
- sluice --kernel: \`sluice server --kernel --ip 127.0.0.1 --listen $PORT:http --cores $SERVER_CORE\` and
  \`sluice client --kernel http://127.0.0.1:$PORT/ --cores $CLIENT_CORE -c $CONNS --duration $DURATION [--keep-alive]\`.
- sluice: \`sluice bench -c $CONNS --duration $DURATION --body $BODY --client-core $CLIENT_CORE --server-core $SERVER_CORE [--keep-alive] [--family 6]\`.
EOF
if [ -n "$scale_section" ]; then
    printf '\n%s\n' "$scale_section" >>"$OUT"
fi
echo "== wrote $OUT"
cat "$OUT"
