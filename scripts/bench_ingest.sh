#!/usr/bin/env bash
# Ingest benchmark (not a test): images per second of `lookalike add` into an empty store, side by
# side with the Python reference pipeline (Pillow decode + onnxruntime) on the same files, same
# model, same inference threads, and a best-effort Python peer (scripts/bench_ingest_peer.py). Three sets
# of 200 files from real photos: JPEGs of ~1 MP, of ~12 MP, and a mixed phone library (JPEG, HEIC,
# PNG screenshots, broken files; scripts/make_bench_set.py).
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

{
    echo "| set | files | Lookalike | Lookalike, 8-bit model | Python reference | Python, best effort | Lookalike / reference | Lookalike / best effort | Lookalike peak RSS |"
    echo "|---|---|---|---|---|---|---|---|---|"
} > "$out"

# A `lookalike add` of FOLDER with MODEL into an empty store: its wall time in $seconds, its peak RSS (MB) in $rss.
time_add() {
    local store stats
    store="$(mktemp -d)"
    stats="$(mktemp)"
    /usr/bin/time -f "%e %M" -o "$stats" "$LOOKALIKE" add "$1" --recursive --model "$2" --threads "$THREADS" --store "$store" \
        > /dev/null 2>&1 || true  # the mixed set's broken files make add exit 2; the others are added
    read -r seconds rss < <(tail -1 "$stats")
    rss="$(( rss / 1024 ))"
    rm -rf "$store" "$stats"
}
seconds_of() { sed -E 's/.* in ([0-9.]+) s.*/\1/'; }
rate() { python3 -c "print(f'{$COUNT / $1:.1f}')"; }
ratio() { python3 -c "print(f'{$2 / $1:.2f}x')"; }

for size in 1mp 12mp mixed; do
    set_dir="$DATA/bench/$size"
    "$PY" "$ROOT/scripts/make_bench_set.py" --size "$size" --count "$COUNT" --out "$set_dir" >/dev/null
    # Warm the page cache so every side reads the files from memory.
    cat "$set_dir"/* > /dev/null
    time_add "$set_dir" efficientnet-lite0
    float_seconds="$seconds" float_rss="$rss"
    time_add "$set_dir" efficientnet-lite0-int8
    int8_seconds="$seconds"
    reference_seconds="$("$PY" "$ROOT/tools/reference_pipeline.py" --model "$MODELS/efficientnet-lite0.onnx" \
        --threads "$THREADS" --time-only "$set_dir" 2>/dev/null | seconds_of || true)"
    best_seconds="$("$PY" "$ROOT/scripts/bench_ingest_peer.py" --model "$MODELS/efficientnet-lite0.onnx" \
        --threads "$THREADS" --workers "$THREADS" "$set_dir" | seconds_of)"
    echo "| $size | $COUNT | $(rate "$float_seconds") | $(rate "$int8_seconds") | $(rate "$reference_seconds") |" \
         "$(rate "$best_seconds") | $(ratio "$float_seconds" "$reference_seconds") | $(ratio "$float_seconds" "$best_seconds") |" \
         "$float_rss MB |" >> "$out"
done

echo "Ingest benchmark, $(date -u +%Y-%m-%d), $(nproc) cores, inference threads: $THREADS"
echo "Files per second. Lookalike: the whole \`lookalike add DIR --recursive --threads $THREADS\` command (start-up"
echo "and model load included), model efficientnet-lite0 (float32) or efficientnet-lite0-int8."
echo "Python reference: tools/reference_pipeline.py --time-only (one process; model load and one warm-up image excluded)."
echo "Python, best effort: scripts/bench_ingest_peer.py ($THREADS decoding processes, JPEG draft, batches; same exclusions)."
echo
cat "$out"
