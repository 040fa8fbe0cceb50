#!/usr/bin/env python3
"""The Python reference pipeline: images -> embeddings, the peer of the Swift engine.

Tests and benchmarks compare the Swift engine with this script, so every step is spelled
out and kept simple enough to reimplement exactly:

1. decode with Pillow (first frame), fully, so that truncated files fail here; HEIC through
   pillow-heif when it is installed (the benchmarks install it; the tests do not need it);
2. ``ImageOps.exif_transpose``: the image as a viewer that honours EXIF shows it;
3. convert to 8-bit RGB: 16-bit samples keep their high byte (``v >> 8``, as Pillow does
   for 16-bit colour PNGs); transparency is flattened onto white with
   ``out = (v * a + 255 * (255 - a) + 127) // 255``; every other mode (grey, palette,
   CMYK, ...) goes through Pillow's ``convert("RGB")``; embedded ICC profiles are ignored;
4. resize with Pillow ``BICUBIC`` (antialiased when shrinking, no JPEG draft mode) so that
   the shorter side is ``--short-side`` and the longer side ``long * short_side / short``
   rounded half up, computed exactly in integers, aspect ratio kept, no crop; when that
   longer side would exceed ``--max-long`` (default 4 x short side) the longer side is
   ``max_long`` instead and the shorter one ``short * max_long / long`` rounded the same way
   (at least 1);
5. run the ONNX model on ``image``: uint8 ``[1, H, W, 3]`` RGB (the model normalises inside
   its graph) in ONNX Runtime on the CPU, with ``--threads`` intra-op threads, one inter-op
   thread and sequential execution;
6. take the output ``--output-name`` and L2-normalise it again, in float64.

Usage::

    python tools/reference_pipeline.py --model M.onnx [--short-side 224] [--max-long 896]
        [--threads 2] [--output-name embedding] (--out OUT.json | --time-only) FILE_OR_DIR...

A directory stands for the image files directly inside it (by extension), sorted by name.
The JSON written is ``{"model", "short_side", "max_long", "output_name", "items": [{"path",
"width", "height", "resized_width", "resized_height", "embedding"}]}`` with absolute paths
and the upright size (after EXIF orientation) of each original. ``--time-only`` writes
nothing and prints ``N images in S s = X images/s`` for decode + resize + inference of all
files, timed after one untimed warm-up image.

Exit status: 0 on success, 1 if the model cannot be used, 2 on bad arguments or a missing
path, 3 if any file failed to decode (each is reported on stderr with its path and reason
and skipped; the others are still processed).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps

try:
    import pillow_heif

    pillow_heif.register_heif_opener()
except ImportError:
    pillow_heif = None

INPUT_NAME = "image"
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".heic", ".heif"}
SIXTEEN_BIT_MODES = {"I", "I;16", "I;16L", "I;16B", "I;16N"}
ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}

EXIT_MODEL = 1
EXIT_USAGE = 2
EXIT_DECODE_FAILED = 3


class ModelError(Exception):
    """The ONNX model cannot be loaded or lacks the expected input or output."""


def round_half_up_ratio(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half up, exactly (no floating point)."""
    return (2 * numerator + denominator) // (2 * denominator)


def target_size(width: int, height: int, short_side: int = 224, max_long: int | None = None) -> tuple[int, int]:
    """(width, height) the pipeline resizes a width x height image to.

    The shorter side becomes ``short_side`` and the longer one keeps the aspect ratio,
    unless it would then exceed ``max_long`` (default ``4 * short_side``): then the longer
    side becomes ``max_long`` and the shorter one keeps the aspect ratio (at least 1 px).
    """
    if max_long is None:
        max_long = 4 * short_side
    short, long = min(width, height), max(width, height)
    new_short, new_long = short_side, round_half_up_ratio(long * short_side, short)
    if new_long > max_long:
        new_short, new_long = max(1, round_half_up_ratio(short * max_long, long)), max_long
    return (new_long, new_short) if width >= height else (new_short, new_long)


def flatten_on_white(rgba: Image.Image) -> Image.Image:
    """An RGBA image composited onto opaque white, rounded to nearest."""
    pixels = np.asarray(rgba, dtype=np.uint32)
    colour, alpha = pixels[..., :3], pixels[..., 3:]
    flat = (colour * alpha + 255 * (255 - alpha) + 127) // 255
    return Image.fromarray(flat.astype(np.uint8), "RGB")


def to_rgb(image: Image.Image) -> Image.Image:
    """The image as 8-bit RGB without transparency, following the rules in the module doc."""
    if image.mode in SIXTEEN_BIT_MODES:
        samples = np.clip(np.asarray(image, dtype=np.int64), 0, 65535) >> 8
        image = Image.fromarray(samples.astype(np.uint8), "L")
    if image.mode in ALPHA_MODES or "transparency" in image.info:
        return flatten_on_white(image.convert("RGBA"))
    return image if image.mode == "RGB" else image.convert("RGB")


def load_rgb(path: Path) -> Image.Image:
    """Decode an image file fully, upright (EXIF orientation applied), as 8-bit RGB."""
    with Image.open(path) as image:
        image.load()
        upright = ImageOps.exif_transpose(image)
    return to_rgb(upright)


def preprocess(path: Path, short_side: int, max_long: int) -> tuple[np.ndarray, tuple[int, int]]:
    """The model input for one file, uint8 [1, H, W, 3], and the upright original size."""
    image = load_rgb(path)
    resized = image.resize(target_size(image.width, image.height, short_side, max_long),
                           Image.Resampling.BICUBIC)
    return np.ascontiguousarray(np.asarray(resized, dtype=np.uint8)[np.newaxis]), image.size


