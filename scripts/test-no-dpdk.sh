#!/usr/bin/env bash
# The build without DPDK is a working kernel-mode server: builds the release
# binary as a machine with no DPDK would (pkg-config finds nothing, default
# features off), checks that a DPDK command says so in one line, then starts
# `sluice server --kernel` on loopback for a bounded time and checks what curl
# gets from it (status, body, a kept-alive second request), and that it stops
# cleanly on SIGTERM with its report.
#
#   scripts/test-no-dpdk.sh                  # build, then check
#   scripts/test-no-dpdk.sh path/to/sluice   # check a binary already built
#
# Needs no root and no DPDK; needs curl (else it is skipped: exit 77, and a
# line in $SLUICE_SKIP_LOG when test.sh gives one). Exit 0 = pass.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "test-no-dpdk: $*"; }
fail() { say "FAIL: $*" >&2; exit 1; }

if ! command -v curl >/dev/null; then
    say "skipped: needs curl (apt-get install curl)" >&2
    [ -n "${SLUICE_SKIP_LOG:-}" ] && echo "test-no-dpdk: needs curl" >>"$SLUICE_SKIP_LOG"
    exit 77
fi

BIN=${1:-}
if [ -z "$BIN" ]; then
    PKG_CONFIG_LIBDIR=/nonexistent cargo build --release --no-default-features \
        --target-dir target/no-dpdk
    BIN=target/no-dpdk/release/sluice
fi
[ -x "$BIN" ] || fail "no binary at $BIN"

WORK=$(mktemp -d)
PID=""
cleanup() {
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then kill -KILL "$PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

"$BIN" version | grep -q "without DPDK" || fail "'sluice version' does not say it was built without DPDK"
if "$BIN" bench >"$WORK/out" 2>"$WORK/err"; then fail "'sluice bench' ran without DPDK"; fi
[ "$(wc -l <"$WORK/err")" = 1 ] && grep -q "built without DPDK" "$WORK/err" ||
    fail "'sluice bench' did not say in one line that it needs DPDK: $(cat "$WORK/err")"

# A loopback port: a few tries in case one is taken.
BODY=123
for _ in 1 2 3 4 5; do
    PORT=$((20000 + RANDOM % 20000))
    "$BIN" server --kernel --ip 127.0.0.1 --listen "$PORT:http" --body "$BODY" --duration 30 \
        --quiet >"$WORK/out" 2>"$WORK/log" &
    PID=$!
    for _ in $(seq 50); do
        grep -q "ready on kernel sockets" "$WORK/log" && break
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1
    done
    grep -q "ready on kernel sockets" "$WORK/log" && break
    kill -KILL "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    PID=""
done
[ -n "$PID" ] || fail "the kernel-mode server did not start: $(cat "$WORK/log")"
say "server --kernel ready on 127.0.0.1:$PORT"

URL="http://127.0.0.1:$PORT/"
for i in 1 2 3; do
    CODE=$(curl -sS --max-time 3 -o "$WORK/body" -w '%{http_code}' "$URL") ||
        fail "curl $i: no answer"
    [ "$CODE" = 200 ] || fail "curl $i: status $CODE"
    [ "$(wc -c <"$WORK/body")" = "$BODY" ] && [ -z "$(tr -d x <"$WORK/body")" ] ||
        fail "curl $i: not the $BODY-byte body"
done
# Two requests on one connection (HTTP/1.1 keep-alive).
N=$(curl -sS --max-time 3 -o /dev/null -w '%{num_connects}\n' "$URL" "$URL" | awk '{n += $1} END {print n}')
[ "$N" = 1 ] || fail "two requests took $N connections, not one kept alive"
say "curl: 200 and the $BODY-byte body, three times; two requests on one connection"

kill -TERM "$PID"
for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$PID" 2>/dev/null && fail "the server did not stop within 5 s of SIGTERM"
wait "$PID" || fail "the server exited with $?: $(cat "$WORK/log")"
PID=""
grep -q "4 connections accepted .* 5 responses" "$WORK/log" ||
    fail "the server's report does not count 4 connections and 5 responses: $(tail -1 "$WORK/log")"
say "pass ($(tail -1 "$WORK/log"))"
