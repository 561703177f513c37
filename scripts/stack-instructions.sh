#!/usr/bin/env bash
# Whole-stack instructions per connection, both sides: the server and load
# generator shards of `sluice bench` over a real DPDK memif pair, polled in
# turn on one thread (bench/stack_cost.rs), counted by valgrind's callgrind —
# the same count whatever else the machine is doing. Counted: the measured
# loop (after a warm-up), divided by what it completed; and, for short
# connections, the timer work each connection leaves for later, which that
# loop (a few ms of virtual time) ends before: its handshake timer entries
# (due at RTO.min, 200 ms) and the server's TIME_WAIT record (2MSL, 60 s).
# After the loop the connections in flight finish (not counted), then a
# deferred phase moves virtual time through the shards' timer deadlines, 1 ms
# at a time, running only each shard's timer processing (counted), and that
# work is divided by the TIME_WAIT records it ended (every connection's, the
# warm-up's too). A call there expires a millisecond's entries at once (a
# real shard runs its timers every turn, a few at a time): the count is each
# entry's own work, the per-call cost that a real shard pays in every turn
# being counted once a turn in the loop; the script prints a bound on the
# calls' fixed cost (calls times the cost of a call with nothing due).
# Keep-alive connections stay open through the run: no deferred phase there.
#
#   scripts/stack-instructions.sh [--quick] [--markdown FILE]
#
# The link is the memif pair `sluice bench` makes, both ends copying (memif's
# default; SLUICE_ZERO_COPY=1 in the environment: the client end zero-copy,
# fewer instructions but slower in wall-clock time on DPDK 22.11); the first
# line printed says which. SLUICE_FAMILY=6 in the environment: both shards
# over IPv6 (`sluice bench --family 6`), the IPv6 figure; IPv4 by default.
#
# Runs two exchanges: short connections (SYN / SYN-ACK / ACK+GET /
# response+FIN / FIN+ACK / ACK, the server closing first) and keep-alive
# requests. Prints a per-component table for each (for short connections, the
# exchange's and the deferred phase's parts summed), then, as its last line,
# `instructions per connection: N` (the exchange's part plus the deferred
# timer work's, both printed above it). --quick: fewer connections (a smoke run,
# not the figure). --markdown FILE: also writes the tables as Markdown.
# Needs DPDK (scripts/setup.sh) and valgrind; root only for what EAL needs
# (it runs with --no-huge, so no hugepages).
set -euo pipefail
cd "$(dirname "$0")/.."

WARMUP=20000
COUNT=50000
MD=""
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) WARMUP=2000; COUNT=5000; shift ;;
    --markdown) MD=${2:?--markdown needs a file}; shift 2 ;;
    -h | --help) sed -n '2,39p' "$0"; exit 0 ;;
    *) echo "stack-instructions.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
command -v valgrind >/dev/null || {
    echo "stack-instructions.sh: needs valgrind (apt-get install -y valgrind)" >&2
    exit 1
}
command -v callgrind_annotate >/dev/null || {
    echo "stack-instructions.sh: needs callgrind_annotate (part of valgrind)" >&2
    exit 1
}

cargo build --release --bench stack_cost >&2
BIN=$(ls -t target/release/deps/stack_cost-* | grep -v '\.d$' | head -1)
WORK=$(mktemp -d)
trap '[ -n "${SLUICE_KEEP_WORK:-}" ] && echo "kept $WORK" || rm -rf "$WORK"' EXIT

