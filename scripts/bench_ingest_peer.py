#!/usr/bin/env python3
"""The best-effort Python peer of `make bench-ingest`: what a Python user who cares about speed
would write around the same model, to set beside `lookalike add`.

Against tools/reference_pipeline.py (one process: full decode, then inference, file after file),
this one
  * decodes in WORKERS processes while the main process runs the network (multiprocessing),
  * lets Pillow decode JPEGs at reduced scale (`Image.draft`, the DCT-domain shrink) as far as
    leaves 2x for the final resize, as Lookalike does,
  * resizes with Pillow's `reducing_gap` (a box reduce first, then bicubic),
  * reads HEIC through pillow-heif when it is installed,
  * runs the network on up to 4 consecutive images of one size at once.
Model, sizes (shorter side 224, aspect kept), inference threads and float32 are the reference's.
Files that do not decode are counted and skipped.

    python scripts/bench_ingest_peer.py --model MODEL.onnx [--threads 2] [--workers 2] DIR
prints "N images in S s = R images/s (F failed)"; model loading is not timed, as in the reference.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
import reference_pipeline as reference  # noqa: E402

try:  # HEIC, as a Python user would add it
    import pillow_heif

    pillow_heif.register_heif_opener()
except ImportError:
    pillow_heif = None

SHORT_SIDE = 224
MAX_LONG = 4 * SHORT_SIDE
BATCH = 4
SUFFIXES = {".jpg", ".jpeg", ".png", ".heic", ".heif", ".webp", ".tif", ".tiff"}


def prepare(path: Path):
    """Model input of one file (uint8 [H, W, 3]), or None when it does not decode."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            target = reference.target_size(width, height, SHORT_SIDE, MAX_LONG)
            if image.format == "JPEG":
                image.draft("RGB", (2 * target[0], 2 * target[1]))
            image.load()
            upright = reference.to_rgb(ImageOps.exif_transpose(image))
        size = reference.target_size(upright.width, upright.height, SHORT_SIDE, MAX_LONG)
        resized = upright.resize(size, Image.Resampling.BICUBIC, reducing_gap=2.0)
        return np.asarray(resized, dtype=np.uint8)
    except Exception:  # Pillow raises many types for broken files
        return None


def main() -> int:
    parser = argparse.ArgumentParser(description="Best-effort Python ingest: parallel decode, draft JPEGs, batches.")
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=2, help="inference threads (default 2)")
    parser.add_argument("--workers", type=int, default=2, help="decoding processes (default 2)")
    parser.add_argument("folder", type=Path)
    args = parser.parse_args()
    files = sorted(path for path in args.folder.iterdir() if path.suffix.lower() in SUFFIXES)
    session = reference.open_session(args.model, args.threads, "embedding")
    warm = next((pixels for pixels in map(prepare, files[:5]) if pixels is not None), None)
    if warm is not None:
        session.run(["embedding"], {reference.INPUT_NAME: warm[np.newaxis]})
    done = failed = 0
    started = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(args.workers) as pool:
        batch: list[np.ndarray] = []

        def flush() -> None:
            if batch:
                session.run(["embedding"], {reference.INPUT_NAME: np.stack(batch)})
                batch.clear()

        for pixels in pool.imap(prepare, files, chunksize=2):
            if pixels is None:
                failed += 1
                continue
            if batch and (pixels.shape != batch[0].shape or len(batch) == BATCH):
                flush()
            batch.append(pixels)
            done += 1
        flush()
    seconds = time.perf_counter() - started
    print(f"{done} images in {seconds:.3f} s = {done / seconds:.2f} images/s ({failed} failed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
