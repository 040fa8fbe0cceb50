"""Tests of the data scripts and of the Python reference pipeline.

They run on the real photos that ``scripts/fetch_photos.py`` puts in
``$LOOKALIKE_DATA/photos`` (default ``<repo>/.data/photos``) and fail, rather than skip,
when those are missing. Models are tiny ONNX graphs built here, so the tests depend on
nothing but the packages of ``requirements.txt``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from PIL import Image, ImageOps

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))
sys.path.insert(0, str(REPO / "scripts"))

import make_edits  # noqa: E402
import reference_pipeline  # noqa: E402

MIN_PHOTOS = 30
EDIT_NAMES = ("half", "crop80", "q30", "exifrot", "bright")


# ---------------------------------------------------------------------------
# Helpers and fixtures
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def photos_dir() -> Path:
    """The fetched photos; fails the test with instructions when they are not there."""
    data = Path(os.environ.get("LOOKALIKE_DATA") or REPO / ".data")
    photos = data / "photos"
    count = len(reference_pipeline.image_files(photos)) if photos.is_dir() else 0
    if count < MIN_PHOTOS or not (photos / "SOURCES.json").is_file():
        pytest.fail(f"{photos} holds {count} photos and needs {MIN_PHOTOS} plus SOURCES.json: "
                    f"run `python scripts/fetch_photos.py` (LOOKALIKE_DATA={data}) first")
    return photos


def run_script(*args: str | Path) -> subprocess.CompletedProcess:
    """Run a script of the repository with this interpreter and the current environment."""
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, cwd=REPO)


def copy_photos(photos_dir: Path, names: list[str], dest: Path) -> Path:
    """Copy some photos into a fresh folder, so a test sees exactly those files."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(photos_dir / name, dest / name)
    return dest


