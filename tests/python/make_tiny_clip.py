"""A tiny, randomly initialised CLIP-shaped pair of ONNX models, for testing the plumbing of
bring-your-own dual encoders (no real image-text weights are reachable from packages).

* ``tiny-clip-image.onnx``: ``image`` uint8 ``[N, H, W, 3]`` -> ``embedding`` float ``[N, 3]``:
  the mean colour of the picture, centred on grey (the "image tower");
* ``tiny-clip-text.onnx``: ``input_ids`` and ``attention_mask`` int64 ``[N, L]`` ->
  ``embedding`` float ``[N, 3]``: the masked mean of a token table (the "text tower"), random
  for every token but the colour words, whose rows point where the image tower puts those
  colours, so that "red" finds red pictures;
* ``tiny-clip-vocab.txt``: a WordPiece vocabulary;
* ``tiny-clip-image.json`` and ``tiny-clip-text.json``: manifests naming one shared space.

Usage: ``python tests/python/make_tiny_clip.py FOLDER``
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

VOCABULARY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "photo", "of", "the", "red", "green", "blue", "colour", "plain", ".", ","]
COLOURS = {"red": [1.0, -0.5, -0.5], "green": [-0.5, 1.0, -0.5], "blue": [-0.5, -0.5, 1.0]}
SPACE = "tiny-clip"


def image_tower() -> onnx.ModelProto:
    nodes = [
        helper.make_node("Cast", ["image"], ["pixels"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["pixels"], ["mean"], axes=[1, 2], keepdims=0),
        helper.make_node("Sub", ["mean", "grey"], ["embedding"]),
    ]
    graph = helper.make_graph(nodes, "tiny-clip-image",
                              [helper.make_tensor_value_info("image", TensorProto.UINT8, ["N", "H", "W", 3])],
                              [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 3])],
                              [numpy_helper.from_array(np.array([127.5, 127.5, 127.5], dtype=np.float32), "grey")])
    return finish(graph)


def text_tower(seed: int = 7) -> onnx.ModelProto:
    table = np.random.default_rng(seed).normal(0, 0.05, (len(VOCABULARY), 3)).astype(np.float32)
    for word, direction in COLOURS.items():
        table[VOCABULARY.index(word)] = direction
    nodes = [
        helper.make_node("Gather", ["table", "input_ids"], ["tokens"], axis=0),
        helper.make_node("Cast", ["attention_mask"], ["mask"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["mask", "axis2"], ["mask3"]),
        helper.make_node("Mul", ["tokens", "mask3"], ["kept"]),
        helper.make_node("ReduceSum", ["kept", "axis1"], ["total"], keepdims=0),
        helper.make_node("ReduceSum", ["mask3", "axis1"], ["count"], keepdims=0),
        helper.make_node("Div", ["total", "count"], ["embedding"]),
    ]
    graph = helper.make_graph(nodes, "tiny-clip-text",
                              [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["N", "L"]),
                               helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["N", "L"])],
                              [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 3])],
                              [numpy_helper.from_array(table, "table"),
                               numpy_helper.from_array(np.array([2], dtype=np.int64), "axis2"),
                               numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1")])
    return finish(graph)


def finish(graph: onnx.GraphProto) -> onnx.ModelProto:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="lookalike-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main() -> int:
    folder = Path(sys.argv[1])
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(image_tower(), folder / "tiny-clip-image.onnx")
    onnx.save(text_tower(), folder / "tiny-clip-text.onnx")
    (folder / "tiny-clip-vocab.txt").write_text("".join(token + "\n" for token in VOCABULARY))
    common = {"space": SPACE, "normalization": "inside the graph", "embeddingOutput": "embedding", "dimension": 3,
              "batchable": True, "licence": "test model, random weights", "installHint": "made by the test"}
    (folder / "tiny-clip-image.json").write_text(json.dumps({
        "name": "tiny-clip-image", "summary": "image tower of a tiny CLIP-shaped pair", "file": "tiny-clip-image.onnx",
        "modality": "image", "input": {"name": "image", "layout": "NHWC", "dtype": "uint8"},
        "resize": {"stretch": {"size": 32}}, **common}))
    (folder / "tiny-clip-text.json").write_text(json.dumps({
        "name": "tiny-clip-text", "summary": "text tower of a tiny CLIP-shaped pair", "file": "tiny-clip-text.onnx",
        "modality": "text", "input": {"name": "input_ids", "layout": "tokens", "dtype": "int64"},
        "text": {"vocabulary": "tiny-clip-vocab.txt", "maxTokens": 16, "lowercase": True, "ids": "input_ids",
                 "attentionMask": "attention_mask"}, **common}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
