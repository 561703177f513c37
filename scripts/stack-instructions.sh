#!/usr/bin/env bash
# Whole-stack instructions per connection, both sides: the server and load
# generator shards of `sluice bench` over a real DPDK memif pair, polled in
# turn on one thread (bench/stack_cost.rs), counted by valgrind's callgrind —
# the same count whatever else the machine is doing. Only the measured loop is
# counted (after a warm-up); the figure is its instructions divided by what it
# completed.
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
# requests. Prints a per-component table for each, then, as its last line,
# `instructions per connection: N`. --quick: fewer connections (a smoke run,
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
    -h | --help) sed -n '2,23p' "$0"; exit 0 ;;
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
trap 'rm -rf "$WORK"' EXIT

run() { # mode
    local mode=$1
    if ! SLUICE_MODE=$mode SLUICE_WARMUP=$WARMUP SLUICE_COUNT=$COUNT \
        valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*measured_loop*' \
        --callgrind-out-file="$WORK/$mode.cg" "$BIN" >"$WORK/$mode.out" 2>"$WORK/$mode.err"; then
        echo "stack-instructions.sh: the $mode run failed:" >&2
        cat "$WORK/$mode.out" "$WORK/$mode.err" >&2
        exit 1
    fi
    callgrind_annotate --inclusive=no --auto=no --threshold=100 "$WORK/$mode.cg" >"$WORK/$mode.ann"
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
    ("src/timer/", "timer wheel"),
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
    (r"sluice::timer::", "timer wheel"),
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

def load(mode):
    out = open(f"{work}/{mode}.out").read()
    vals = dict(re.findall(r"^([a-z ]+): (\d+)$", out, re.M))
    total = None
    groups = {}
    for line in open(f"{work}/{mode}.ann"):
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
    rows = sorted(groups.items(), key=lambda kv: -kv[1])
    lines = [f"| {title}: component (both sides) | instructions per {unit} |", "|---|---:|"]
    for name, ir in rows:
        lines.append(f"| {name} | {round(ir / n):,} |")
    lines.append(f"| **total** | **{round(total / n):,}** |")
    return lines

cps_vals, cps_total, cps_groups = load("cps")
ka_vals, ka_total, ka_groups = load("keepalive")
conns = int(cps_vals["measured connections"])
reqs = int(ka_vals["measured requests"])
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
out += table("short connections", "connection", conns, cps_total, cps_groups)
out.append("")
out.append(f"Keep-alive: {reqs:,} requests measured (64 connections).")
out.append("")
out += table("keep-alive", "request", reqs, ka_total, ka_groups)
out.append("")
text = "\n".join(out)
print(text)
if md:
    open(md, "w").write(text + "\n")
print(f"instructions per keep-alive request: {round(ka_total / reqs)}")
print(f"instructions per connection: {round(cps_total / conns)}")
EOF
