"""Builds the image-format fixtures of the Swift imaging tests from one real photo.

From `$LOOKALIKE_DATA/photos/skimage-chelsea.png` (CC0, scikit-image) it writes, into
`$LOOKALIKE_DATA/fixtures/formats/`: the same picture as JPEG, PNG, WebP, TIFF, an animated GIF
(first frame the photo, second frame its negative), grayscale PNG, 16-bit grayscale PNG, CMYK
JPEG, RGBA PNG (left half transparent), JPEGs for each EXIF orientation 1 to 8 whose stored pixels
are transformed so that they show upright, AVIF (through the `vips` command), and the broken inputs: a zero-byte file, a
truncated JPEG, a text file named .jpg, and a PNG whose header claims 40000x40000 pixels; and
formats that must be refused whatever their name (their libraries are not hardened against
hostile files): SVG, PDF, PSD and BMP, each named .jpg.
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
STAMP = OUT / ".complete-v4"


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


def write_refused() -> None:
    """Small, valid files of formats libvips reads through librsvg, poppler or ImageMagick."""
    (OUT / "svg.jpg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">'
                                 '<rect width="64" height="64" fill="red"/></svg>\n')
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 64 64] >>"]
    pdf, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, 1):
        offsets.append(len(pdf))
        pdf += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(pdf)
    pdf += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    pdf += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    pdf += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    (OUT / "pdf.jpg").write_bytes(pdf)
    side = 8
    pixels = bytes([0, 0, 255] * side * side)
    bmp = b"BM" + struct.pack("<IHHI", 54 + len(pixels), 0, 0, 54)
    bmp += struct.pack("<IiiHHIIiiII", 40, side, side, 1, 24, 0, len(pixels), 2835, 2835, 0, 0) + pixels
    (OUT / "bmp.jpg").write_bytes(bmp)
    # Photoshop: header (RGB, 8 bits), empty colour-mode, resource and layer sections, raw planes.
    psd = b"8BPS" + struct.pack(">H6xHIIHH", 1, 3, side, side, 8, 3) + struct.pack(">III", 0, 0, 0)
    psd += struct.pack(">H", 0) + bytes([200] * side * side * 3)
    (OUT / "psd.jpg").write_bytes(psd)


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
    write_refused()
    STAMP.write_text("ok\n")
    print(f"format fixtures in {OUT}")


if __name__ == "__main__":
    main()
