"""Builds the evaluation sets of `make eval` from Debian packages, by script, outside git.

copies (copy detection, OUT/copies/manifest.jsonl):
  gallery     photographs from Debian wallpaper packages (gnome-backgrounds, ukui-wallpapers,
              plasma-workspace-wallpapers) and the project's photo set (scikit-image, scikit-learn,
              mate-backgrounds, lomiri-wallpapers), downscaled to at most 1024 px, near-duplicates
              among them dropped; every fifth photo is held out of the gallery instead, and its
              edited copies become queries without a match (copy detection's negative queries)
  queries     edited copies of each photo, seeded: crops, resizes, small and quarter rotations,
              a mirror image, low-quality JPEG, colour changes, blur, text and sticker overlays,
              padding into a larger canvas, a perspective warp, combinations, and exact re-encodes
  distractors unrelated images: Open Clip Art PNGs (openclipart-png), flattened onto white
categories (category similarity, OUT/categories/manifest.jsonl):
  Fashion-MNIST (dataset-fashion-mnist): 100 gallery images and 20 queries per class, from the
  test split; the group is the class.

Every package's version and licence go to OUT/<set>/SOURCES.json.

    python scripts/eval_sets.py --out .data/eval
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

ROOT = Path(__file__).resolve().parent.parent
VERSION = "v3"
WALLPAPER_PACKAGES = ["gnome-backgrounds", "ukui-wallpapers", "plasma-workspace-wallpapers"]
DISTRACTOR_PACKAGE = "openclipart-png"
FASHION_PACKAGE = "dataset-fashion-mnist"
FASHION_CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot"]
EDITS = ["crop", "resize", "rotate", "rotate90", "flip", "jpeg", "colour", "blur", "text", "sticker", "pad",
         "perspective", "combo", "reencode"]


def package_files(package: str, suffixes: tuple[str, ...]) -> list[Path]:
    listing = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True, check=True).stdout.split()
    return sorted(Path(p) for p in listing if p.lower().endswith(suffixes) and Path(p).is_file() and not Path(p).is_symlink())


def package_note(package: str, files: int) -> dict:
    version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True).stdout
    copyright = Path(f"/usr/share/doc/{package}/copyright")
    licences = sorted({line.split(":", 1)[1].strip() for line in copyright.read_text(errors="replace").splitlines()
                       if line.startswith("License:")}) if copyright.exists() else []
    return {"package": package, "version": version, "licences": licences, "files": files,
            "copyright_file": str(copyright)}


def signature(image: Image.Image) -> np.ndarray:
    """A 16 x 16 grey thumbnail with zero mean and unit length: its dot product with another is
    their correlation, which spots the same wallpaper shipped twice, at another size or in a
    light and a dark variant (a copy detector would rightly match those, so they must not stand
    in the gallery as different photos)."""
    grey = np.asarray(image.convert("L").resize((16, 16), Image.BILINEAR), dtype=np.float32).reshape(-1)
    grey -= grey.mean()
    norm = np.linalg.norm(grey)
    return grey / norm if norm > 0 else grey


def gallery_photos(out: Path) -> tuple[list[tuple[str, Image.Image]], list[dict]]:
    sources: list[tuple[str, Path]] = []
    notes = []
    for package in WALLPAPER_PACKAGES:
        files = package_files(package, (".jpg", ".jpeg", ".png", ".webp"))
        sources += [(package, f) for f in files]
        notes.append(package_note(package, len(files)))
    photos = sorted((ROOT / ".data" / "photos").glob("*.[jp][pn]g"))
    sources += [("photo-set", p) for p in photos]
    notes.append({"package": "the project's photo set (scripts/fetch_photos.py; licences in .data/photos/SOURCES.json)",
                  "files": len(photos)})
    kept: list[tuple[str, Image.Image]] = []
    signatures: list[np.ndarray] = []
    used: set[str] = set()
    for origin, path in sources:
        try:
            image = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
        except Exception:
            continue
        if min(image.size) < 256:
            continue
        image.thumbnail((1024, 1024), Image.LANCZOS)
        mark = signature(image)
        if any(abs(float(mark @ other)) > 0.8 for other in signatures):
            continue
        signatures.append(mark)
        # Wallpaper themes name their files by resolution (Theme/contents/images/1920x1080.jpg):
        # the theme folder makes the name.
        folder = path.parent.parent.parent if path.parent.name == "images" else path.parent
        name = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{origin}-{folder.name}-{path.stem}")
        while name in used:
            name += "_"
        used.add(name)
        kept.append((name, image))
    return kept, notes


def stickers() -> list[Image.Image]:
    files = package_files("tuxpaint-stamps-default", (".png",))[:200]
    return [Image.open(f).convert("RGBA") for f in files[::10]]


def font(size: int) -> ImageFont.ImageFont:
    for candidate in ["/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"]:
        if Path(candidate).exists():
            return ImageFont.truetype(candidate, size)
    return ImageFont.load_default(size=size)


def edit(image: Image.Image, kind: str, rng: random.Random, pasted: list[Image.Image]) -> Image.Image:
    w, h = image.size
    if kind == "crop":
        keep = rng.uniform(0.5, 0.8) ** 0.5
        cw, ch = int(w * keep), int(h * keep)
        x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
        return image.crop((x, y, x + cw, y + ch))
    if kind == "resize":
        factor = rng.uniform(0.25, 0.5)
        return image.resize((max(1, int(w * factor)), max(1, int(h * factor))), Image.BICUBIC)
    if kind == "rotate":
        return image.rotate(rng.choice([-1, 1]) * rng.uniform(5, 20), expand=True, fillcolor=(0, 0, 0), resample=Image.BICUBIC)
    if kind == "rotate90":
        return image.transpose(rng.choice([Image.ROTATE_90, Image.ROTATE_270]))
    if kind == "flip":
        return ImageOps.mirror(image)
    if kind == "jpeg":
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=rng.randint(10, 25))
        return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    if kind == "colour":
        out = ImageEnhance.Color(image).enhance(rng.uniform(0.2, 1.8))
        out = ImageEnhance.Contrast(out).enhance(rng.uniform(0.6, 1.5))
        out = ImageEnhance.Brightness(out).enhance(rng.uniform(0.7, 1.3))
        hsv = np.asarray(out.convert("HSV")).copy()
        hsv[..., 0] = (hsv[..., 0].astype(np.int32) + rng.randint(10, 40)) % 256
        return Image.fromarray(hsv, "HSV").convert("RGB")
    if kind == "blur":
        return image.filter(ImageFilter.GaussianBlur(rng.uniform(2, 4)))
    if kind == "text":
        out = image.copy()
        draw = ImageDraw.Draw(out)
        words = ["LOOKALIKE", "SALE -50%", "copyright 2026", "hello world", "#photo", "ORIGINAL"]
        for _ in range(rng.randint(1, 3)):
            size = int(h * rng.uniform(0.08, 0.15))
            draw.text((rng.randint(0, w // 2), rng.randint(0, max(1, h - size))), rng.choice(words),
                      fill=tuple(rng.randint(0, 255) for _ in range(3)), font=font(size))
        return out
    if kind == "sticker":
        out = image.copy()
        piece = rng.choice(pasted)
        side = int(min(w, h) * rng.uniform(0.3, 0.5))
        piece = piece.copy()
        piece.thumbnail((side, side))
        out.paste(piece, (rng.randint(0, w - piece.width), rng.randint(0, h - piece.height)), piece)
        return out
    if kind == "pad":
        scale = rng.uniform(1.3, 2.0)
        canvas = Image.new("RGB", (int(w * scale), int(h * scale)), tuple(rng.randint(0, 255) for _ in range(3)))
        canvas.paste(image, (rng.randint(0, canvas.width - w), rng.randint(0, canvas.height - h)))
        return canvas
    if kind == "perspective":
        d = 0.15
        corners = [(rng.uniform(0, d) * w, rng.uniform(0, d) * h), (w - rng.uniform(0, d) * w, rng.uniform(0, d) * h),
                   (w - rng.uniform(0, d) * w, h - rng.uniform(0, d) * h), (rng.uniform(0, d) * w, h - rng.uniform(0, d) * h)]
        return image.transform((w, h), Image.QUAD, [c for corner in corners for c in corner], Image.BICUBIC)
    if kind == "combo":
        return edit(edit(edit(image, "crop", rng, pasted), "colour", rng, pasted), "jpeg", rng, pasted)
    if kind == "reencode":
        return image
    raise ValueError(kind)


def build_copies(out: Path) -> None:
    folder = out / "copies"
    stamp = folder / f".complete-{VERSION}"
    if stamp.exists():
        return
    for sub in ["gallery", "queries", "distractors"]:
        (folder / sub).mkdir(parents=True, exist_ok=True)
    photos, notes = gallery_photos(folder)
    pasted = stickers()
    notes.append(package_note("tuxpaint-stamps-default", len(pasted)))
    rng = random.Random(2026)
    lines = []
    for index, (name, image) in enumerate(photos):
        negative = index % 5 == 4
        group = f"neg-{name}" if negative else name
        if not negative:
            image.save(folder / "gallery" / f"{name}.jpg", quality=92)
            lines.append({"path": f"gallery/{name}.jpg", "role": "gallery", "group": group})
        for kind in EDITS:
            query = edit(image, kind, rng, pasted).convert("RGB")
            path = f"queries/{name}__{kind}.jpg"
            query.save(folder / path, quality=90)
            lines.append({"path": path, "role": "query", "group": group, "kind": "negative" if negative else kind})
    clipart = package_files(DISTRACTOR_PACKAGE, (".png",))
    seen = set()
    distractors = 0
    for path in clipart:
        if distractors >= 3000:
            break
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest in seen:
            continue
        seen.add(digest)
        try:
            with Image.open(io.BytesIO(data)) as opened:
                if opened.width * opened.height > 40_000_000:
                    continue
                rgba = opened.convert("RGBA")
        except Exception:
            continue
        rgba.thumbnail((512, 512))
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.split()[3])
        flat.save(folder / "distractors" / f"d{distractors:05d}.jpg", quality=90)
        lines.append({"path": f"distractors/d{distractors:05d}.jpg", "role": "distractor"})
        distractors += 1
    notes.append(package_note(DISTRACTOR_PACKAGE, distractors))
    (folder / "manifest.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    (folder / "SOURCES.json").write_text(json.dumps({"set": "copies", "sources": notes}, indent=1) + "\n")
    stamp.write_text("ok\n")
    roles = {role: sum(1 for line in lines if line["role"] == role) for role in ["gallery", "query", "distractor"]}
    print(f"copies: {roles}")


def idx_images(path: Path) -> np.ndarray:
    data = gzip.decompress(path.read_bytes())
    count, rows, columns = int.from_bytes(data[4:8], "big"), int.from_bytes(data[8:12], "big"), int.from_bytes(data[12:16], "big")
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(count, rows, columns)


def idx_labels(path: Path) -> np.ndarray:
    return np.frombuffer(gzip.decompress(path.read_bytes()), dtype=np.uint8, offset=8)


def build_categories(out: Path) -> None:
    folder = out / "categories"
    stamp = folder / f".complete-{VERSION}"
    if stamp.exists():
        return
    (folder / "images").mkdir(parents=True, exist_ok=True)
    base = Path("/usr/share/datasets/fashion-mnist")
    images = idx_images(base / "t10k-images-idx3-ubyte.gz")
    labels = idx_labels(base / "t10k-labels-idx1-ubyte.gz")
    lines = []
    for label, name in enumerate(FASHION_CLASSES):
        rows = np.flatnonzero(labels == label)[:120]
        for position, row in enumerate(rows):
            role = "gallery" if position < 100 else "query"
            path = f"images/{name}-{row:05d}.png"
            Image.fromarray(images[row]).save(folder / path)
            line = {"path": path, "role": role, "group": name}
            if role == "query":
                line["kind"] = name
            lines.append(line)
    (folder / "manifest.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    (folder / "SOURCES.json").write_text(json.dumps({"set": "categories", "sources": [
        {**package_note(FASHION_PACKAGE, len(lines)), "note": "Fashion-MNIST test split, Zalando Research, MIT licence"}]},
        indent=1) + "\n")
    stamp.write_text("ok\n")
    print(f"categories: {len(lines)} images, {len(FASHION_CLASSES)} classes")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / ".data" / "eval")
    args = parser.parse_args()
    build_copies(args.out)
    build_categories(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
