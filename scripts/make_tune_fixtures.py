"""Builds the labelled images the tuning tests learn from: Fashion-MNIST product photos.

From Debian's dataset-fashion-mnist (MIT licence, Zalando Research; fetched with `apt-get download`
and unpacked, not installed, when it is not installed) it writes the first PER_CLASS images of each
of the ten classes of the *training* split (the evaluation sets use the test split, so the tests
never see them) into `$LOOKALIKE_DATA/fixtures/categories/`, with `labels.jsonl`: one line per
image, `{"path": ..., "category": ...}`.
"""

import json
import os
import sys
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eval_sets import FASHION_CLASSES, FASHION_PACKAGE, Packages, idx_images, idx_labels  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("LOOKALIKE_DATA", ROOT / ".data"))
OUT = DATA / "fixtures" / "categories"
STAMP = OUT / ".complete-v1"
PER_CLASS = 40


def main() -> int:
    if STAMP.exists():
        return 0
    packages = Packages(DATA / "packages")
    base = packages.root(FASHION_PACKAGE) / "usr/share/datasets/fashion-mnist"
    images = idx_images(base / "train-images-idx3-ubyte.gz")
    labels = idx_labels(base / "train-labels-idx1-ubyte.gz")
    OUT.mkdir(parents=True, exist_ok=True)
    lines = []
    for label, name in enumerate(FASHION_CLASSES):
        for row in [int(r) for r in (labels == label).nonzero()[0][:PER_CLASS]]:
            path = OUT / f"{name}-{row:05d}.png"
            Image.fromarray(images[row]).save(path)
            lines.append({"path": str(path), "category": name})
    (OUT / "labels.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    STAMP.write_text("ok\n")
    print(f"tuning fixtures: {len(lines)} images in {len(FASHION_CLASSES)} classes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
