#!/usr/bin/env bash
# `make bench-serve`: search-by-upload over HTTP against a large collection, with wrk on loopback,
# Lookalike's server side by side with a Python peer (the reference pipeline + hnswlib on the same
# vectors, scripts/bench_serve_peer.py).
#
#   bash scripts/bench_serve.sh LOOKALIKE_BINARY BENCH_EMBEDDINGS_DIR [SECONDS]
#
# For each server and each concurrency (1, 8, 32; BENCH_SERVE_CONNECTIONS overrides) wrk posts the
# same ~1 MP JPEG for SECONDS (default 30) and reports requests/s, latency p50/p90/p99 and errors;
# the server's resident memory is read before and after each run. A Markdown table is printed and
# written to bench-results/serve-<date>.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$ROOT/.venv/bin/python"
BIN="$1"
EMBEDDINGS="$(cd "$2" && pwd)"
SECONDS_EACH="${3:-30}"
CONNECTIONS="${BENCH_SERVE_CONNECTIONS:-1 8 32}"
MODELS="${LOOKALIKE_MODELS:-$HOME/.cache/lookalike/models}"
WORK="${LOOKALIKE_DATA:-$ROOT/.data}/bench/serve"
mkdir -p "$WORK" "$ROOT/bench-results"
PORT=18181
PEER_PORT=18182

say() { echo "==> $*" >&2; }
rss_mb() { awk '/VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }

# The query: a real photo from a package, resized to about one megapixel.
source "$ROOT/scripts/bench_query.sh"
bench_query "$WORK"

wait_ready() {  # url pid
    for _ in $(seq 1 600); do
        if curl -s -o /dev/null -X POST --data-binary @"$QUERY" -H 'Content-Type: image/jpeg' "$1"; then return 0; fi
        kill -0 "$2" 2>/dev/null || { say "the server exited"; return 1; }
        sleep 1
    done
    return 1
}

RESULTS="$WORK/results.tsv"
: > "$RESULTS"
run_wrk() {  # name url pid
    local name="$1" url="$2" pid="$3"
    # Warm-up: the index is loaded and the model has run before anything is measured.
    for _ in 1 2 3 4 5; do curl -s -o /dev/null -X POST --data-binary @"$QUERY" -H 'Content-Type: image/jpeg' "$url"; done
    for c in $CONNECTIONS; do
        local before after out
        before="$(rss_mb "$pid")"
        out="$(wrk -t1 -c"$c" -d"${SECONDS_EACH}s" --latency --timeout 30s -s "$WORK/post.lua" "$url")"
        after="$(rss_mb "$pid")"
        echo "$out" > "$WORK/wrk-$name-c$c.txt"
        "$PY" - "$name" "$c" "$before" "$after" "$WORK/wrk-$name-c$c.txt" >> "$RESULTS" <<'PYEOF'
import re, sys
name, connections, before, after, path = sys.argv[1:]
text = open(path).read()
def ms(label):
    m = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    if not m: return float("nan")
    value, unit = float(m.group(1)), m.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
total = int(re.search(r"(\d+) requests in", text).group(1))
non2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", text)) else 0
socket = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", text))
print(f"{name}\t{connections}\t{rps:.1f}\t{ms(50):.1f}\t{ms(90):.1f}\t{ms(99):.1f}\t{total}\t{non2xx + socket}\t{before}\t{after}")
PYEOF
        say "$name c=$c: $(tail -1 "$RESULTS" | cut -f3-)"
    done
}

ITEMS="$(wc -l < "$EMBEDDINGS/ids.txt")"
say "Lookalike: serving $ITEMS items from $EMBEDDINGS/store"
"$BIN" serve --store "$EMBEDDINGS/store" --port "$PORT" > "$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; kill ${PEER:-} 2>/dev/null || true' EXIT
# The bench store holds EfficientNet-Lite0 (mean pooling) vectors, the peer's model.
wait_ready "http://127.0.0.1:$PORT/v1/collections/default/search?model=efficientnet-lite0" "$SERVER"
run_wrk lookalike "http://127.0.0.1:$PORT/v1/collections/default/search?model=efficientnet-lite0" "$SERVER"
kill "$SERVER"; wait "$SERVER" 2>/dev/null || true

say "Python peer: reference pipeline + hnswlib on the same vectors"
"$PY" -m pip install -q --disable-pip-version-check -r "$ROOT/requirements-bench.txt"
"$PY" "$ROOT/scripts/bench_serve_peer.py" --embeddings "$EMBEDDINGS" --model "$MODELS/efficientnet-lite0.onnx" \
    --port "$PEER_PORT" --threads "$(nproc)" > "$WORK/peer.log" 2>&1 &
PEER=$!
wait_ready "http://127.0.0.1:$PEER_PORT/search" "$PEER"
run_wrk python-peer "http://127.0.0.1:$PEER_PORT/search" "$PEER"

DATE="$(date +%Y-%m-%d)"
{
    echo "Search by upload over HTTP, $DATE, $(nproc) cores, $ITEMS items, ~1 MP JPEG query, wrk -t1 for ${SECONDS_EACH}s per row"
    echo
    echo "| server | connections | requests/s | p50 ms | p90 ms | p99 ms | requests | errors | RSS before MB | RSS after MB |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 }' "$RESULTS"
} | tee "$ROOT/bench-results/serve-$DATE.md"