# Short connections: three profiles, dumped as the measured loop and the idle
# calls return: the exchange (.1), the calls with nothing due (.2), the
# deferred phase (the last, unnumbered). Keep-alive: the measured loop's alone.
# (The dump options take the functions' exact names: callgrind 3.19 made no
# dump for '*idle_timer_calls*'.)
run() { # mode
    local mode=$1
    local opts=(--toggle-collect='*measured_loop*')
    if [ "$mode" = cps ]; then
        opts+=(--toggle-collect='*idle_timer_calls*' --toggle-collect='*deferred_timer_turn*'
            --dump-after='stack_cost::measured_loop' --dump-after='stack_cost::idle_timer_calls')
    fi
    if ! SLUICE_MODE=$mode SLUICE_WARMUP=$WARMUP SLUICE_COUNT=$COUNT \
        valgrind --tool=callgrind --collect-atstart=no "${opts[@]}" \
        --callgrind-out-file="$WORK/$mode.cg" "$BIN" >"$WORK/$mode.out" 2>"$WORK/$mode.err"; then
        echo "stack-instructions.sh: the $mode run failed:" >&2
        cat "$WORK/$mode.out" "$WORK/$mode.err" >&2
        exit 1
    fi
    if [ "$mode" = cps ]; then
        mv "$WORK/$mode.cg" "$WORK/$mode.cg.3"
        for part in 1 2 3; do
            [ -f "$WORK/$mode.cg.$part" ] || {
                echo "stack-instructions.sh: no profile part $part of the cps run" >&2
                ls "$WORK" >&2
                exit 1
            }
            callgrind_annotate --inclusive=no --auto=no --threshold=100 "$WORK/$mode.cg.$part" \
                >"$WORK/$mode.$part.ann"
        done
    else
        callgrind_annotate --inclusive=no --auto=no --threshold=100 "$WORK/$mode.cg" >"$WORK/$mode.ann"
    fi
}
run cps
run keepalive

python3 - "$WORK" "$MD" <<'EOF'
import re, sys

work, md = sys.argv[1], sys.argv[2]

# Components, first match wins. By source file where the instruction's source
# is ours (inlined code keeps its file), else by the function and its object.
FILE_RULES = [
    ("src/wire/checksum.rs", "checksums (verify + compute)"),
    ("src/wire/", None),  # parse or emit, by function below
    ("src/tcp/isn.rs", "ISN and keyed hashes (SipHash)"),
    ("src/tcp/", "TCP engine"),
    ("src/app/http.rs", "HTTP framing"),
    ("src/app/", "applications (HTTP client, server)"),
    ("src/table/", "connection table"),
    ("src/timer/", "timers (wheel, handshake queue, TIME_WAIT expiry)"),
    ("src/shard/stack/timers.rs", "timers (wheel, handshake queue, TIME_WAIT expiry)"),
    ("src/stats/", "counters and histograms"),
    ("src/shard/nic.rs", "DPDK rx/tx, memif, mbufs"),
    ("src/dpdk/", "DPDK rx/tx, memif, mbufs"),
    ("src/shard/", "shard glue (poll, input, drive, transmit)"),
    ("bench/", "harness loop"),
]
FUNC_RULES = [
    (r"librte|^rte_|^sluice_|memif|dpdk", "DPDK rx/tx, memif, mbufs"),
    (r"malloc|free|calloc|realloc|_int_|__rust_alloc|__rust_dealloc|alloc::raw_vec", "malloc/free"),
    (r"memmove|memcpy|memset|memcmp|memchr", "memcpy/memset"),
    (r"hdrhistogram", "counters and histograms"),
    (r"sluice::wire::.*emit|write_headers", "header emit (Ethernet/IPv4/TCP)"),
    (r"sluice::wire::", "frame parse (Ethernet/IPv4/TCP + options)"),
    (r"sluice::tcp::isn|siphash|SipHasher", "ISN and keyed hashes (SipHash)"),
    (r"sluice::tcp::", "TCP engine"),
    (r"sluice::app::http|Framer", "HTTP framing"),
    (r"sluice::app::", "applications (HTTP client, server)"),
    (r"sluice::table::|hashbrown", "connection table"),
    (r"sluice::timer::", "timers (wheel, handshake queue, TIME_WAIT expiry)"),
    # The shard's timer processing, with what it inlines from std and
    # hashbrown (the handshake queue's pops, the TIME_WAIT index's removals).
    (r"sluice::shard::stack::timers::", "timers (wheel, handshake queue, TIME_WAIT expiry)"),
    (r"sluice::stats::", "counters and histograms"),
    (r"sluice::shard::", "shard glue (poll, input, drive, transmit)"),
    (r"stack_cost", "harness loop"),
]

def component(file, func):
    for prefix, name in FILE_RULES:
        if file.startswith(prefix):
            if name is None:
                return ("header emit (Ethernet/IPv4/TCP)" if "emit" in func
                        else "frame parse (Ethernet/IPv4/TCP + options)")
            return name
    for pat, name in FUNC_RULES:
        if re.search(pat, func):
            return name
    return "other"

