#!/usr/bin/env bash
# The cluster demo, all on loopback: a PostgreSQL primary with one streaming replica, and two
# Lookalike servers on them. The photo set is indexed through the first server (a job that
# either server may run), an edited copy of one photo is searched through the second (which
# reads from the replica), then both serve until Ctrl-C, which stops everything.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOOKALIKE="${1:-$ROOT/.build/release/lookalike}"
DATA="${LOOKALIKE_DATA:-$ROOT/.data}"
PY="$ROOT/.venv/bin/python"
PORT="${LOOKALIKE_PORT:-8080}"
FIRST=$((PORT + 1))
SECOND=$((PORT + 2))
QUERY="$DATA/demo/chelsea-edited.jpg"
ORIGINAL="$DATA/photos/skimage-chelsea.png"

# The clusters live in a folder the database's own user can reach (see scripts/postgres.sh).
CLUSTER="$(mktemp -d "${TMPDIR:-/tmp}/lookalike-cluster.XXXXXX")"
chmod 755 "$CLUSTER"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    bash "$ROOT/scripts/postgres.sh" stop "$CLUSTER/replica" 2>/dev/null || true
    bash "$ROOT/scripts/postgres.sh" stop "$CLUSTER/primary" 2>/dev/null || true
    rm -rf "$CLUSTER"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$DATA/demo"
"$PY" "$ROOT/scripts/make_edits.py" "$DATA/photos" --one skimage-chelsea --out "$QUERY" >/dev/null

echo "==> PostgreSQL 18 with pgvector: a primary and a streaming replica"
primary="$(bash "$ROOT/scripts/postgres.sh" start "$CLUSTER/primary" | tail -1)"
replica="$(bash "$ROOT/scripts/postgres.sh" replica "$CLUSTER/primary" "$CLUSTER/replica" | tail -1)"
echo "    primary $primary"
echo "    replica $replica"
store="$primary?schema=demo"

serve() {  # serve PORT FILES: one Lookalike server on the store, searching on the replica
    LOOKALIKE_FILES="$2" "$LOOKALIKE" serve --store "$store" --read-replica "$replica" --port "$1" \
        --index-root "$DATA/photos" >"$CLUSTER/server-$1.log" 2>&1 &
    pids+=($!)
}
wait_ready() {
    for _ in $(seq 1 120); do
        curl -sf "http://127.0.0.1:$1/healthz" >/dev/null && return 0
        sleep 0.5
    done
    echo "the server on port $1 did not start:" >&2
    cat "$CLUSTER/server-$1.log" >&2
    exit 1
}
serve "$FIRST" "$CLUSTER/files-1"
serve "$SECOND" "$CLUSTER/files-2"
wait_ready "$FIRST"
wait_ready "$SECOND"
echo "==> two Lookalike servers: http://127.0.0.1:$FIRST/ and http://127.0.0.1:$SECOND/"

echo
echo "==> indexing $(ls "$DATA/photos" | grep -cE '\.(jpg|png)$') photos through the first server"
job="$(curl -sf -X POST -H 'Content-Type: application/json' \
    -d "{\"path\": \"$DATA/photos\"}" "http://127.0.0.1:$FIRST/v1/collections/default/jobs")"
id="$(echo "$job" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
while true; do
    state="$(curl -sf "http://127.0.0.1:$FIRST/v1/jobs/$id" | "$PY" -c 'import json,sys; j=json.load(sys.stdin); print(j["state"], j["added"], j["total"])')"
    case "$state" in
        finished*) echo "    job $id: added ${state#finished }"; break ;;
        failed*) echo "    job $id failed" >&2; exit 1 ;;
    esac
    sleep 0.5
done

echo
echo "==> searching through the second server with $QUERY"
echo "    (a crop of 80%, resized to 60%, JPEG quality 40, of $(basename "$ORIGINAL"))"
for _ in $(seq 1 20); do  # the replica replays the primary's changes within moments
    answer="$(curl -sf -X POST --data-binary "@$QUERY" -H 'Content-Type: image/jpeg' \
        "http://127.0.0.1:$SECOND/v1/collections/default/search?top=5")"
    echo "$answer" | "$PY" -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["hits"] else 1)' && break
    sleep 0.5
done
echo "$answer" | "$PY" -c '
import json, sys
answer = json.load(sys.stdin)
hits = answer["hits"]
print("    %d hits from %d images" % (len(hits), answer["searched"]))
for rank, hit in enumerate(hits, 1):
    print("    %d  %.4f  %s  %s" % (rank, hit["score"], hit["id"], hit["name"]))
sys.exit(0 if hits and hits[0]["name"] == sys.argv[1] else 1)
' "$(basename "$ORIGINAL")" || { echo "==> rank 1 is not the original $ORIGINAL" >&2; exit 1; }
echo "==> the edited copy found its original at rank 1, through the other server"

if [ "${DEMO_CLUSTER_EXIT:-0}" = "1" ]; then exit 0; fi
echo
echo "==> serving until Ctrl-C (which stops both servers and both databases)"
wait "${pids[0]}"
