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

Usage: ``python scripts/make_bench_set.py --size {1mp,12mp} [--count 200] --out DIR``
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))
from reference_pipeline import image_files, load_rgb  # noqa: E402

SIZES = {"1mp": (1152, 864), "12mp": (4000, 3000)}
QUALITY = 90
MIN_CROP_SCALE = 0.6


def photos_dir() -> Path:
    """The photos of ``scripts/fetch_photos.py``: ``$LOOKALIKE_DATA/photos``."""
    return Path(os.environ.get("LOOKALIKE_DATA") or REPO / ".data") / "photos"


def bench_name(size: str, index: int) -> str:
    """File name of image ``index`` of a set."""
    return f"bench-{size}-{index:04d}.jpg"


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


def make_from_photo(photo_path: Path, jobs: list[tuple[int, Path]], target: tuple[int, int]) -> None:
    """Write the images that come from one photo, decoding it once.

    Each file is written under a temporary name and renamed, so an interrupted run leaves
    no truncated file that would pass the size check of the next run.
    """
    photo = load_rgb(photo_path)
    for index, path in jobs:
        partial = path.with_suffix(".partial")
        render(photo, index, target).save(partial, "JPEG", quality=QUALITY)
        os.replace(partial, path)


def is_valid(path: Path, target: tuple[int, int]) -> bool:
    """True if the file exists and is a JPEG of the target size (header only)."""
    try:
        with Image.open(path) as image:
            return image.format == "JPEG" and image.size == target
    except OSError:
        return False


def remove_stale(out: Path, size: str, expected: set[str]) -> None:
    """Delete this size's bench files that the current count does not include."""
    for path in out.glob(f"bench-{size}-*.jpg"):
        if path.name not in expected:
            path.unlink()


def build(size: str, count: int, out: Path, photos: list[Path]) -> int:
    """Make the missing or wrong images of the set; return how many were made."""
    target = SIZES[size]
    out.mkdir(parents=True, exist_ok=True)
    names = [bench_name(size, i) for i in range(count)]
    remove_stale(out, size, set(names))
    todo: dict[Path, list[tuple[int, Path]]] = {}
    for index, name in enumerate(names):
        if not is_valid(out / name, target):
            todo.setdefault(photos[index % len(photos)], []).append((index, out / name))
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        futures = {photo: pool.submit(make_from_photo, photo, jobs, target) for photo, jobs in todo.items()}
        for photo, future in futures.items():
            try:
                future.result()
            except Exception as error:  # Pillow raises many types for unreadable images
                raise RuntimeError(f"{photo}: {type(error).__name__}: {error}") from None
    return sum(len(jobs) for jobs in todo.values())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options; exits with status 2 on bad ones."""
    parser = argparse.ArgumentParser(description="Build a benchmark set of JPEGs from real photos.")
    parser.add_argument("--size", required=True, choices=sorted(SIZES), help="1mp (1152x864) or 12mp (4000x3000)")
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
    width, height = SIZES[args.size]
    status = f"made {made}" if made else "all present"
    print(f"{args.count} images of {width}x{height} in {args.out} ({status})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
