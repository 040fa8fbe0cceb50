#!/usr/bin/env python3
"""Build a benchmark set: COUNT different JPEGs of about 1 or 12 megapixels from real photos.

Image ``i`` is ``bench-<size>-<iiii>.jpg``: photo ``i mod P`` of ``$LOOKALIKE_DATA/photos``
(P photos, sorted by name, decoded as ``tools/reference_pipeline.py`` decodes them), cropped
to the target aspect ratio at a random scale (60-100% of the largest such box) and
position, mirrored left-right with probability 1/2, resized (Lanczos, up or down) to
1152x864 (``1mp``) or 4000x3000 (``12mp``) and saved as JPEG quality 90. The random
numbers come from ``random.Random(i)``, so the set is the same on every run and machine
(given the same photos and Pillow), and every image differs from the others.

The images are derived from the photos of ``scripts/fetch_photos.py`` and carry their
licences (see ``SOURCES.json`` beside the photos).

A second run does nothing when OUT holds every expected file at the right size; missing
or wrong files are (re)made, and bench files of the same size beyond COUNT are removed.

``mixed`` is a phone library instead: of every 20 files, 13 JPEGs of 4000x3000 (every third of
them stored sideways with an EXIF orientation, as phones do), 2 HEICs of 4032x3024 (written by
libvips' ``heifsave``, quality 50, least effort), 2 PNG screenshots of 1170x2532, 2 JPEGs of 1152x864 (as a messenger
sends them) and one broken file (alternately a JPEG cut short and a text file named ``.jpg``).

Usage: ``python scripts/make_bench_set.py --size {1mp,12mp,mixed} [--count 200] --out DIR``
"""

from __future__ import annotations

import argparse
import io
import os
import random
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))
from reference_pipeline import image_files, load_rgb  # noqa: E402

SIZES = {"1mp": (1152, 864), "12mp": (4000, 3000)}
# The mixed phone library: (kind, suffix, size) for each index modulo 20.
MIXED = ([("jpeg", ".jpg", (4000, 3000))] * 13 + [("heic", ".heic", (4032, 3024))] * 2
         + [("png", ".png", (1170, 2532))] * 2 + [("jpeg", ".jpg", (1152, 864))] * 2 + [("broken", ".jpg", (4000, 3000))])
EXIF_ORIENTATION = 0x0112
QUALITY = 90
MIN_CROP_SCALE = 0.6


def photos_dir() -> Path:
    """The photos of ``scripts/fetch_photos.py``: ``$LOOKALIKE_DATA/photos``."""
    return Path(os.environ.get("LOOKALIKE_DATA") or REPO / ".data") / "photos"


def bench_name(size: str, index: int) -> str:
    """File name of image ``index`` of a set."""
    suffix = MIXED[index % len(MIXED)][1] if size == "mixed" else ".jpg"
    return f"bench-{size}-{index:04d}{suffix}"


def target_of(size: str, index: int) -> tuple[int, int]:
    return MIXED[index % len(MIXED)][2] if size == "mixed" else SIZES[size]


def random_view(rng: random.Random, width: int, height: int, aspect: float) -> tuple[tuple[int, int, int, int], bool]:
    """A random crop box of the given aspect ratio inside a width x height image, and a flip flag."""
    if width / height > aspect:
        box_width, box_height = height * aspect, height
    else:
        box_width, box_height = width, width / aspect
    scale = rng.uniform(MIN_CROP_SCALE, 1.0)
    crop_width = max(1, min(width, round(box_width * scale)))
    crop_height = max(1, min(height, round(box_height * scale)))
    left, top = rng.randint(0, width - crop_width), rng.randint(0, height - crop_height)
    return (left, top, left + crop_width, top + crop_height), rng.random() < 0.5


def render(photo: Image.Image, index: int, target: tuple[int, int]) -> Image.Image:
    """Image ``index`` of the set, made from its source photo."""
    box, flip = random_view(random.Random(index), photo.width, photo.height, target[0] / target[1])
    image = photo.resize(target, Image.Resampling.LANCZOS, box=box)
    return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if flip else image