def load(mode, ann=None):
    out = open(f"{work}/{mode}.out").read()
    vals = dict(re.findall(r"^([a-z ]+): (\d+)$", out, re.M))
    total = None
    groups = {}
    for line in open(f"{work}/{ann or mode}.ann"):
        m = re.match(r"\s*([\d,]+) \([ \d.]+%\)\s+(.*)$", line)
        if not m:
            continue
        ir = int(m.group(1).replace(",", ""))
        rest = m.group(2)
        if rest.startswith("PROGRAM TOTALS"):
            total = ir
            continue
        loc = re.sub(r" \[[^\]]*\]$", "", rest)
        obj = rest[len(loc):]
        file, _, func = loc.partition(":")
        name = component(file, func + obj)
        groups[name] = groups.get(name, 0) + ir
    if total is None:
        sys.exit(f"stack-instructions.sh: no totals in the {mode} profile")
    return vals, total, groups

def table(title, unit, n, total, groups):
    """`groups` in instructions per `n` (or already per unit if n is 1)."""
    rows = sorted(groups.items(), key=lambda kv: -kv[1])
    lines = [f"| {title}: component (both sides) | instructions per {unit} |", "|---|---:|"]
    for name, ir in rows:
        lines.append(f"| {name} | {round(ir / n):,} |")
    lines.append(f"| **total** | **{round(total / n):,}** |")
    return lines

cps_vals, cps_total, cps_groups = load("cps", "cps.1")
_, idle_total, _ = load("cps", "cps.2")
_, def_total, _ = load("cps", "cps.3")
ka_vals, ka_total, ka_groups = load("keepalive")
conns = int(cps_vals["measured connections"])
reqs = int(ka_vals["measured requests"])
def_conns = int(cps_vals["deferred connections"])
def_calls = int(cps_vals["deferred timer calls"])
idle_calls = int(cps_vals["deferred idle calls"])
if def_conns < conns:
    sys.exit(f"stack-instructions.sh: the deferred phase ended {def_conns} TIME_WAIT records, "
             f"fewer than the {conns} connections measured")
exch = round(cps_total / conns)
deferred = round(def_total / def_conns)
idle_call = idle_total / idle_calls
# Per connection, component by component: the exchange's part, and the
# deferred phase's as one row of its own. (Its profile part, dumped at exit,
# lists the phase's instructions under main and the loader's frames as well
# as under the functions that ran: summed by component they were counted
# several times over.)
per_conn = {}
for name, ir in cps_groups.items():
    per_conn[name] = per_conn.get(name, 0) + ir / conns
per_conn["timer work left for later (deferred phase)"] = def_total / def_conns
for v, what in ((cps_vals, "cps"), (ka_vals, "keepalive")):
    if int(v["errors"]) != 0:
        sys.exit(f"stack-instructions.sh: {what} run had errors")
pk = int(cps_vals["measured packets"]) / conns
link = re.search(r"^link: (.*)$", open(f"{work}/cps.out").read(), re.M)
fam = re.search(r"^family: (.*)$", open(f"{work}/cps.out").read(), re.M)
out = []
out.append(f"Link: {link.group(1) if link else 'memif'}; {fam.group(1) if fam else 'IPv4'}.")
out.append("")
out.append(f"Short connections: {conns:,} measured (after a warm-up), "
           f"{pk:.2f} packets per connection, {int(cps_vals['retransmits'])} retransmits.")
out.append("")
out += table("short connections", "connection", 1, exch + deferred, per_conn)
out.append("")
out.append(f"Of which deferred timer work: {def_calls:,} calls of the shards' timer processing "
           f"over {int(cps_vals['deferred virtual ms']):,} ms of virtual time, "
           f"{def_total:,} instructions for {def_conns:,} connections' timers "
           f"(handshake entries, TIME_WAIT records); a call with nothing due costs "
           f"{idle_call:.0f}, so calls' fixed cost is at most "
           f"{def_calls * idle_call / def_conns:.1f} of its {deferred:,} per connection.")
out.append("")
out.append(f"Keep-alive: {reqs:,} requests measured (64 connections, open "
           "throughout: no deferred phase).")
out.append("")
out += table("keep-alive", "request", reqs, ka_total, ka_groups)
out.append("")
text = "\n".join(out)
print(text)
if md:
    open(md, "w").write(text + "\n")
print(f"exchange instructions per connection: {exch}")
print(f"deferred timer work per connection: {deferred}")
print(f"instructions per keep-alive request: {round(ka_total / reqs)}")
print(f"instructions per connection: {exch + deferred}")
EOF
