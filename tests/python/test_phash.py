"""The pHash ONNX graph (tools/make_phash_onnx.py) against a plain numpy computation of the same
hash, on random pixels and on the real photos squashed to 32 x 32."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))

import make_phash_onnx  # noqa: E402

PHOTOS = Path(os.environ.get("LOOKALIKE_DATA", REPO / ".data")) / "photos"


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> ort.InferenceSession:
    path = tmp_path_factory.mktemp("phash") / "phash.onnx"
    assert make_phash_onnx.main(["--output", str(path)]) == 0
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_dct_matrix_is_orthonormal() -> None:
    dct = make_phash_onnx.dct_matrix(32)
    assert np.allclose(dct @ dct.T, np.eye(32), atol=1e-5)


def test_graph_matches_numpy_on_random_pixels(session) -> None:
    pixels = np.random.default_rng(3).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    hashes = session.run(None, {"image": pixels})[0]
    assert hashes.shape == (16, 64)
    assert set(np.unique(hashes)) <= {-1.0, 1.0}
    expected = np.stack([make_phash_onnx.reference_hash(image) for image in pixels])
    assert (hashes == expected).all()


def test_graph_matches_numpy_on_real_photos_and_half_the_bits_are_set(session) -> None:
    photos = sorted(PHOTOS.glob("*.jpg"))
    assert len(photos) >= 20, f"the photo set in {PHOTOS} is missing: run make setup"
    pixels = np.stack([np.asarray(Image.open(p).convert("RGB").resize((32, 32), Image.BICUBIC)) for p in photos])
    hashes = session.run(None, {"image": pixels})[0]
    expected = np.stack([make_phash_onnx.reference_hash(image) for image in pixels])
    # Coefficients that sit exactly on the median could flip between float orders; none does here.
    assert (hashes == expected).mean() > 0.999
    ones = (hashes > 0).sum(axis=1)
    assert (ones == 32).all(), "the median threshold splits the 64 coefficients in half"
    # Different photos have clearly different hashes.
    distances = [(hashes[i] != hashes[j]).sum() for i in range(len(hashes)) for j in range(i + 1, len(hashes))]
    assert np.median(distances) > 16
