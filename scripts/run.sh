#!/usr/bin/env bash
# The main job: set up, build, and run sluice's embedded default over DPDK
# virtual devices (no NIC, no hugepages needed). NEEDS ROOT (packages, EAL).
#
# Today that is `sluice smoke`: two DPDK ports in one process over a memif
# pair, a million frames each way, every one checked. (`sluice bench`, TCP
# connections with latency histograms, takes its place with the endpoint.)
# Extra arguments go to sluice, e.g. scripts/run.sh --link ring --json -
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
    echo "run.sh: needs root (installs packages, runs DPDK): sudo scripts/run.sh" >&2
    exit 1
fi
scripts/setup.sh
cargo build --release
exec target/release/sluice smoke "$@"
