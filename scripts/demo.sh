#!/usr/bin/env bash
# The demo: index the photo set into a fresh store, make an edited copy of one photo
# (cropped, resized, recompressed), search with it, and show the ranked hits.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOOKALIKE="${1:-$ROOT/.build/release/lookalike}"
DATA="${LOOKALIKE_DATA:-$ROOT/.data}"
DEMO="$DATA/demo"
STORE="$DEMO/store"
QUERY="$DEMO/chelsea-edited.jpg"
ORIGINAL="$DATA/photos/skimage-chelsea.png"

rm -rf "$STORE"
mkdir -p "$DEMO"
"$ROOT/.venv/bin/python" "$ROOT/scripts/make_edits.py" "$DATA/photos" --one skimage-chelsea --out "$QUERY" >/dev/null

echo "==> indexing $(ls "$DATA/photos" | grep -cE '\.(jpg|png)$') photos from packages into $STORE"
"$LOOKALIKE" add "$DATA/photos" --recursive --store "$STORE" 2>/dev/null
echo
echo "==> query: $QUERY (a crop of 80%, resized to 60%, JPEG quality 40, of $(basename "$ORIGINAL"))"
"$LOOKALIKE" search "$QUERY" --top 5 --store "$STORE"
echo
top="$("$LOOKALIKE" search "$QUERY" --top 1 --json --store "$STORE" | "$ROOT/.venv/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["hits"][0]["path"])')"
if [ "$top" = "$ORIGINAL" ]; then
    echo "==> the edited copy found its original at rank 1"
else
    echo "==> rank 1 is $top, not the original $ORIGINAL" >&2
    exit 1
fi

echo
PORT="${LOOKALIKE_PORT:-8080}"
echo "==> serving the web page and the API: open http://127.0.0.1:$PORT/ (Ctrl-C stops the server)"
echo "    e.g. curl -s -X POST --data-binary @$QUERY -H 'Content-Type: image/jpeg' 'http://127.0.0.1:$PORT/v1/collections/default/search?top=3'"
exec "$LOOKALIKE" serve --store "$STORE" --port "$PORT" --index-root "$DATA/photos"
