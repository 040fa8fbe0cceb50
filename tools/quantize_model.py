#!/usr/bin/env python3
"""Quantise one of Lookalike's image models to 8 bits with ONNX Runtime's own tools.

Static quantisation: the ranges of the activations are measured on calibration photographs
(run through the float32 model at the sizes the engine feeds it: shorter side 224, aspect kept;
each photo whole and two seeded crops), weights are quantised per output channel (int8),
activations per tensor (uint8), and the result is written in ONNX's QDQ form (QuantizeLinear /
DequantizeLinear pairs), which ONNX Runtime fuses into integer kernels when it loads the model.

The body of the network is quantised: its convolutions, their ReLU6 clips and the residual
additions, so that one integer kernel feeds the next. What comes before (the uint8 pixels scaled
to floats) and after (pooling, GeM's powers, the L2 normalisation, the classifier) stays in
float32: it is cheap, and GeM's cube of an 8-bit activation would lose what pooling keeps.

Weights use 7 of their 8 bits (``reduce_range``). On x86 processors without VNNI, ONNX Runtime's
uint8 x int8 kernels add pairs of products in 16 bits, which overflow with full-range weights: the
embeddings of such a model fell to cosine 0.91 of float32 on this project's bench photos, against
0.99 for the same model run unfused. With 7-bit weights the sums cannot overflow. uint8 x uint8
kernels do not overflow either, but ran no faster than float32 (BENCHMARKS.md, 2026-12-05).

The calibration photos must not be in any evaluation set (a range fitted on the images a figure
is measured on would flatter it): setup takes photos `make eval` does not use
(scripts/setup.sh, `install_int8_models`).

Usage::

    python tools/quantize_model.py --model efficientnet-lite0-gem.onnx --output efficientnet-lite0-gem-int8.onnx \\
        --calibration DIR [--count 64] [--crops 2] [--seed 0]
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reference_pipeline  # noqa: E402

SHORTER_SIDE = 224
MAX_LONGER = 896
SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


def model_input(image: Image.Image) -> np.ndarray:
    """The pixels the engine gives the model, by the reference pipeline's rules (8-bit RGB,
    transparency on white, shorter side 224 bicubic, longer side at most 896), as uint8 [1, H, W, 3]."""
    image = reference_pipeline.to_rgb(image)
    size = reference_pipeline.target_size(image.width, image.height, SHORTER_SIDE, MAX_LONGER)
    return np.asarray(image.resize(size, Image.Resampling.BICUBIC), dtype=np.uint8)[np.newaxis]


def calibration_files(folder: Path, count: int, seed: int) -> list[Path]:
    files = sorted(path for path in folder.rglob("*") if path.suffix.lower() in SUFFIXES and path.is_file())
    if not files:
        raise SystemExit(f"{folder}: no calibration photos (.jpg, .png, .webp) in it")
    random.Random(seed).shuffle(files)
    return sorted(files[:count])


def views(image: Image.Image, rng: random.Random, crops: int) -> list[Image.Image]:
    """The photo whole, then `crops` seeded crops of between a quarter and a half of its area:
    the calibration sees objects at the scales a collection shows them."""
    result = [image]
    width, height = image.size
    for _ in range(crops):
        side = rng.uniform(0.5, 0.7)
        w, h = max(1, round(width * side)), max(1, round(height * side))
        left, top = rng.randint(0, width - w), rng.randint(0, height - h)
        result.append(image.crop((left, top, left + w, top + h)))
    return result


class Photos:
    """ONNX Runtime's calibration reader: one view of a photo per call, as the model's input feed."""

    def __init__(self, files: list[Path], input_name: str, crops: int = 2, seed: int = 0):
        self.files = iter(files)
        self.input_name = input_name
        self.crops = crops
        self.rng = random.Random(seed)
        self.pending: list[np.ndarray] = []
        self.used = 0

    def get_next(self):
        while not self.pending:
            path = next(self.files, None)
            if path is None:
                return None
            try:
                with Image.open(path) as image:
                    upright = ImageOps.exif_transpose(image)
                    self.pending = [model_input(view) for view in views(upright, self.rng, self.crops)]
            except Exception as error:  # a broken file is skipped, not fatal
                print(f"  skipping {path.name}: {error}", file=sys.stderr)
                continue
            self.used += 1
        return {self.input_name: self.pending.pop(0)}


# The network's body: convolutions, their clips and the residual additions. No other node is of
# these kinds: the preprocessing (Cast, Sub, Div, Transpose) and the tail (ReduceMean, Max, Pow,
# ReduceL2, Div, Gemm) stay float32 by being left out.
QUANTISED_OPS = ("Conv", "Clip", "Add")


def quantize(model_path: Path, output: Path, files: list[Path], crops: int = 2, seed: int = 0) -> int:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    logging.getLogger().setLevel(logging.ERROR)  # ONNX Runtime's advice to pre-process: not needed here

    model = onnx.load(str(model_path))
    input_name = model.graph.input[0].name
    if not any(node.op_type == "Conv" for node in model.graph.node):
        raise SystemExit(f"{model_path}: no convolutions to quantise")
    reader = Photos(files, input_name, crops, seed)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=output.parent) as scratch:
        partial = Path(scratch) / output.name
        quantize_static(
            str(model_path), str(partial), reader,
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=list(QUANTISED_OPS),
            per_channel=True,
            reduce_range=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
        quantized = onnx.load(str(partial))
        quantized.metadata_props.append(onnx.StringStringEntryProto(
            key="quantization", value=f"static QDQ, per-channel 7-bit int8 weights, uint8 activations, "
                                      f"MinMax over {reader.used} calibration photos"))
        onnx.checker.check_model(quantized)
        onnx.save(quantized, str(partial))
        os.replace(partial, output)
    return reader.used


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="the float32 ONNX model")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--calibration", type=Path, required=True, help="a folder of calibration photos")
    parser.add_argument("--count", type=int, default=64, help="at most this many photos (default 64)")
    parser.add_argument("--crops", type=int, default=2, help="seeded crops of each photo besides the whole (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()
    files = calibration_files(arguments.calibration, arguments.count, arguments.seed)
    started = time.perf_counter()
    used = quantize(arguments.model, arguments.output, files, arguments.crops, arguments.seed)
    print(f"{arguments.output.name}: quantised on {used} photos in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
