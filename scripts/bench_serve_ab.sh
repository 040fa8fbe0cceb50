#!/usr/bin/env bash
# Serving speed of two builds of Lookalike side by side, in one sitting: each serves its own copy
# of one store, and wrk (one thread, one connection) posts the same ~1 MP JPEG to the search
# endpoint for SECONDS, the two builds taking turns for ROUNDS rounds so that drift in the
# machine's speed falls on both. Prints requests/s and latency percentiles per build and round.
#
#   bash scripts/bench_serve_ab.sh OLD_BINARY NEW_BINARY STORE [SECONDS] [ROUNDS]
#
# STORE is copied twice (the builds never share files); the copies and wrk's output go to
# $LOOKALIKE_DATA/bench/ab. Both builds use the same models folder. AB_OLD_PARAMS and AB_NEW_PARAMS
# are added to each side's search address (say "&model=efficientnet-lite0-gem-int8", to set two
# models side by side with one binary given twice; the store then needs both models' vectors).
# AB_CONNECTIONS (default 1) sets wrk's concurrent connections: 1 for latency, more for saturation.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$ROOT/.venv/bin/python"
OLD="$1"
NEW="$2"
STORE="$3"
SECONDS_EACH="${4:-20}"
ROUNDS="${5:-3}"
WORK="${LOOKALIKE_DATA:-$ROOT/.data}/bench/ab"
PORT=18191
mkdir -p "$WORK"

# The query: a real photo from a package, resized to about one megapixel.
source "$ROOT/scripts/bench_query.sh"
bench_query "$WORK"

for name in old new; do
    rm -rf "$WORK/store-$name"
    cp -r "$STORE" "$WORK/store-$name"
done

BASE_URL="http://127.0.0.1:$PORT/v1/collections/default/search?top=10"
echo "build round requests/s p50_ms p90_ms p99_ms"
for round in $(seq 1 "$ROUNDS"); do
    for name in old new; do
        binary="$OLD" URL="$BASE_URL${AB_OLD_PARAMS:-}"
        [ "$name" = new ] && binary="$NEW" URL="$BASE_URL${AB_NEW_PARAMS:-}"
        "$binary" serve --store "$WORK/store-$name" --port "$PORT" > "$WORK/serve-$name.log" 2>&1 &
        pid=$!
        for _ in $(seq 1 600); do
            curl -s -o /dev/null -X POST --data-binary @"$QUERY" -H 'Content-Type: image/jpeg' "$URL" && break
            sleep 1
        done
        # Warm-up: the index is loaded (built from the store the first time) and the model has run.
        for _ in 1 2 3 4 5; do curl -s -o /dev/null -X POST --data-binary @"$QUERY" -H 'Content-Type: image/jpeg' "$URL"; done
        status="$(curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary @"$QUERY" -H 'Content-Type: image/jpeg' "$URL")"
        if [ "$status" != 200 ]; then
            echo "bench_serve_ab: $URL answered $status, not 200" >&2
            kill "$pid"
            exit 1
        fi
        wrk -t1 -c"${AB_CONNECTIONS:-1}" -d"${SECONDS_EACH}s" --latency -s "$WORK/post.lua" "$URL" > "$WORK/wrk-$name-$round.txt"
        kill "$pid"
        wait "$pid" 2>/dev/null || true
        "$PY" - "$name" "$round" "$WORK/wrk-$name-$round.txt" <<'PYEOF'
import re, sys
name, round_, path = sys.argv[1:]
text = open(path).read()
def ms(label):
    m = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    value, unit = float(m.group(1)), m.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
print(name, round_, f"{rps:.1f}", f"{ms(50):.2f}", f"{ms(90):.2f}", f"{ms(99):.2f}")
PYEOF
    done
done