def mean_colour_model(path: Path) -> Path:
    """An ONNX model whose ``embedding`` is the mean R, G, B of its uint8 NHWC ``image``."""
    nodes = [helper.make_node("Cast", ["image"], ["pixels"], to=TensorProto.FLOAT),
             helper.make_node("ReduceMean", ["pixels", "axes"], ["embedding"], keepdims=0)]
    graph = helper.make_graph(
        nodes, "mean_colour",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, [1, "H", "W", 3])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor("axes", TensorProto.INT64, [2], [1, 2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def rgb_array(path: Path) -> np.ndarray:
    """A file's pixels as displayed (EXIF orientation applied), RGB, as int arrays."""
    with Image.open(path) as image:
        return np.asarray(ImageOps.exif_transpose(image).convert("RGB"), dtype=np.int32)


def luma_quantization(quality: int) -> list[int]:
    """The luminance quantization table Pillow writes for a JPEG quality."""
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "JPEG", quality=quality)
    return list(Image.open(buffer).quantization[0])


# ---------------------------------------------------------------------------
# fetch_photos.py
# ---------------------------------------------------------------------------


def test_fetched_photos_match_their_sources_record(photos_dir):
    records = json.loads((photos_dir / "SOURCES.json").read_text())
    files = [p.name for p in reference_pipeline.image_files(photos_dir)]
    assert sorted(r["file"] for r in records) == files
    for record in records:
        path = photos_dir / record["file"]
        assert re.fullmatch(r"[a-z]+-[a-z0-9_]+\.(png|jpg)", record["file"])
        assert hashlib.sha256(path.read_bytes()).hexdigest() == record["sha256"]
        with Image.open(path) as image:
            assert image.size == (record["width"], record["height"])
        assert record["package"] and record["version"] and record["path"] and record["licence"]


# ---------------------------------------------------------------------------
# make_edits.py
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def edits(photos_dir, tmp_path_factory):
    """make_edits run with --limit 2 on three photos: a portrait grey PNG, a colour PNG, one more."""
    src = copy_photos(photos_dir, ["skimage-cell.png", "skimage-chelsea.png", "skimage-coins.png"],
                      tmp_path_factory.mktemp("photos"))
    out = tmp_path_factory.mktemp("edits")
    result = run_script("scripts/make_edits.py", src, out, "--limit", "2")
    assert result.returncode == 0, result.stderr
    return src, out


def test_make_edits_writes_five_jpegs_per_photo(edits):
    _, out = edits
    expected = {f"{stem}__{edit}.jpg" for stem in ("skimage-cell", "skimage-chelsea") for edit in EDIT_NAMES}
    assert {p.name for p in out.iterdir()} == expected
    for path in out.iterdir():
        with Image.open(path) as image:
            assert (image.format, image.mode) == ("JPEG", "RGB")


@pytest.mark.parametrize("stem", ["skimage-cell", "skimage-chelsea"])
def test_half_and_crop80_sizes(edits, stem):
    src, out = edits
    original = Image.open(src / f"{stem}.png")
    width, height = original.size
    half = Image.open(out / f"{stem}__half.jpg")
    assert abs(half.width - width / 2) <= 1 and abs(half.height - height / 2) <= 1
    crop = Image.open(out / f"{stem}__crop80.jpg")
    assert abs(crop.width * crop.height / (width * height) / 0.8 - 1) <= 0.01


def test_crop80_is_the_off_centre_region(edits):
    src, out = edits
    original = rgb_array(src / "skimage-chelsea.png")
    crop = rgb_array(out / "skimage-chelsea__crop80.jpg")
    height, width = original.shape[:2]
    left, top, right, bottom = make_edits.crop_box(width, height)
    assert (left, top) != ((width - crop.shape[1]) // 2, (height - crop.shape[0]) // 2)
    assert np.abs(crop - original[top:bottom, left:right]).mean() < 2.0
    centred_left, centred_top = (width - crop.shape[1]) // 2, (height - crop.shape[0]) // 2
    centred = original[centred_top:centred_top + crop.shape[0], centred_left:centred_left + crop.shape[1]]
    assert np.abs(crop - centred).mean() > 5.0


def test_q30_uses_quality_30_and_others_quality_95(edits):
    _, out = edits
    assert list(Image.open(out / "skimage-chelsea__q30.jpg").quantization[0]) == luma_quantization(30)
    assert list(Image.open(out / "skimage-chelsea__half.jpg").quantization[0]) == luma_quantization(95)


@pytest.mark.parametrize("stem", ["skimage-cell", "skimage-chelsea"])
def test_exifrot_displays_upright(edits, stem):
    src, out = edits
    edit = Image.open(out / f"{stem}__exifrot.jpg")
    original = rgb_array(src / f"{stem}.png")
    height, width = original.shape[:2]
    assert edit.size == (height, width)
    assert edit.getexif().get(0x0112) == 6
    upright = rgb_array(out / f"{stem}__exifrot.jpg")
    assert upright.shape == original.shape
    assert np.abs(upright - original).mean() < 2.0


def test_bright_is_30_percent_brighter(edits):
    src, out = edits
    original = rgb_array(src / "skimage-chelsea.png").astype(float)
    bright = rgb_array(out / "skimage-chelsea__bright.jpg").astype(float)
    unclipped = original < 150
    assert bright[unclipped].mean() / original[unclipped].mean() == pytest.approx(1.3, abs=0.03)


def test_one_mode_writes_the_combined_demo_edit(photos_dir, tmp_path):
    out = tmp_path / "demo.jpg"
    result = run_script("scripts/make_edits.py", photos_dir, "--one", "skimage-coffee", "--out", out)
    assert result.returncode == 0, result.stderr
    left, top, right, bottom = make_edits.crop_box(600, 400)
    demo = Image.open(out)
    assert demo.size == (round((right - left) * 0.6), round((bottom - top) * 0.6))
    assert list(demo.quantization[0]) == luma_quantization(40)


def test_make_edits_names_an_unreadable_photo(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "broken.jpg").write_text("not a JPEG")
    result = run_script("scripts/make_edits.py", src, tmp_path / "out")
    assert result.returncode == 1
    assert "broken.jpg" in result.stderr


# ---------------------------------------------------------------------------
# reference_pipeline.py
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("size, short_side, max_long, expected", [
    ((512, 512), 224, None, (224, 224)),
    ((451, 300), 224, None, (337, 224)),  # 336.75 rounds up
    ((300, 451), 224, None, (224, 337)),  # portrait
    ((1000, 872), 224, None, (257, 224)),  # 256.88
    ((449, 448), 224, None, (225, 224)),  # exactly 224.5: half rounds up, not to even
    ((100, 50), 224, None, (448, 224)),  # small images are enlarged
    ((640, 427), 256, None, (384, 256)),  # 383.70 with another short side
    ((2000, 500), 224, None, (896, 224)),  # exactly at the default cap of 4 x 224
    ((4000, 500), 224, None, (896, 112)),  # 1792 would exceed 896: long side capped
    ((100, 1000), 224, None, (90, 896)),  # capped portrait, short side 89.6 rounds up
    ((1, 10000), 224, None, (1, 896)),  # never below one pixel
    ((3000, 1000), 224, 600, (600, 200)),  # explicit cap
])
def test_target_size(size, short_side, max_long, expected):
    assert reference_pipeline.target_size(*size, short_side, max_long) == expected


def test_to_rgb_flattens_alpha_on_white_and_keeps_high_byte_of_16_bit():
    rgba = Image.fromarray(np.array([[[0, 0, 0, 0], [255, 0, 0, 128], [10, 20, 30, 255]]], np.uint8), "RGBA")
    assert np.asarray(reference_pipeline.to_rgb(rgba)).tolist() == [[[255, 255, 255], [255, 127, 127], [10, 20, 30]]]
    grey16 = Image.fromarray(np.array([[0, 257, 32768, 65535]], np.uint16))
    assert np.asarray(reference_pipeline.to_rgb(grey16))[0, :, 0].tolist() == [0, 1, 128, 255]


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """The mean-colour ONNX model, written once for this module."""
    return mean_colour_model(tmp_path_factory.mktemp("model") / "mean_colour.onnx")


def expected_embedding(path: Path) -> np.ndarray:
    """The mean-colour embedding of a file, computed here with Pillow and numpy only."""
    with Image.open(path) as image:
        upright = ImageOps.exif_transpose(image).convert("RGB")
    size = reference_pipeline.target_size(upright.width, upright.height)
    mean = np.asarray(upright.resize(size, Image.Resampling.BICUBIC), dtype=np.float64).mean(axis=(0, 1))
    return mean / np.linalg.norm(mean)


def test_pipeline_embeds_good_files_and_reports_bad_ones(photos_dir, edits, model, tmp_path):
    _, edits_dir = edits
    folder = copy_photos(photos_dir, ["skimage-coins.png", "sklearn-china.jpg"], tmp_path / "in")
    shutil.copy(edits_dir / "skimage-chelsea__exifrot.jpg", folder)
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.jpg").write_text("a text file named like a JPEG\n")
    (folder / "README.txt").write_text("not an image extension: ignored\n")
    out = tmp_path / "out.json"
    result = run_script("tools/reference_pipeline.py", "--model", model, "--threads", "1", "--out", out, folder)
    assert result.returncode == 3
    for bad in ("empty.jpg", "notes.jpg"):
        assert re.search(rf"{re.escape(str(folder / bad))}: cannot decode: \w+", result.stderr)
    assert "README" not in result.stderr
    report = json.loads(out.read_text())
    assert (report["short_side"], report["max_long"]) == (224, 896)
    names = ["skimage-chelsea__exifrot.jpg", "skimage-coins.png", "sklearn-china.jpg"]
    assert [item["path"] for item in report["items"]] == [str((folder / n).resolve()) for n in names]
    sizes = [(item["width"], item["height"], item["resized_width"], item["resized_height"]) for item in report["items"]]
    assert sizes == [(451, 300, 337, 224), (384, 303, 284, 224), (640, 427, 336, 224)]
    for item, name in zip(report["items"], names):
        assert np.linalg.norm(item["embedding"]) == pytest.approx(1.0, abs=1e-12)
        assert np.asarray(item["embedding"]) == pytest.approx(expected_embedding(folder / name), abs=1e-5)


def test_pipeline_time_only_prints_throughput_and_writes_nothing(photos_dir, model, tmp_path):
    folder = copy_photos(photos_dir, ["skimage-coffee.png", "skimage-rocket.jpg"], tmp_path / "in")
    result = run_script("tools/reference_pipeline.py", "--model", model, "--time-only", folder)
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"2 images in \d+\.\d{3} s = \d+\.\d{2} images/s\n", result.stdout)
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["skimage-coffee.png", "skimage-rocket.jpg"]


def test_pipeline_rejects_a_model_without_the_output(photos_dir, model, tmp_path):
    result = run_script("tools/reference_pipeline.py", "--model", model, "--output-name", "logits",
                        "--out", tmp_path / "out.json", photos_dir / "skimage-coffee.png")
    assert result.returncode == 1
    assert "no output named 'logits'" in result.stderr


# ---------------------------------------------------------------------------
# make_bench_set.py
# ---------------------------------------------------------------------------


def test_bench_set_is_distinct_sized_and_idempotent(photos_dir, tmp_path):
    out = tmp_path / "bench"
    args = ("scripts/make_bench_set.py", "--size", "1mp", "--out", out, "--count")
    result = run_script(*args, "3")
    assert result.returncode == 0, result.stderr
    files = sorted(out.iterdir())
    assert [p.name for p in files] == [f"bench-1mp-{i:04d}.jpg" for i in range(3)]
    for path in files:
        with Image.open(path) as image:
            assert (image.format, image.size) == ("JPEG", (1152, 864))
    assert len({hashlib.sha256(p.read_bytes()).hexdigest() for p in files}) == 3
    modified = [p.stat().st_mtime_ns for p in files]
    assert "all present" in run_script(*args, "3").stdout
    assert [p.stat().st_mtime_ns for p in files] == modified
    assert run_script(*args, "2").returncode == 0
    assert sorted(p.name for p in out.iterdir()) == [f"bench-1mp-{i:04d}.jpg" for i in range(2)]


# ---------------------------------------------------------------------------
# The framed evaluation set's edits (scripts/eval_sets.py)
# ---------------------------------------------------------------------------

def _contains(canvas: np.ndarray, photo: np.ndarray) -> bool:
    """Whether the photo's pixels appear unchanged somewhere in the canvas."""
    h, w = photo.shape[:2]
    first = photo[0]
    for y in range(canvas.shape[0] - h + 1):
        row = canvas[y]
        for x in np.flatnonzero((row[: canvas.shape[1] - w + 1] == first[0]).all(axis=1)):
            if np.array_equal(canvas[y:y + h, x:x + w], photo):
                return True
    return False


def test_framed_edits_keep_the_photo_inside_their_frames_and_repeat_under_a_seed(photos_dir):
    import random

    import eval_sets

    photo = Image.open(sorted(photos_dir.glob("*.jpg"))[0]).convert("RGB")
    photo.thumbnail((120, 120))
    pixels = np.asarray(photo)
    for kind in eval_sets.FRAMES:
        stamps = [Image.new("RGBA", (20, 20), (255, 0, 0, 255))]
        first, label = eval_sets.frame(photo, kind, random.Random(7), stamps)
        again, label_again = eval_sets.frame(photo, kind, random.Random(7), stamps)
        assert label == label_again and np.array_equal(np.asarray(first.convert("RGB")), np.asarray(again.convert("RGB"))), kind
        if kind.startswith("pad-") or kind == "letterbox":
            # The photo is pasted as it is into a larger canvas.
            assert first.width * first.height > 1.6 * photo.width * photo.height, (kind, first.size)
            assert _contains(np.asarray(first.convert("RGB")), pixels), kind
        elif kind in ("screenshot", "phone"):
            # A page around the photo, scaled to fit: a larger picture that is not the photo.
            assert first.width > photo.width and first.height > photo.height, (kind, first.size)
        else:
            steps = label.split("-")[1:]
            assert label.startswith(kind + "-") and len(steps) == int(kind[-1]) and len(set(steps)) == len(steps), label
            assert set(steps) <= set(eval_sets.CHAINED), label
