#!/usr/bin/env bash
# Search-by-upload throughput of one Lookalike server, then two, on one PostgreSQL store (not a
# test): each server pinned to a core of its own (taskset), one inference at a time on one thread,
# wrk posting the same ~1 MP JPEG over loopback. PostgreSQL and wrk are not pinned: on a machine
# with as many cores as servers they share them, which is part of what is measured.
#
#   bash scripts/bench_cluster.sh LOOKALIKE_BINARY [SECONDS]
#
# Prints a Markdown table and writes bench-results/cluster-<date>.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$ROOT/.venv/bin/python"
BIN="$1"
SECONDS_EACH="${2:-30}"
CONNECTIONS="${BENCH_CLUSTER_CONNECTIONS:-4}"
DATA="${LOOKALIKE_DATA:-$ROOT/.data}"
WORK="$DATA/bench/cluster"
mkdir -p "$WORK" "$ROOT/bench-results"
say() { echo "==> $*" >&2; }

source "$ROOT/scripts/bench_query.sh"
bench_query "$WORK"

CLUSTER="$(mktemp -d "${TMPDIR:-/tmp}/lookalike-bench-cluster.XXXXXX")"
chmod 755 "$CLUSTER"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    bash "$ROOT/scripts/postgres.sh" stop "$CLUSTER/db" >/dev/null 2>&1 || true
    rm -rf "$CLUSTER"
}
trap cleanup EXIT

url="$(bash "$ROOT/scripts/postgres.sh" start "$CLUSTER/db" | tail -1)?schema=bench"
say "PostgreSQL at $url; adding the photo set and its edited copies"
LOOKALIKE_FILES="$CLUSTER/files" "$BIN" add "$DATA/photos" "$DATA/edits" -r --store "$url" >/dev/null 2>&1 || true
items="$(LOOKALIKE_FILES="$CLUSTER/files" "$BIN" stats --store "$url" --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["items"])')"

serve() {  # serve CORE PORT
    LOOKALIKE_FILES="$CLUSTER/files-$2" taskset -c "$1" "$BIN" serve --store "$url" --port "$2" --max-inference 1 --threads 1 \
        >"$CLUSTER/server-$2.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 120); do
        curl -sf -o /dev/null -X POST --data-binary @"$QUERY" -H 'Content-Type: image/jpeg' \
            "http://127.0.0.1:$2/v1/collections/default/search" && return 0
        sleep 0.5
    done
    cat "$CLUSTER/server-$2.log" >&2
    exit 1
}
rps() {  # rps FILE: requests/s from wrk's output
    awk '/Requests\/sec/ { print $2 }' "$1"
}
errors() {
    awk '/Non-2xx/ { n += $NF } /Socket errors/ { for (i = 4; i <= NF; i += 2) n += $i } END { print n + 0 }' "$1"
}
p50() {
    awk '$1 == "50%" { print $2 }' "$1"
}

serve 0 18291
serve 1 18292
for port in 18291 18292; do  # warm-up: models loaded, connections open
    for _ in 1 2 3; do curl -s -o /dev/null -X POST --data-binary @"$QUERY" -H 'Content-Type: image/jpeg' \
        "http://127.0.0.1:$port/v1/collections/default/search"; done
done

say "one server (core 0), wrk -c$CONNECTIONS for ${SECONDS_EACH}s"
wrk -t1 -c"$CONNECTIONS" -d"${SECONDS_EACH}s" --latency --timeout 30s -s "$WORK/post.lua" \
    "http://127.0.0.1:18291/v1/collections/default/search" > "$WORK/one.txt"
say "two servers (cores 0 and 1), wrk -c$CONNECTIONS on each for ${SECONDS_EACH}s"
wrk -t1 -c"$CONNECTIONS" -d"${SECONDS_EACH}s" --latency --timeout 30s -s "$WORK/post.lua" \
    "http://127.0.0.1:18291/v1/collections/default/search" > "$WORK/two-a.txt" &
first_wrk=$!
wrk -t1 -c"$CONNECTIONS" -d"${SECONDS_EACH}s" --latency --timeout 30s -s "$WORK/post.lua" \
    "http://127.0.0.1:18292/v1/collections/default/search" > "$WORK/two-b.txt"
wait "$first_wrk"

one="$(rps "$WORK/one.txt")"
a="$(rps "$WORK/two-a.txt")"
b="$(rps "$WORK/two-b.txt")"
table="$("$PY" - "$one" "$a" "$b" "$items" "$(errors "$WORK/one.txt")" "$(( $(errors "$WORK/two-a.txt") + $(errors "$WORK/two-b.txt") ))" \
    "$(p50 "$WORK/one.txt")" "$(p50 "$WORK/two-a.txt")" "$(p50 "$WORK/two-b.txt")" "$CONNECTIONS" "$SECONDS_EACH" <<'PYEOF'
import sys
one, a, b, items, e1, e2, p1, pa, pb, c, s = sys.argv[1:]
one, a, b = float(one), float(a), float(b)
print(f"Search by upload (~1 MP JPEG), {items} items in one PostgreSQL store, wrk -c{c} per server for {s} s.")
print()
print("| servers | requests/s | p50 | errors | scaling |")
print("|---|---|---|---|---|")
print(f"| 1 (core 0) | {one:.1f} | {p1} | {e1} | 1.00x |")
print(f"| 2 (cores 0, 1) | {a + b:.1f} ({a:.1f} + {b:.1f}) | {pa}, {pb} | {e2} | {(a + b) / one:.2f}x |")
PYEOF
)"
echo "$table" | tee "$ROOT/bench-results/cluster-$(date +%F).md"
