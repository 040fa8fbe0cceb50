#!/usr/bin/env bash
# Builds a benchmark set of >= 100,000 real image embeddings made by Lookalike itself, for the
# approximate nearest neighbour benchmark. The images come from Debian packages only
# (Fashion-MNIST, clip art, Tux Paint stamps, icon themes: see scripts/bench_images.py).
#
#   bash scripts/make_bench_embeddings.sh LOOKALIKE_BINARY OUTPUT_DIR
#
# OUTPUT_DIR gets: bin/lookalike (a copy of the binary, so a rebuild meanwhile changes nothing),
# images/<source>/..., SOURCES.json (counts and licences), store/ (the Lookalike store),
# add.log (the indexing log), vectors.npy (float32, N x D, rows sorted by item id), ids.txt
# (the item id of each row), items.tsv (id, source, path) and .complete when all is done.
#
# Idempotent: with .complete present it only prints what is there. Otherwise each step that is
# done is skipped; an interrupted indexing run resumes (`lookalike add` skips stored bytes), and
# one still running in the background (it is started with setsid nohup) is waited for.
#
# Environment: BENCH_MODEL (default efficientnet-lite0), BENCH_MIN_IMAGES (default 100000),
# BENCH_POLL_SECONDS (default 60).
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 LOOKALIKE_BINARY OUTPUT_DIR" >&2
    exit 64
fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$ROOT/.venv/bin/python"
HELPER="$ROOT/scripts/bench_images.py"
SOURCE_BINARY="$1"
mkdir -p "$2"
OUT="$(cd "$2" && pwd)"
BIN="$OUT/bin/lookalike"
MODEL="${BENCH_MODEL:-efficientnet-lite0}"
MIN_IMAGES="${BENCH_MIN_IMAGES:-100000}"
POLL="${BENCH_POLL_SECONDS:-60}"

say() { echo "==> $*"; }

# Done already: say so and stop.
if [ -f "$OUT/.complete" ] && [ -f "$OUT/vectors.npy" ]; then
    say "complete: $OUT/vectors.npy ($(cat "$OUT/.complete"))"
    exit 0
fi

if [ ! -x "$PY" ]; then
    echo "no Python venv at $PY (run the project's setup first)" >&2
    exit 1
fi

# 1. Our own copy of the binary. An existing copy is kept, so a resumed run embeds with the same build.
if [ ! -x "$BIN" ]; then
    if [ ! -x "$SOURCE_BINARY" ]; then
        echo "no Lookalike binary at $SOURCE_BINARY (build it first)" >&2
        exit 1
    fi
    mkdir -p "$OUT/bin"
    cp "$SOURCE_BINARY" "$BIN.tmp"
    mv "$BIN.tmp" "$BIN"
    say "copied $SOURCE_BINARY to $BIN"
fi
"$BIN" --help > /dev/null
if ! "$BIN" models | grep -Eq "^$MODEL +[0-9]+-d +installed"; then
    echo "model $MODEL is not installed (see \`$BIN models\`)" >&2
    exit 1
fi

# 2. The Debian packages with the images, installed only when missing.
missing=()
while read -r package; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done < <("$PY" "$HELPER" packages)
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi

# 3. The image set: Fashion-MNIST as PNG, the packages' PNGs copied, duplicates left out.
if [ ! -f "$OUT/.images-complete" ]; then
    say "collecting images into $OUT/images"
    "$PY" "$HELPER" collect "$OUT"
    touch "$OUT/.images-complete"
fi

# 4. Indexing, in the background so that it survives this script; this script polls it.
# LOOKALIKE_APPROXIMATE_FROM is set very high so the add does not build an HNSW graph at its end:
# only the stored vectors are wanted here.
add_running() {
    [ -f "$OUT/add.pid" ] || return 1
    local pid
    pid="$(cat "$OUT/add.pid")"
    kill -0 "$pid" 2>/dev/null && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF "$BIN"
}
if [ ! -f "$OUT/.index-complete" ]; then
    if add_running; then
        say "an indexing run is already going (pid $(cat "$OUT/add.pid")), waiting for it"
    else
        rm -f "$OUT/add.rc" "$OUT/add.pid"
        say "indexing $OUT/images into $OUT/store (log: $OUT/add.log)"
        echo "=== $(date -u +%Y-%m-%dT%H:%M:%SZ) start: $BIN add --recursive --model $MODEL --store $OUT/store $OUT/images" >> "$OUT/add.log"
        # The wrapper writes its own pid (setsid may fork) and, at the end, the exit status of the add.
        LOOKALIKE_APPROXIMATE_FROM=1000000000 setsid nohup bash -c \
            'echo $$ > "$5/add.pid"; "$1" add --recursive --model "$2" --store "$3" "$4"; echo $? > "$5/add.rc.tmp"; mv "$5/add.rc.tmp" "$5/add.rc"' \
            add-wrapper "$BIN" "$MODEL" "$OUT/store" "$OUT/images" "$OUT" \
            >> "$OUT/add.log" 2>&1 < /dev/null &
        for _ in $(seq 50); do [ -s "$OUT/add.pid" ] && break; sleep 0.2; done
    fi
    started=$SECONDS
    while add_running; do
        sleep "$POLL"
        echo "    $(( (SECONDS - started) / 60 )) min: $(tail -n 1 "$OUT/add.log" | cut -c1-150)"
    done
    if [ ! -f "$OUT/add.rc" ]; then
        echo "the indexing run stopped without an exit status (killed?); run this script again to resume" >&2
        exit 1
    fi
    rc="$(cat "$OUT/add.rc")"
    grep -E "^(added [0-9]+, duplicates|stopped:)" "$OUT/add.log" | tail -n 1 || true
    failed="$(grep -c "^  failed: " "$OUT/add.log" || true)"
    case "$rc" in
        0) ;;
        2) say "some inputs failed ($failed failure lines in $OUT/add.log); the others were added" ;;
        *) echo "lookalike add exited with status $rc; see $OUT/add.log" >&2; exit 1 ;;
    esac
    touch "$OUT/.index-complete"
fi

# 5. Export: vectors.npy (N x D float32, sorted by item id), ids.txt, items.tsv; then the marker.
say "exporting vectors of $MODEL"
"$PY" "$HELPER" export "$OUT" --model "$MODEL" --min "$MIN_IMAGES"
"$PY" -c "import numpy, sys; v = numpy.load(sys.argv[1], mmap_mode='r'); print(f'N={v.shape[0]} D={v.shape[1]} model=$MODEL')" \
    "$OUT/vectors.npy" > "$OUT/.complete"
say "done: $(cat "$OUT/.complete")"
