"""Hostile images through ``lookalike add``: small files that unpack into huge or slow decodes.

50-megapixel PNG, WebP and TIFF files under a megabyte, and a GIF of 10,000 frames, are
each added in a process of their own: each is added or refused within its time budget, and the
process's peak memory stays far under 1 GiB (upright images stream through the decoder; WebP
and JPEG are scaled while they decode; a GIF gives its first frame).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))

import server_process  # noqa: E402

SIDE = 7072  # 50 megapixels
# One process with the model loaded (about 150 MB) and one decode: a quarter of 1 GiB plus a
# little, so that one decode per core stays under 1 GiB on a 2-core machine.
PEAK_LIMIT_KB = 384 << 10
SECONDS = 15  # the decoder's default budget


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hostile")
    picture = Image.new("RGB", (SIDE, SIDE), (200, 30, 30))
    ImageDraw.Draw(picture).ellipse((SIDE // 4, SIDE // 4, 3 * SIDE // 4, 3 * SIDE // 4), fill=(20, 40, 220))
    picture.save(folder / "huge.png", compress_level=9)
    picture.save(folder / "huge.webp", lossless=True, method=0)
    picture.save(folder / "huge.tiff", compression="tiff_deflate")
    frames = []
    for number in range(10_000):
        frame = Image.new("P", (32, 32), 0)
        frame.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
        frame.putpixel((number % 32, (number // 32) % 32), 1)
        frames.append(frame)
    frames[0].save(folder / "frames.gif", save_all=True, append_images=frames[1:], duration=20, loop=0)
    for path in folder.iterdir():
        assert path.stat().st_size < 1_000_000, f"{path.name} is {path.stat().st_size} bytes"
    return folder


@pytest.mark.parametrize("name", ["huge.png", "huge.webp", "huge.tiff", "frames.gif"])
def test_a_small_file_that_unpacks_huge_is_added_within_budget(hostile, tmp_path, name):
    binary = server_process.lookalike_binary()
    started = time.monotonic()
    # GNU time reports the peak memory of the command itself (a forked child's own counter would
    # start from this test process's memory).
    peak_file = tmp_path / "peak"
    run = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", str(peak_file), str(binary), "add", str(hostile / name),
                          "--store", str(tmp_path / "store"), "--json"], capture_output=True, text=True, timeout=120)
    took = time.monotonic() - started
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert [entry["path"] for entry in report["added"]] == [str(hostile / name)], report
    assert took < SECONDS, f"{name} took {took:.1f} s"
    peak = int(peak_file.read_text().split()[-1])
    assert peak < PEAK_LIMIT_KB, f"{name}: peak {peak} kB"