def open_session(model: Path, threads: int, output_name: str) -> ort.InferenceSession:
    """An ONNX Runtime CPU session configured as the Swift engine configures its own."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    try:
        session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own exception types for bad models
        raise ModelError(f"{model}: cannot load the model: {error}") from None
    inputs = [i.name for i in session.get_inputs()]
    outputs = [o.name for o in session.get_outputs()]
    if INPUT_NAME not in inputs:
        raise ModelError(f"{model}: no input named '{INPUT_NAME}' (inputs: {', '.join(inputs)})")
    if output_name not in outputs:
        raise ModelError(f"{model}: no output named '{output_name}' (outputs: {', '.join(outputs)})")
    return session


def embed(session: ort.InferenceSession, pixels: np.ndarray, output_name: str) -> np.ndarray:
    """The model's output for one image, flattened and L2-normalised in float64."""
    (output,) = session.run([output_name], {INPUT_NAME: pixels})
    vector = np.asarray(output, dtype=np.float64).reshape(-1)
    norm = np.linalg.norm(vector)
    return vector / norm if norm > 0 else vector


def image_files(directory: Path) -> list[Path]:
    """The image files (by extension) directly inside a directory, sorted by name."""
    images = [p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    return sorted(images, key=lambda p: p.name)


def list_inputs(arguments: list[str]) -> list[Path]:
    """The files to process: files as given, directories expanded to their image files.

    Raises FileNotFoundError naming the first argument that does not exist.
    """
    files = []
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            files += image_files(path)
        elif path.exists():
            files.append(path)
        else:
            raise FileNotFoundError(f"{argument}: no such file or directory")
    return files


def try_preprocess(path: Path, short_side: int, max_long: int):
    """``preprocess``, or None after reporting on stderr why the file cannot be decoded."""
    try:
        return preprocess(path, short_side, max_long)
    except Exception as error:  # Pillow raises many types (OSError, SyntaxError, ValueError...)
        print(f"error: {path}: cannot decode: {type(error).__name__}: {error}", file=sys.stderr)
        return None


def embed_files(session, files: list[Path], args) -> tuple[list[dict], int]:
    """JSON items for the files that decode, and the number that failed."""
    items, failed = [], 0
    for path in files:
        prepared = try_preprocess(path, args.short_side, args.max_long)
        if prepared is None:
            failed += 1
            continue
        pixels, (width, height) = prepared
        items.append({"path": str(path.resolve()), "width": width, "height": height,
                      "resized_width": pixels.shape[2], "resized_height": pixels.shape[1],
                      "embedding": embed(session, pixels, args.output_name).tolist()})
    return items, failed


def warm_up(session, files: list[Path], args) -> None:
    """Run the first file that decodes once, untimed, to keep one-off setup out of timings.

    Files that fail here are left for the timed pass to report.
    """
    for path in files:
        try:
            pixels, _ = preprocess(path, args.short_side, args.max_long)
        except Exception:  # reported by the timed pass
            continue
        embed(session, pixels, args.output_name)
        return


def time_files(session, files: list[Path], args) -> tuple[int, float, int]:
    """(images done, seconds, failures) for decode + resize + inference of all files."""
    warm_up(session, files, args)
    done = failed = 0
    start = time.perf_counter()
    for path in files:
        prepared = try_preprocess(path, args.short_side, args.max_long)
        if prepared is None:
            failed += 1
            continue
        embed(session, prepared[0], args.output_name)
        done += 1
    return done, time.perf_counter() - start, failed


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options; exits with status 2 on bad ones."""
    parser = argparse.ArgumentParser(description="Embed images with an ONNX model: the reference for the Swift engine.")
    parser.add_argument("--model", required=True, type=Path, help="ONNX model taking uint8 image[1,H,W,3]")
    parser.add_argument("--short-side", type=int, default=224, help="shorter side after resizing (default 224)")
    parser.add_argument("--max-long", type=int, help="cap on the longer side (default 4 x short side)")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads of ONNX Runtime (default 2)")
    parser.add_argument("--output-name", default="embedding", help="model output to use (default embedding)")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--out", type=Path, help="JSON file to write")
    mode.add_argument("--time-only", action="store_true", help="print throughput, write nothing")
    parser.add_argument("inputs", nargs="+", metavar="FILE_OR_DIR")
    args = parser.parse_args(argv)
    if args.max_long is None:
        args.max_long = 4 * args.short_side
    if args.short_side < 1 or args.max_long < args.short_side or args.threads < 1:
        parser.error("need --short-side >= 1, --max-long >= --short-side and --threads >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the pipeline as the command line asks; return the exit status."""
    args = parse_args(argv)
    try:
        files = list_inputs(args.inputs)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    try:
        session = open_session(args.model, args.threads, args.output_name)
    except ModelError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_MODEL
    if args.time_only:
        done, seconds, failed = time_files(session, files, args)
        rate = done / seconds if seconds > 0 else 0.0
        print(f"{done} images in {seconds:.3f} s = {rate:.2f} images/s")
    else:
        items, failed = embed_files(session, files, args)
        result = {"model": str(args.model.resolve()), "short_side": args.short_side,
                  "max_long": args.max_long, "output_name": args.output_name, "items": items}
        args.out.write_text(json.dumps(result) + "\n")
    if failed:
        print(f"error: {failed} of {len(files)} files could not be decoded", file=sys.stderr)
        return EXIT_DECODE_FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main())
