#!/usr/bin/env bash
# Fuzzes for N seconds (default 300): TARGET parse_frame (the frame parser,
# IPv4 and IPv6, corpus seeded with the Linux captures' frames) or tcp_input (the TCP
# engine's segment input and commands, fuzz/fuzz_targets/tcp_input.rs).
#   scripts/fuzz.sh [seconds] [parse_frame|tcp_input]
# Needs cargo-fuzz (`cargo install cargo-fuzz`); runs on stable Rust through
# RUSTC_BOOTSTRAP=1, as cargo-fuzz needs nightly-only sanitizer flags.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-300}
TARGET=${2:-parse_frame}
CORPUS=fuzz/corpus/$TARGET
mkdir -p "$CORPUS"
[ "$TARGET" = parse_frame ] && python3 - "$CORPUS" <<'PY'
import struct, sys, pathlib
for name in ("linux", "linux6"):
    raw = pathlib.Path(f"tests/fixtures/{name}.pcap").read_bytes()
    at, i = 24, 0
    while at + 16 <= len(raw):
        incl = struct.unpack_from("<I", raw, at + 8)[0]
        pathlib.Path(sys.argv[1], f"{name}-{i:04}").write_bytes(raw[at + 16: at + 16 + incl])
        at += 16 + incl; i += 1
PY
cd fuzz
RUSTC_BOOTSTRAP=1 cargo fuzz run "$TARGET" "corpus/$TARGET" -- \
    -max_total_time="$SECS" -max_len=1600 -print_final_stats=1
