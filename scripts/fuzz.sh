#!/usr/bin/env bash
# Fuzzes the parsers that take untrusted bytes with libFuzzer: metadata filters (JSON), HNSW
# snapshot files, multipart bodies and search query strings. Usage: scripts/fuzz.sh [SECONDS per target, default 300]
# Seeds come from Fuzz/corpus/<target>/; what the fuzzer learns goes to $LOOKALIKE_DATA/fuzz/<target>/,
# and an input that crashes to $LOOKALIKE_DATA/fuzz/crashes/ (then the script fails: copy the input
# into Fuzz/corpus/<target>/ once fixed, and the replay test keeps it fixed).
set -euo pipefail
seconds="${1:-300}"
root="$(cd "$(dirname "$0")/.." && pwd)"
data="${LOOKALIKE_DATA:-$root/.data}"
cd "$root/Fuzz"
swift build -c release --scratch-path "$root/.build-fuzz" -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library \
    --product lookalike-fuzz 2>&1 | grep -v "ld.gold: warning" | tail -1
fuzzer="$root/.build-fuzz/release/lookalike-fuzz"
mkdir -p "$data/fuzz/crashes"
status=0
for target in filter snapshot multipart query; do
    mkdir -p "$data/fuzz/$target"
    echo "fuzzing $target for $seconds s"
    # Leaks are not what this looks for (Foundation keeps a buffer per empty mapped file).
    if ! ASAN_OPTIONS=detect_leaks=0 LOOKALIKE_FUZZ="$target" "$fuzzer" "$data/fuzz/$target" "$root/Fuzz/corpus/$target" \
        -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$data/fuzz/crashes/$target-" >"$data/fuzz/$target.log" 2>&1; then
        echo "fuzzing $target found a crash: see $data/fuzz/$target.log and $data/fuzz/crashes/"
        status=1
    fi
    grep -E "^Done [0-9]+ runs" "$data/fuzz/$target.log" || true
done
exit "$status"