def save_mixed(image: Image.Image, index: int, path: Path) -> None:
    """Write file ``index`` of the mixed set as its kind asks."""
    kind = MIXED[index % len(MIXED)][0]
    if kind == "jpeg":
        if (index // len(MIXED) + index) % 3 == 0:
            # Stored sideways, shown upright by the EXIF orientation 6 (rotate 90 clockwise).
            exif = Image.Exif()
            exif[EXIF_ORIENTATION] = 6
            image.transpose(Image.Transpose.ROTATE_90).save(path, "JPEG", quality=QUALITY, exif=exif.tobytes())
        else:
            image.save(path, "JPEG", quality=QUALITY)
    elif kind == "png":
        image.save(path, "PNG")
    elif kind == "heic":
        with tempfile.TemporaryDirectory() as scratch:
            source = Path(scratch) / "source.png"
            image.save(source, "PNG", compress_level=1)
            subprocess.run(["vips", "heifsave", str(source), str(path), "--Q", "50", "--compression", "hevc", "--effort", "0"],
                           check=True, capture_output=True, timeout=600)
    elif index // len(MIXED) % 2 == 0:
        data = io.BytesIO()
        image.save(data, "JPEG", quality=QUALITY)
        path.write_bytes(data.getvalue()[: len(data.getvalue()) // 3])
    else:
        path.write_text("not a photograph\n")


def make_from_photo(photo_path: Path, jobs: list[tuple[int, Path]], size: str) -> None:
    """Write the images that come from one photo, decoding it once.

    Each file is written under a temporary name and renamed, so an interrupted run leaves
    no truncated file that would pass the check of the next run.
    """
    photo = load_rgb(photo_path)
    for index, path in jobs:
        partial = path.with_name(path.name + ".partial")
        image = render(photo, index, target_of(size, index))
        if size == "mixed":
            save_mixed(image, index, partial)
        else:
            image.save(partial, "JPEG", quality=QUALITY)
        os.replace(partial, path)


def is_valid(path: Path, size: str, index: int) -> bool:
    """True if the file exists and is what image ``index`` should be (header only)."""
    if size == "mixed" and MIXED[index % len(MIXED)][0] in ("heic", "broken"):
        return path.is_file() and path.stat().st_size > 0
    formats = {".jpg": "JPEG", ".png": "PNG"}
    try:
        with Image.open(path) as image:
            size_ok = image.size in (target_of(size, index), target_of(size, index)[::-1])
            return image.format == formats[path.suffix] and size_ok
    except OSError:
        return False


def remove_stale(out: Path, size: str, expected: set[str]) -> None:
    """Delete this size's bench files that the current count does not include."""
    for path in out.glob(f"bench-{size}-*"):
        if path.name not in expected:
            path.unlink()


def build(size: str, count: int, out: Path, photos: list[Path]) -> int:
    """Make the missing or wrong images of the set; return how many were made."""
    out.mkdir(parents=True, exist_ok=True)
    names = [bench_name(size, i) for i in range(count)]
    remove_stale(out, size, set(names))
    todo: dict[Path, list[tuple[int, Path]]] = {}
    for index, name in enumerate(names):
        if not is_valid(out / name, size, index):
            todo.setdefault(photos[index % len(photos)], []).append((index, out / name))
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        futures = {photo: pool.submit(make_from_photo, photo, jobs, size) for photo, jobs in todo.items()}
        for photo, future in futures.items():
            try:
                future.result()
            except Exception as error:  # Pillow raises many types for unreadable images
                raise RuntimeError(f"{photo}: {type(error).__name__}: {error}") from None
    return sum(len(jobs) for jobs in todo.values())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options; exits with status 2 on bad ones."""
    parser = argparse.ArgumentParser(description="Build a benchmark set of JPEGs from real photos.")
    parser.add_argument("--size", required=True, choices=[*sorted(SIZES), "mixed"],
                        help="1mp (1152x864), 12mp (4000x3000) or mixed (a phone library)")
    parser.add_argument("--count", type=int, default=200, help="number of images (default 200)")
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Build the set the command line asks for; return the exit status."""
    args = parse_args(argv)
    source = photos_dir()
    photos = image_files(source) if source.is_dir() else []
    if not photos:
        print(f"make_bench_set: error: no photos in {source}; run scripts/fetch_photos.py first", file=sys.stderr)
        return 1
    try:
        made = build(args.size, args.count, args.out, photos)
    except (RuntimeError, OSError) as error:
        print(f"make_bench_set: error: {error}", file=sys.stderr)
        return 1
    status = f"made {made}" if made else "all present"
    shape = "files of a phone library" if args.size == "mixed" else "images of %dx%d" % SIZES[args.size]
    print(f"{args.count} {shape} in {args.out} ({status})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
