#!/usr/bin/env python3
"""Make edited copies of photos: the near-duplicates a visual search must still find.

For each photo in SRC_DIR (image files sorted by name, the first N with ``--limit N``) this
writes five JPEGs named ``<stem>__<edit>.jpg`` into OUT_DIR:

* ``half``: resized to 50% per side (Lanczos), JPEG quality 95;
* ``crop80``: a crop keeping 80% of the area (89.4% per side), placed halfway between the
  centre and the top-left corner, JPEG quality 95;
* ``q30``: the whole photo at JPEG quality 30;
* ``exifrot``: pixels rotated 90 degrees counter-clockwise and EXIF Orientation 6, so that
  a viewer honouring EXIF shows the photo upright again, JPEG quality 95;
* ``bright``: brightness +30% (``ImageEnhance.Brightness`` 1.3), JPEG quality 95.

Photos are decoded as the reference pipeline decodes them (``tools/reference_pipeline.py``:
EXIF orientation applied, 8-bit RGB, transparency flattened onto white); no metadata but
the orientation tag is written. Everything is deterministic.

``--one STEM --out FILE`` instead writes one combined edit of the photo named STEM
(the 80% crop, then 60% per side, JPEG quality 40), for a demonstration.

The edits are derived from the photos of ``scripts/fetch_photos.py`` and carry their
licences (see ``SOURCES.json`` beside the photos).

Usage::

    python scripts/make_edits.py SRC_DIR OUT_DIR [--limit N]
    python scripts/make_edits.py SRC_DIR --one STEM --out FILE
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from PIL import Image, ImageEnhance

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
from reference_pipeline import image_files, load_rgb  # noqa: E402

HIGH_QUALITY = 95
LOW_QUALITY = 30
CROP_AREA = 0.8
BRIGHTNESS = 1.3
EXIF_ORIENTATION_TAG = 0x0112
ORIENTATION_ROTATE_90_CW = 6  # "rotate 90 degrees clockwise to display upright"
EDITS = ("half", "crop80", "q30", "exifrot", "bright")
DEMO_SCALE = 0.6
DEMO_QUALITY = 40


def crop_box(width: int, height: int, area: float = CROP_AREA) -> tuple[int, int, int, int]:
    """A box keeping ``area`` of the image, same aspect ratio, off centre.

    The box sits halfway between the centred position and the top-left corner, so the
    crop is not a plain centre crop.
    """
    scale = math.sqrt(area)
    crop_width, crop_height = round(width * scale), round(height * scale)
    left, top = (width - crop_width) // 4, (height - crop_height) // 4
    return left, top, left + crop_width, top + crop_height


def scaled(image: Image.Image, factor: float) -> Image.Image:
    """The image resized by ``factor`` per side (Lanczos, at least 1 px)."""
    size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
    return image.resize(size, Image.Resampling.LANCZOS)


def save_jpeg(image: Image.Image, path: Path, quality: int = HIGH_QUALITY, orientation: int | None = None) -> None:
    """Write a JPEG with no metadata except, if given, the EXIF Orientation tag."""
    options = {"quality": quality}
    if orientation is not None:
        exif = Image.Exif()
        exif[EXIF_ORIENTATION_TAG] = orientation
        options["exif"] = exif.tobytes()
    image.save(path, "JPEG", **options)


def write_edits(photo: Path, out_dir: Path) -> None:
    """Write the five edits of one photo into out_dir."""
    image = load_rgb(photo)
    paths = {edit: out_dir / f"{photo.stem}__{edit}.jpg" for edit in EDITS}
    save_jpeg(scaled(image, 0.5), paths["half"])
    save_jpeg(image.crop(crop_box(image.width, image.height)), paths["crop80"])
    save_jpeg(image, paths["q30"], quality=LOW_QUALITY)
    save_jpeg(image.transpose(Image.Transpose.ROTATE_90), paths["exifrot"], orientation=ORIENTATION_ROTATE_90_CW)
    save_jpeg(ImageEnhance.Brightness(image).enhance(BRIGHTNESS), paths["bright"])


def write_demo_edit(photo: Path, out: Path) -> None:
    """The combined edit for a demonstration: 80% crop, 60% per side, JPEG quality 40."""
    image = load_rgb(photo)
    cropped = image.crop(crop_box(image.width, image.height))
    save_jpeg(scaled(cropped, DEMO_SCALE), out, quality=DEMO_QUALITY)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options, checked for one of the two modes; exits with status 2 on bad ones."""
    parser = argparse.ArgumentParser(description="Write deterministic edited copies of photos.")
    parser.add_argument("src_dir", type=Path, metavar="SRC_DIR")
    parser.add_argument("out_dir", type=Path, nargs="?", metavar="OUT_DIR")
    parser.add_argument("--limit", type=int, help="edit only the first N photos")
    parser.add_argument("--one", metavar="STEM", help="write one combined edit of the photo STEM.*")
    parser.add_argument("--out", type=Path, metavar="FILE", help="output file of --one")
    args = parser.parse_args(argv)
    if args.one is not None:
        if args.out is None or args.out_dir is not None or args.limit is not None:
            parser.error("--one STEM needs --out FILE and takes no OUT_DIR or --limit")
    elif args.out_dir is None or args.out is not None:
        parser.error("give OUT_DIR (or --one STEM --out FILE)")
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    if not args.src_dir.is_dir():
        parser.error(f"{args.src_dir}: not a directory")
    return args


def run(action, photo: Path, *outputs: Path) -> bool:
    """Apply ``action`` to one photo; on failure report the file and the reason, return False."""
    try:
        action(photo, *outputs)
        return True
    except Exception as error:  # Pillow raises many types for unreadable images
        print(f"make_edits: error: {photo}: {type(error).__name__}: {error}", file=sys.stderr)
        return False


def main(argv: list[str] | None = None) -> int:
    """Run the mode the command line asks for; return the exit status."""
    args = parse_args(argv)
    photos = image_files(args.src_dir)
    if args.one is not None:
        matches = [p for p in photos if p.stem == args.one]
        if not matches:
            print(f"make_edits: error: no photo named {args.one}.* in {args.src_dir}", file=sys.stderr)
            return 1
        args.out.parent.mkdir(parents=True, exist_ok=True)
        if not run(write_demo_edit, matches[0], args.out):
            return 1
        print(f"wrote {args.out}")
        return 0
    photos = photos[:args.limit]
    if not photos:
        print(f"make_edits: error: no image files in {args.src_dir}", file=sys.stderr)
        return 1
    args.out_dir.mkdir(parents=True, exist_ok=True)
    failed = [photo for photo in photos if not run(write_edits, photo, args.out_dir)]
    done = len(photos) - len(failed)
    print(f"wrote {len(EDITS) * done} edits of {done} photos to {args.out_dir}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
