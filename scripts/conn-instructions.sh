#!/usr/bin/env bash
# Instructions per TCP connection through two engines (bench/conn_cost.rs),
# counted by valgrind's callgrind: repeatable whatever else the machine does.
# Runs N and 2N connections and takes the difference, so start-up costs cancel.
#   scripts/conn-instructions.sh [N]   (default 2000; needs valgrind)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-2000}
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }
cargo build --release --no-default-features --bench conn_cost --target-dir target/no-dpdk 2>/dev/null
BIN=$(ls -t target/no-dpdk/release/deps/conn_cost-* | grep -v '\.d$' | head -1)
count() {
    local out; out=$(mktemp)
    SLUICE_CONNS=$1 valgrind --tool=callgrind --callgrind-out-file="$out" "$BIN" >/dev/null 2>&1
    local ir; ir=$(grep -m1 '^summary:' "$out" | awk '{print $2}')
    rm -f "$out"
    echo "$ir"
}
A=$(count "$N")
B=$(count $((2 * N)))
echo "instructions: $N connections: $A, $((2 * N)) connections: $B"
echo "instructions per connection: $(( (B - A) / N ))"
