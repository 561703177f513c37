#!/usr/bin/env bash
# Installs what sluice needs on Debian (12 "bookworm" or later), from Debian's
# packages. NEEDS ROOT (apt-get). Idempotent: installs only what is missing.
#
#   sudo scripts/setup.sh                 # packages
#   sudo scripts/setup.sh --hugepages 512 # and reserve 512 x 2 MB hugepages (optional:
#                                         # without them sluice runs EAL with --no-huge)
#
# Rust is not a Debian package new enough here: install stable Rust with rustup.
set -euo pipefail

HUGEPAGES=""
while [ $# -gt 0 ]; do
    case "$1" in
    --hugepages) HUGEPAGES=${2:?--hugepages needs a count}; shift 2 ;;
    -h | --help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

if [ "$(id -u)" != 0 ]; then
    echo "setup.sh: needs root to install packages: run 'sudo scripts/setup.sh'" >&2
    exit 1
fi

# libdpdk-dev: headers + pkg-config file; dpdk: the PMD plugins (memif, ring,
# af_packet, tap); dpdk-dev: dpdk-devbind.py, dpdk-testpmd; libclang-dev + clang:
# bindgen; libsystemd-dev: static linking; the rest: tests and captures, and
# the kernel peers of the interop tests and bench/ (curl, nginx, wrk, ab),
# tshark to check their captures; valgrind: instruction counts (bench/);
# python3-scapy: the wire-level suite (scripts/test-wire.sh).
PACKAGES=(
    libdpdk-dev dpdk dpdk-dev pkg-config libclang-dev clang libsystemd-dev gcc
    iproute2 ethtool iputils-ping tcpdump nftables python3 procps
    curl nginx-light wrk apache2-utils tshark valgrind python3-scapy
)

missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup.sh: installing ${missing[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
else
    echo "setup.sh: Debian packages present"
fi

if ! pkg-config --atleast-version=22.11 libdpdk; then
    echo "setup.sh: libdpdk >= 22.11 not found by pkg-config after install" >&2
    exit 1
fi

if ! command -v cargo >/dev/null; then
    echo "setup.sh: cargo not found: install stable Rust with rustup (https://rustup.rs)," \
        "then run this again" >&2
    exit 1
fi

if [ -n "$HUGEPAGES" ]; then
    echo "$HUGEPAGES" >/proc/sys/vm/nr_hugepages
    echo "setup.sh: hugepages: $(grep HugePages_Free /proc/meminfo)"
fi
echo "setup.sh: ready (DPDK $(pkg-config --modversion libdpdk), $(cargo --version))"
