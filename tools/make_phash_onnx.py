"""Writes the 64-bit perceptual hash (pHash) as an ONNX model, so Lookalike can index and search
with it like with any embedding model: the baseline the neural models are measured against.

The hash of an image, as pHash is usually defined (a DCT hash): the image squashed to 32 x 32
pixels (the engine's `stretch` resize policy), converted to luma, transformed with a 2-D DCT-II;
of the 8 x 8 lowest frequencies, each coefficient above their median is a 1 bit, the rest 0 bits.

The model outputs the 64 bits as +1 / -1. The engine L2-normalises vectors, so the cosine of two
hashes is 1 - 2 * hamming / 64: ranking by cosine is exactly ranking by Hamming distance.

    python tools/make_phash_onnx.py --output MODELS/phash.onnx

Needs numpy and onnx only; the graph has no weights beyond the DCT and luma matrices.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8
SIDE = 32
LOW = 8


def dct_matrix(n: int) -> np.ndarray:
    """The orthonormal DCT-II matrix: row k, column i = c_k * cos(pi * (2i + 1) * k / 2n)."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    matrix = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    matrix[0, :] = np.sqrt(1.0 / n)
    return matrix.astype(np.float32)


def build() -> onnx.ModelProto:
    dct = dct_matrix(SIDE)
    initializers = [
        # ITU-R BT.601 luma, as most pHash implementations use.
        numpy_helper.from_array(np.array([[0.299], [0.587], [0.114]], dtype=np.float32), "luma_weights"),
        numpy_helper.from_array(dct, "dct"),
        numpy_helper.from_array(dct.T.copy(), "dct_t"),
        numpy_helper.from_array(np.array([-1, SIDE, SIDE], dtype=np.int64), "plane_shape"),
        numpy_helper.from_array(np.array([0, 0], dtype=np.int64), "slice_start"),
        numpy_helper.from_array(np.array([LOW, LOW], dtype=np.int64), "slice_end"),
        numpy_helper.from_array(np.array([1, 2], dtype=np.int64), "slice_axes"),
        numpy_helper.from_array(np.array([-1, LOW * LOW], dtype=np.int64), "bits_shape"),
        numpy_helper.from_array(np.array([LOW * LOW // 2 + 1], dtype=np.int64), "median_k"),
        numpy_helper.from_array(np.array([LOW * LOW // 2 - 1, LOW * LOW // 2], dtype=np.int64), "middle"),
        numpy_helper.from_array(np.array(2.0, dtype=np.float32), "two"),
        numpy_helper.from_array(np.array(1.0, dtype=np.float32), "one"),
    ]
    nodes = [
        helper.make_node("Cast", ["image"], ["pixels"], to=TensorProto.FLOAT),
        helper.make_node("MatMul", ["pixels", "luma_weights"], ["luma"]),  # N x 32 x 32 x 1
        helper.make_node("Reshape", ["luma", "plane_shape"], ["plane"]),  # N x 32 x 32
        helper.make_node("MatMul", ["dct", "plane"], ["rows_done"]),  # D X
        helper.make_node("MatMul", ["rows_done", "dct_t"], ["spectrum"]),  # D X D^T
        helper.make_node("Slice", ["spectrum", "slice_start", "slice_end", "slice_axes"], ["low"]),  # N x 8 x 8
        helper.make_node("Reshape", ["low", "bits_shape"], ["coefficients"]),  # N x 64
        # The median of 64 values: the mean of the 32nd and 33rd largest.
        helper.make_node("TopK", ["coefficients", "median_k"], ["largest", "largest_at"], axis=1, largest=1, sorted=1),
        helper.make_node("Gather", ["largest", "middle"], ["centre_pair"], axis=1),
        helper.make_node("ReduceMean", ["centre_pair"], ["median"], axes=[1], keepdims=1),
        helper.make_node("Greater", ["coefficients", "median"], ["above"]),
        helper.make_node("Cast", ["above"], ["bits"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["bits", "two"], ["doubled"]),
        helper.make_node("Sub", ["doubled", "one"], ["embedding"]),
    ]
    graph = helper.make_graph(
        nodes,
        "phash",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, ["N", SIDE, SIDE, 3])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", LOW * LOW])],
        initializer=initializers,
    )
    model = helper.make_model(graph, producer_name="lookalike", opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    model.doc_string = "64-bit DCT perceptual hash as +1/-1 (see tools/make_phash_onnx.py)"
    onnx.checker.check_model(model)
    return model


def reference_hash(rgb: np.ndarray) -> np.ndarray:
    """The same hash in numpy, for a 32 x 32 x 3 uint8 image: +1 / -1 per bit."""
    luma = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    dct = dct_matrix(SIDE)
    low = (dct @ luma @ dct.T)[:LOW, :LOW].reshape(-1)
    return np.where(low > np.median(low), 1.0, -1.0).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    model = build()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    temporary = args.output.with_suffix(".onnx.tmp")
    onnx.save(model, temporary)
    temporary.replace(args.output)
    print(f"wrote {args.output} (64-bit pHash, opset {OPSET})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
