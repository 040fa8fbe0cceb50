"""Builds a product catalogue with colours and prices whose truth is known: Fashion-MNIST photos.

From Debian's dataset-fashion-mnist (MIT licence, Zalando Research; fetched with `apt-get download`
and unpacked when it is not installed) each chosen photo is dyed one of ten colours on a white
background and scaled to 112 x 112, and given a price drawn in its class's range. The colour and the
price are written beside it (`catalogue.jsonl`, one line per image: path, category, color, price),
and the prices also as a metadata file `lookalike add --metadata` reads (`metadata.jsonl`: path,
price, category; no colour, so a search has to see it).

    make_catalogue.py --split train --per-class 12 --out DIR   # the tests' catalogue
    make_catalogue.py --split test --per-class 80 --out DIR    # the evaluation's (`make eval`)

The training split is for tests and fitting, the test split for evaluation, so neither sees the
other's images. Everything is drawn from a seeded generator: the same arguments make the same files.
"""

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eval_sets import FASHION_CLASSES, FASHION_PACKAGE, Packages, idx_images, idx_labels  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("LOOKALIKE_DATA", ROOT / ".data"))
VERSION = "v1"

# The dyes: one typical shade per colour name (sRGB). Each image's dye is varied a little around it.
DYES = {
    "red": (200, 30, 40),
    "orange": (235, 125, 25),
    "yellow": (235, 205, 40),
    "green": (45, 140, 60),
    "blue": (40, 80, 185),
    "purple": (115, 50, 150),
    "pink": (235, 135, 175),
    "brown": (120, 75, 40),
    "black": (30, 30, 32),
    "gray": (135, 135, 138),
}

# Price ranges per class, in the catalogue's currency.
PRICES = {
    "t-shirt": (5, 40), "trouser": (20, 90), "pullover": (15, 80), "dress": (20, 150), "coat": (40, 300),
    "sandal": (10, 60), "shirt": (10, 70), "sneaker": (25, 150), "bag": (15, 250), "ankle-boot": (40, 200),
}


def dye(gray: np.ndarray, color: tuple, rng: np.random.Generator) -> Image.Image:
    """The product (bright on black in Fashion-MNIST) dyed `color` on a white background; the
    product's own shading is kept as darker and lighter tones of the dye."""
    shade = np.clip(np.array(color, dtype=np.float32) + rng.normal(0, 10, 3), 0, 255)
    alpha = (gray.astype(np.float32) / 255.0)[..., None]
    tone = 0.65 + 0.35 * alpha  # texture: the brightest parts of the product are the dye itself
    pixels = (1 - np.minimum(1, alpha * 1.6)) * 255 + np.minimum(1, alpha * 1.6) * shade * tone
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    return image.resize((112, 112), Image.BICUBIC)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--split", choices=["train", "test"], required=True)
    parser.add_argument("--per-class", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    stamp = args.out / f".complete-{VERSION}-{args.split}-{args.per_class}-{args.seed}"
    if stamp.exists():
        return 0
    packages = Packages(DATA / "packages")
    base = packages.root(FASHION_PACKAGE) / "usr/share/datasets/fashion-mnist"
    prefix = "train" if args.split == "train" else "t10k"
    images = idx_images(base / f"{prefix}-images-idx3-ubyte.gz")
    labels = idx_labels(base / f"{prefix}-labels-idx1-ubyte.gz")
    rng = np.random.default_rng(args.seed)
    args.out = args.out.resolve()
    folder = args.out / "images"
    folder.mkdir(parents=True, exist_ok=True)
    colors = list(DYES)
    lines, metadata = [], []
    for label, category in enumerate(FASHION_CLASSES):
        # Rows 1000 on, so the tuning fixtures (the first 40 of each class) are never reused.
        rows = [int(r) for r in (labels == label).nonzero()[0][1000 if args.split == "train" else 0:]][: args.per_class]
        for number, row in enumerate(rows):
            color = colors[(number + label) % len(colors)]
            low, high = PRICES[category]
            price = round(float(rng.uniform(low, high)), 2)
            path = folder / f"{category}-{row:05d}-{color}.png"
            dye(images[row], DYES[color], rng).save(path)
            relative = str(path.relative_to(args.out))
            lines.append({"path": relative, "category": category, "color": color, "price": price})
            metadata.append({"path": relative, "price": price, "category": category})
    (args.out / "catalogue.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    (args.out / "metadata.jsonl").write_text("".join(json.dumps(line) + "\n" for line in metadata))
    stamp.write_text("ok\n")
    print(f"catalogue: {len(lines)} dyed product photos in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
