"""Builds the image-format fixtures of the Swift imaging tests from one real photo.

From `$LOOKALIKE_DATA/photos/skimage-chelsea.png` (CC0, scikit-image) it writes, into
`$LOOKALIKE_DATA/fixtures/formats/`: the same picture as JPEG, PNG, WebP, TIFF, an animated GIF
(first frame the photo, second frame its negative), grayscale PNG, 16-bit grayscale PNG, CMYK
JPEG, RGBA PNG (left half transparent), JPEGs for each EXIF orientation 1 to 8 whose stored pixels
are transformed so that they show upright, AVIF (through the `vips` command), and the broken inputs: a zero-byte file, a
truncated JPEG, a text file named .jpg, and a PNG whose header claims 40000x40000 pixels.
Also `reference.png`: the photo as 8-bit RGB, the answer every decoded variant is compared with.
"""

import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("LOOKALIKE_DATA", ROOT / ".data"))
SOURCE = DATA / "photos" / "skimage-chelsea.png"
OUT = DATA / "fixtures" / "formats"
STAMP = OUT / ".complete-v3"


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    """One PNG chunk with its CRC."""
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)


def huge_header_png(width: int, height: int) -> bytes:
    """A small, well-formed PNG whose header claims `width` x `height`: decoding it would need gigabytes."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = zlib.compress(b"\x00" + b"\x00" * 3 * 16)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", data) + png_chunk(b"IEND", b"")


def write_variants(photo: Image.Image) -> None:
    photo.save(OUT / "reference.png")
    photo.save(OUT / "photo.jpg", quality=95)
    photo.save(OUT / "photo.png")
    photo.save(OUT / "photo.webp", quality=95)
    photo.save(OUT / "photo.tiff")
    negative = ImageOps.invert(photo)
    photo.save(OUT / "animated.gif", save_all=True, append_images=[negative], duration=100, loop=0)
    gray = photo.convert("L")
    gray.save(OUT / "gray.png")
    gray.convert("I").point(lambda v: v * 257).convert("I;16").save(OUT / "gray16.png")
    photo.convert("CMYK").save(OUT / "cmyk.jpg", quality=95)
    rgba = photo.convert("RGBA")
    alpha = Image.new("L", photo.size, 255)
    alpha.paste(0, (0, 0, photo.width // 2, photo.height))
    rgba.putalpha(alpha)
    rgba.save(OUT / "alpha.png")
    write_orientations(photo)


# For each EXIF orientation, the transform that turns the upright photo into the stored pixels
# (the inverse of what a viewer applies to display them).
STORED_FOR_ORIENTATION = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def write_orientations(photo: Image.Image) -> None:
    """exif-orientation-N.jpg for N = 1..8, each displaying as the upright photo."""
    reference = photo.convert("RGB")
    for orientation, transform in STORED_FOR_ORIENTATION.items():
        stored = reference if transform is None else reference.transpose(transform)
        exif = Image.Exif()
        exif[0x0112] = orientation
        path = OUT / f"exif-orientation-{orientation}.jpg"
        stored.save(path, quality=95, exif=exif.tobytes())
        shown = ImageOps.exif_transpose(Image.open(path))
        if shown.size != photo.size:
            sys.exit(f"make_format_fixtures: {path.name} does not display upright")


def write_avif() -> None:
    """AVIF through libvips' command-line tool (Debian's libvips-tools, which `make setup` installs)."""
    if shutil.which("vips") is None:
        sys.exit("make_format_fixtures: the `vips` command is missing (Debian package libvips-tools; `make setup` installs it)")
    result = subprocess.run(["vips", "heifsave", str(OUT / "photo.png"), str(OUT / "photo.avif"), "--compression", "av1"],
                            check=False, capture_output=True, text=True)
    if result.returncode != 0 or not (OUT / "photo.avif").exists():
        sys.exit(f"make_format_fixtures: vips could not write photo.avif: {result.stderr.strip()}")


def write_broken() -> None:
    (OUT / "empty.jpg").write_bytes(b"")
    jpeg = (OUT / "photo.jpg").read_bytes()
    (OUT / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (OUT / "text.jpg").write_text("This is a text file, not a JPEG.\n")
    (OUT / "huge-header.png").write_bytes(huge_header_png(40000, 40000))


def main() -> None:
    if STAMP.exists():
        return
    if not SOURCE.exists():
        sys.exit(f"make_format_fixtures: {SOURCE} is missing; run scripts/fetch_photos.py first")
    OUT.mkdir(parents=True, exist_ok=True)
    photo = Image.open(SOURCE).convert("RGB")
    write_variants(photo)
    write_avif()
    write_broken()
    STAMP.write_text("ok\n")
    print(f"format fixtures in {OUT}")


if __name__ == "__main__":
    main()
