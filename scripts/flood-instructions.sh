#!/usr/bin/env bash
# Instructions per flood SYN on each side of `sluice bench --syn-flood max`
# (issue 12): bench/flood_cost.rs under callgrind (the same count whatever
# else the machine is doing), the server's turns and the client's counted
# apart. Under a flood the server falls behind when a SYN costs it more than
# one costs the generator: its receive queue fills and every established
# connection's frames wait behind it.
#
#   scripts/flood-instructions.sh [--quick] [--syn-budget N|off]
#
# Needs DPDK (scripts/setup.sh) and valgrind.
set -euo pipefail
cd "$(dirname "$0")/.."

WARMUP=20000
COUNT=50000
BUDGET=""
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) WARMUP=2000; COUNT=10000; shift ;;
    --syn-budget) BUDGET=${2:?--syn-budget N|off}; shift 2 ;;
    -h | --help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "flood-instructions.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
command -v callgrind_annotate >/dev/null || {
    echo "flood-instructions.sh: needs valgrind (apt-get install -y valgrind)" >&2
    exit 1
}
cargo build --release --bench flood_cost >&2
BIN=$(ls -t target/release/deps/flood_cost-* | grep -v '\.d$' | head -1)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
env ${BUDGET:+SLUICE_SYN_BUDGET=$BUDGET} SLUICE_WARMUP=$WARMUP SLUICE_COUNT=$COUNT \
    valgrind --tool=callgrind --collect-atstart=no \
    --toggle-collect='*flood_server_turn*' --toggle-collect='*flood_client_turn*' \
    --callgrind-out-file="$WORK/cg" "$BIN" >"$WORK/out" 2>"$WORK/err" || {
    cat "$WORK/out" "$WORK/err" >&2
    exit 1
}
callgrind_annotate --inclusive=yes --auto=no "$WORK/cg" >"$WORK/ann" 2>/dev/null
cat "$WORK/out"
python3 - "$WORK" <<'PY'
import re, sys
work = sys.argv[1]
out = dict(re.findall(r"^([a-z ]+): (\S+)$", open(f"{work}/out").read(), re.M))
side = {}
for line in open(f"{work}/ann"):
    m = re.match(r"\s*([\d,]+) \([ \d.]+%\)\s+.*::(flood_(?:server|client)_turn)\b", line)
    if m and m.group(2) not in side:
        side[m.group(2)] = int(m.group(1).replace(",", ""))
rx = int(out["server frames received"])
sent = int(out["flood syns sent"])
print(f"server: instructions per SYN received: {side['flood_server_turn'] / rx:,.0f}")
print(f"client (the flood, its answers dropped, its own load): instructions per SYN sent: {side['flood_client_turn'] / sent:,.0f}")
PY
