#!/usr/bin/env bash
# Ingest benchmark (not a test): images per second of `lookalike add` into an empty store, side by
# side with the Python reference pipeline (Pillow decode + onnxruntime) on the same files, same
# model, same inference threads. Two sets of 200 real-photo JPEGs: ~1 MP and ~12 MP.
# Prints a Markdown table and writes it to bench-results/ingest-<date>.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOOKALIKE="${1:-$ROOT/.build/release/lookalike}"
DATA="${LOOKALIKE_DATA:-$ROOT/.data}"
PY="$ROOT/.venv/bin/python"
MODELS="${LOOKALIKE_MODELS:-${XDG_CACHE_HOME:-$HOME/.cache}/lookalike/models}"
THREADS="${BENCH_THREADS:-2}"
COUNT="${BENCH_COUNT:-200}"
RESULTS="$ROOT/bench-results"
mkdir -p "$RESULTS"
out="$RESULTS/ingest-$(date -u +%Y-%m-%d).md"

now() { date +%s.%N; }

{
    echo "| set | images | Lookalike (images/s) | Python reference (images/s) | Lookalike / Python |"
    echo "|---|---|---|---|---|"
} > "$out"

for size in 1mp 12mp; do
    set_dir="$DATA/bench/$size"
    "$PY" "$ROOT/scripts/make_bench_set.py" --size "$size" --count "$COUNT" --out "$set_dir" >/dev/null
    store="$(mktemp -d)"
    # Warm the page cache so both sides read the files from memory.
    cat "$set_dir"/*.jpg > /dev/null
    start="$(now)"
    "$LOOKALIKE" add "$set_dir" --recursive --model efficientnet-lite0 --threads "$THREADS" --store "$store" > /dev/null 2>&1
    end="$(now)"
    rm -rf "$store"
    swift_rate="$(python3 -c "print(f'{$COUNT / ($end - $start):.1f}')")"
    python_line="$("$PY" "$ROOT/tools/reference_pipeline.py" --model "$MODELS/efficientnet-lite0.onnx" \
        --threads "$THREADS" --time-only "$set_dir")"
    python_rate="$(echo "$python_line" | sed -E 's/.*= ([0-9.]+) images\/s.*/\1/')"
    ratio="$(python3 -c "print(f'{$swift_rate / $python_rate:.2f}x')")"
    echo "| $size | $COUNT | $swift_rate | $python_rate | $ratio |" >> "$out"
done

echo "Ingest benchmark, $(date -u +%Y-%m-%d), $(nproc) cores, inference threads: $THREADS"
echo "Lookalike: whole \`lookalike add DIR --recursive --threads $THREADS\` command (start-up and model load included)."
echo "Python: tools/reference_pipeline.py --time-only (model load and one warm-up image excluded)."
echo
cat "$out"
