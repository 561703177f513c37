#!/usr/bin/env bash
# Runs the README's "Use by use" commands exactly as written (every ```sh
# block of that section except "Real NICs", which needs a NIC), each block
# with `set -e` in a scratch directory, and fails if any command fails.
# NEEDS ROOT (DPDK, a network namespace). Cleans up the namespace `peer`,
# the veth and nginx afterwards.
#
#   scripts/check-readme.sh [sluice-binary-dir]   # default target/release
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN_DIR=$(cd "${1:-target/release}" && pwd)
[ "$(id -u)" = 0 ] || { echo "check-readme: needs root" >&2; exit 77; }
[ -x "$BIN_DIR/sluice" ] || { echo "check-readme: no $BIN_DIR/sluice (cargo build --release)" >&2; exit 2; }

WORK=$(mktemp -d)
cleanup() {
    ip netns exec peer nginx -s stop 2>/dev/null || true
    ip netns pids peer 2>/dev/null | xargs -r kill 2>/dev/null || true
    ip netns del peer 2>/dev/null || true
    ip link del veth-sl 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
cleanup_before() { ip netns del peer 2>/dev/null || true; ip link del veth-sl 2>/dev/null || true; }
cleanup_before

python3 - "$ROOT/README.md" "$WORK" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
section = text.split("## Use by use", 1)[1].split("\n## ", 1)[0]
blocks, title = [], ""
for part in re.split(r"\n### ", section):
    title = part.split("\n", 1)[0].strip()
    if title.startswith("Real NICs"):
        continue
    for b in re.findall(r"```sh\n(.*?)```", part, re.S):
        if b.strip().startswith("export PATH"):
            continue
        blocks.append((title, b))
for k, (t, b) in enumerate(blocks):
    with open(f"{sys.argv[2]}/block{k:02d}.sh", "w") as f:
        f.write(f"# {t}\nset -e\n{b}")
print(f"check-readme: {len(blocks)} blocks")
PY
export PATH="$BIN_DIR:$PATH"
cd "$WORK"
for b in "$WORK"/block*.sh; do
    echo "=== $(head -1 "$b" | sed 's/^# //')"
    if ! timeout 300 bash "$b" >"$b.out" 2>&1; then
        cat "$b.out" >&2
        echo "check-readme: FAIL: a command in \"$(head -1 "$b" | sed 's/^# //')\" failed" >&2
        exit 1
    fi
    tail -3 "$b.out"
done
echo "check-readme: PASS (every Use-by-use command ran as written)"
