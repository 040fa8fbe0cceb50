#!/usr/bin/env bash
# Memory benchmark (not a test): peak RSS of `lookalike add` into an empty store over N images
# against its peak over 1,000, the same images and model (issue 16: at most 1.2x at 100,000).
# The images: Fashion-MNIST's 70,000 (Debian's dataset-fashion-mnist, both splits) as 28x28 PNGs,
# then their mirror images, each different bytes (so none is a duplicate).
#
#   bash scripts/bench_memory.sh [LOOKALIKE] [N]      (N default 100000, at most 140000)
#
# The images go to $LOOKALIKE_DATA/bench/memory (made once); prints a Markdown table. Needs GNU time
# and dataset-fashion-mnist (`scripts/setup.sh --bench` installs both).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOOKALIKE="${1:-$ROOT/.build/release/lookalike}"
COUNT="${2:-100000}"
DATA="${LOOKALIKE_DATA:-$ROOT/.data}/bench/memory"
MODEL="${BENCH_MODEL:-efficientnet-lite0-gem}"
mkdir -p "$DATA"
if [ ! -f "$DATA/.complete-$COUNT" ]; then
    "$ROOT/.venv/bin/python" - "$DATA" "$COUNT" <<'PYEOF'
import gzip, sys
from pathlib import Path
import numpy as np
from PIL import Image
out, count = Path(sys.argv[1]), int(sys.argv[2])
base = Path("/usr/share/datasets/fashion-mnist")
images = [np.frombuffer(gzip.open(base / f"{split}-images-idx3-ubyte.gz").read()[16:], np.uint8).reshape(-1, 28, 28)
          for split in ("train", "t10k")]
images = np.concatenate(images)
if count > 2 * len(images):
    raise SystemExit(f"at most {2 * len(images)} images")
for index in range(count):
    folder = out / f"{index // 10000:02d}"
    folder.mkdir(exist_ok=True)
    path = folder / f"{index:06d}.png"
    if not path.exists():
        pixels = images[index % len(images)]
        Image.fromarray(pixels[:, ::-1] if index >= len(images) else pixels).save(path)
PYEOF
    touch "$DATA/.complete-$COUNT"
fi
peak() {  # peak RSS in MB and seconds of adding the given folders into an empty store
    local store stats
    store="$(mktemp -d)"
    stats="$(mktemp)"
    /usr/bin/time -f "%M %e" -o "$stats" "$LOOKALIKE" add "$@" --recursive --model "$MODEL" --store "$store" \
        > /dev/null 2> "$DATA/add.log"  # the progress, a line per image
    rm -rf "$store"
    awk '{printf "%d MB | %.0f s", $1 / 1024, $2}' "$stats"
    rm -f "$stats"
}
mkdir -p "$DATA/first-1000"
for index in $(seq 0 999); do
    name="$(printf '%06d.png' "$index")"
    [ -e "$DATA/first-1000/$name" ] || ln -s "$DATA/00/$name" "$DATA/first-1000/$name"
done
folders=()
for folder in "$DATA"/[0-9][0-9]; do folders+=("$folder"); done
echo "| images | peak RSS | seconds |"
echo "|---|---|---|"
echo "| 1,000 | $(peak "$DATA/first-1000") |"
echo "| $COUNT | $(peak "${folders[@]}") |"
echo
echo "Memory benchmark, $(date -u +%Y-%m-%d), model $MODEL: \`/usr/bin/time -f %M lookalike add ... --recursive\` into an empty store."
