#!/usr/bin/env bash
# The main job: set up, build, and run sluice's embedded default over DPDK
# virtual devices (no NIC, no hugepages needed). NEEDS ROOT (packages, EAL).
#
# That is `sluice bench`: an HTTP server shard and a load-generator shard in
# one process over a memif pair, 10 s of short connections, then the latency
# report. Extra arguments go to sluice bench, e.g.
#   scripts/run.sh --keep-alive --json result.json
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
    echo "run.sh: needs root (installs packages, runs DPDK): sudo scripts/run.sh" >&2
    exit 1
fi
scripts/setup.sh
cargo build --release
exec target/release/sluice bench "$@"
